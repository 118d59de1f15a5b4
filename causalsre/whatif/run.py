"""One what-if query end to end, as a library call: the CLI, the demo and notebooks all use this."""

from __future__ import annotations

from typing import Any


def fit_for(ctx, *, priors_path=None, sampler="auto", draws=None, tune=None, chains=None, seed=0, progress=False):
    """Fit the Bayesian burn model on every request of the context's database."""
    from causalsre.bayes import fit_burn_model, load_priors

    return fit_burn_model(ctx.table(None), ctx.graph, slo=ctx.slo, objective=ctx.objective,
                          db_fingerprint=ctx.fingerprint, priors=load_priors(priors_path), sampler=sampler,
                          draws=draws, tune=tune, chains=chains, seed=seed, progress=progress)


def load_or_fit(ctx, fit_path, *, priors_path=None, seed=0, progress=False):
    """A saved fit when given (refused if it belongs to another model or database), else a fresh fit."""
    from causalsre.bayes import load_burn_model, load_priors

    if fit_path:
        return load_burn_model(fit_path, ctx.table(None), ctx.graph, slo=ctx.slo, db_fingerprint=ctx.fingerprint,
                               priors=load_priors(priors_path))
    return fit_for(ctx, priors_path=priors_path, seed=seed, progress=progress)


def run_whatif(db_path: str, slo_path: str, window_text: str, settings: list[str] | tuple[str, ...], *,
               method: str = "both", slo_name: str | None = None, graph_path: str | None = None,
               priors_path: str | None = None, fit_path: str | None = None, verify: bool = False,
               verify_db: str | None = None, seed: int = 0, progress: bool = False,
               latency: str | None = None, latency_draws: int | None = None,
               governor_file: str | None = None) -> dict[str, Any]:
    """Predicted (and, with ``verify``, measured) burn of a window under ``settings`` (KNOB=VALUE strings).

    Returns the JSON-ready result: intervention, window, observed, predicted {method: {burn_rate, low,
    high, bad_rate}}, verified {burn_rate, bad_rate} or None, diagnostics and warnings. With ``latency``
    (a metric such as ``ttft_s``) also ``latency``: the log-latency model's p50/p90 of that metric under the
    intervention, beside the observed (and, with ``verify``, the replayed) ones.

    With a governor (``governor_file``, or the one the window's runs recorded; required for
    ``policy=budget``/``edf``) the replay runs it and ``tiers`` holds each tier's budget ``before`` (the
    recording) and ``after`` (the replay, None without ``verify``). A categorical value the database never
    had is not predicted: each method gets the whole range and ``identified: false``, and a warning says so.
    """
    from causalsre.whatif.context import Context, parse_settings
    from causalsre.whatif.gcm_predict import GcmWhatIf
    from causalsre.whatif.governor import recorded_tiers, replay_with_tiers, resolve_governor
    from causalsre.whatif.predict import observed, predict, range_warnings, unidentified, unobserved_values, \
        unobserved_warning

    ctx = Context.open(db_path, slo_path, slo_name, graph_path)
    try:
        table, window = ctx.table(None), ctx.table(window_text)
        interventions = parse_settings(settings, ctx.view, table)
        governor = resolve_governor(ctx, window_text, interventions, governor_file)  # before any fit
        unseen = unobserved_values(table, interventions)
        gcm_model = bayes_model = latency_result = None
        if unseen:  # nothing fitted here can say what the value does: no fit, no invented number
            predicted = unidentified(("gcm", "bayes") if method == "both" else (method,), ctx.objective)
        else:
            gcm_model = GcmWhatIf.fit(table, ctx.view, seed=seed) if method in ("gcm", "both") else None
            if method in ("bayes", "both"):
                bayes_model = load_or_fit(ctx, fit_path, priors_path=priors_path, seed=seed, progress=progress)
            predicted = predict(window, interventions, objective=ctx.objective, gcm_model=gcm_model,
                                bayes_model=bayes_model, seed=seed)
            if latency:
                latency_result = _latency_whatif(ctx, table, window, interventions, latency, seed, progress,
                                                 draws=latency_draws)
        verified = None
        if verify:
            verified = replay_with_tiers(ctx, window_text, interventions, governor, out_db=verify_db,
                                         progress=progress)
        tiers = None if governor is None else {
            "before": recorded_tiers(ctx, window_text, governor),
            "after": verified.get("tiers") if verified else None}
        seen = observed(window, ctx.objective)
    finally:
        ctx.close()
    diagnostics = bayes_model.diagnostics() if bayes_model is not None else None
    return {
        "intervention": interventions, "window": window_text, "observed": seen["burn_rate"],
        "observed_bad_rate": seen["bad_rate"], "requests": seen["requests"], "predicted": predicted,
        "verified": None if verified is None else {k: verified[k] for k in ("burn_rate", "bad_rate")},
        "verified_requests": None if verified is None else verified.get("requests"),
        "verified_speed_ratio": None if verified is None else verified.get("speed_ratio"),
        "diagnostics": diagnostics.to_dict() if diagnostics else None,
        "tiers": tiers,
        "warnings": ([unobserved_warning(unseen)] if unseen else [])
        + (["--latency is not predicted for a value never observed"] if unseen and latency else [])
        + range_warnings(table, interventions) + _speed_warnings(verified)
        + (latency_result["diagnostics"]["warnings"] if latency_result else []),
        "latency": _with_verified(latency_result, verified),
    }


def _latency_whatif(ctx, table, window, interventions, metric, seed, progress, *, draws: int | None = None) -> dict:
    from causalsre.bayes.latency import fit_latency_model, observed_quantiles

    model = fit_latency_model(table, ctx.graph, metric=metric, draws=draws, seed=seed, progress=progress)
    return {"metric": metric, "observed": observed_quantiles(window, metric),
            "predicted": model.predict(window, interventions, seed=seed),
            "diagnostics": model.diagnostics().to_dict()}


def _with_verified(latency_result: dict | None, verified: dict | None) -> dict | None:
    if latency_result is None:
        return None
    measured = (verified or {}).get("latency") or {}
    return {**latency_result, "verified": measured.get(latency_result["metric"]) if verified else None}


def _speed_warnings(verified: dict | None) -> list[str]:
    from causalsre.whatif.verify import speed_warning

    if verified is None:
        return []
    warning = speed_warning(verified.get("speed_ratio"))
    return [warning] if warning else []


def posterior_attribution(db_path: str, slo_path: str, baseline: str, incident: str, *, slo_name: str | None = None,
                          graph_path: str | None = None, priors_path: str | None = None, fit_path: str | None = None,
                          seed: int = 0, progress: bool = False) -> dict[str, Any]:
    """The burn model's attribution of the change in burn rate from ``baseline`` to ``incident``.

    Each factor's contribution (burn-rate units, median and 90 % credible interval) is the drop in the
    incident's expected burn were that factor distributed as in the baseline; ``total`` is the change and
    ``remainder`` what no factor accounts for (mostly the two windows' own intercepts). Shown beside the
    graph-based Shapley attribution by ``postmortem --bayes``.
    """
    from causalsre.bayes import attribute_burn_change
    from causalsre.whatif.context import Context

    ctx = Context.open(db_path, slo_path, slo_name, graph_path)
    try:
        before, after = ctx.table(baseline), ctx.table(incident)
        fitted = load_or_fit(ctx, fit_path, priors_path=priors_path, seed=seed, progress=progress)
        table = attribute_burn_change(fitted.draws(), fitted.encoding, before, after, objective=ctx.objective,
                                      seed=seed)
    finally:
        ctx.close()
    return {"rows": table.to_dict(orient="records"), "diagnostics": fitted.diagnostics().to_dict(),
            "units": "burn rate (bad-event rate / error budget)", "interval": 0.9}

"""``causalsre eval whatif``: predicted against measured burn for interventions replayed in the harness.

Each case is (window, intervention). Both methods predict from models fitted once on the whole database;
the harness then replays the window's workload with the intervention (``whatif --verify``), and the
measured burn rate is compared with each prediction. A "no change" predictor (the window's observed burn)
is scored too: a method that cannot beat it has learned nothing about the knob.

Relative error is |predicted - measured| / max(measured, 1): a burn rate of 1 spends the budget exactly,
and below that the relative error of tiny rates says nothing an operator cares about.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

# Windows of the shipped scenario suite (datasets/cpu-tiny) and single-knob interventions whose values the
# suite has seen somewhere (so no case is pure extrapolation).
DEFAULT_CASES = [
    ("phase:incident@push_max_num_seqs-s0", {"max_num_seqs": 16.0}),
    ("phase:incident@push_max_num_seqs-s0", {"max_num_seqs": 4.0}),
    ("phase:incident@mix_surge_and_max_num_seqs-s0", {"max_num_seqs": 16.0}),
    ("phase:incident@push_chunk_size-s0", {"chunk_size": 64.0}),
    ("phase:incident@kv_shrink-s0", {"num_kv_blocks": 256.0}),
    ("phase:incident@mix_step_delay_and_kv_shrink-s0", {"num_kv_blocks": 256.0}),
    ("phase:incident@rate_surge-s0", {"max_num_seqs": 4.0}),
    ("phase:incident@cpu_contention-s0", {"max_num_seqs": 4.0}),
    ("phase:incident@tenant_flood-s0", {"max_num_seqs": 8.0}),
    ("phase:incident@burstier-s0", {"num_kv_blocks": 40.0}),
    ("phase:baseline@push_max_num_seqs-s0", {"max_num_seqs": 1.0}),
    ("phase:incident@step_delay-s0", {"max_num_seqs": 4.0}),
    # Added with model v2, fixed before any v2 prediction of them was looked at (held out from development:
    # the first twelve were used to develop v2, so their scores are in-sample).
    ("phase:baseline@kv_shrink-s0", {"num_kv_blocks": 12.0}),
    ("phase:baseline@rate_surge-s0", {"chunk_size": 2.0}),
    ("phase:incident@longer_prompts-s0", {"max_num_seqs": 4.0}),
    ("phase:incident@step_delay-s0", {"num_kv_blocks": 40.0}),
    ("phase:baseline@cpu_contention-s0", {"max_num_seqs": 4.0}),
    ("phase:incident@kv_shrink-s0", {"max_num_seqs": 4.0}),
    # Added when the suite was re-recorded with the current engine (session 3), fixed before any prediction
    # or replay of them was seen: held out from every change made after that re-recording.
    ("phase:incident@burstier-s0", {"max_num_seqs": 4.0}),
    ("phase:incident@tenant_flood-s0", {"num_kv_blocks": 40.0}),
    ("phase:baseline@tenant_flood-s0", {"chunk_size": 2.0}),
    ("phase:incident@rate_surge-s0", {"chunk_size": 2.0}),
    ("phase:baseline@step_delay-s0", {"max_num_seqs": 1.0}),
    ("phase:incident@mix_contention_and_longer_prompts-s0", {"max_num_seqs": 4.0}),
]
HELD_OUT_FROM = 12   # DEFAULT_CASES[HELD_OUT_FROM:] were held out from model v2's development
HELD_OUT_V3_FROM = 18   # DEFAULT_CASES[HELD_OUT_V3_FROM:] were held out from the session-3 changes


def case_set(window_text: str, intervention: dict) -> str | None:
    """Which set a default case belongs to: "development", "held_out_v2" (added after model v2 was
    developed) or "held_out_v3" (added with the session-3 re-recording, before any change made after it);
    None for a case that is not a default one."""
    key = (window_text, intervention)
    if key not in DEFAULT_CASES:
        return None
    index = DEFAULT_CASES.index(key)
    return "held_out_v3" if index >= HELD_OUT_V3_FROM else "held_out_v2" if index >= HELD_OUT_FROM else "development"


def relative_error(predicted: float, measured: float) -> float:
    return abs(predicted - measured) / max(measured, 1.0)


def score(cases: list[dict], methods: list[str]) -> dict:
    """Median relative error and 90 %-interval coverage (and median interval width, in burn-rate units: a
    coverage bought with [0, 100] intervals says little) per method over verified cases.

    When the cases carry ``replayed_no_change`` (the window replayed with its recorded settings), a pseudo
    method ``replay_drift`` scores the recording itself as a predictor of that replay: the error a perfect
    model of the recorded data would still make, because the replay machine is not the recording machine."""
    out = {}
    for method in methods:
        rows = [c for c in cases if method in c["predicted"] and c["verified"] is not None]
        if not rows:
            continue
        errors = [relative_error(c["predicted"][method]["burn_rate"], c["verified"]["burn_rate"]) for c in rows]
        covered = [c["predicted"][method].get("low", -np.inf) <= c["verified"]["burn_rate"]
                   <= c["predicted"][method].get("high", np.inf) for c in rows]
        widths = [c["predicted"][method]["high"] - c["predicted"][method]["low"] for c in rows
                  if "low" in c["predicted"][method]]
        out[method] = {"cases": len(rows), "median_relative_error": float(np.median(errors)),
                       "coverage_90": float(np.mean(covered)) if widths else None}
        if widths:
            out[method]["median_interval_width"] = float(np.median(widths))
    drift = {c["window"]: relative_error(c["observed"], c["replayed_no_change"]) for c in cases
             if c.get("replayed_no_change") is not None}
    if drift:
        out["replay_drift"] = {"cases": len(drift), "median_relative_error": float(np.median(list(drift.values()))),
                               "coverage_90": None}
    return out


def replay_speed(cases: list[dict]) -> dict | None:
    """Median and range of the replays' speed ratios (recorded / replayed decode-step time); None if unprobed."""
    ratios = [c["verified"].get("speed_ratio") for c in cases if c.get("verified")]
    if not ratios or any(r is None for r in ratios):
        return None
    return {"median": float(np.median(ratios)), "min": float(min(ratios)), "max": float(max(ratios))}


def score_latency(cases: list[dict]) -> dict | None:
    """Per quantile of the latency model's prediction: median relative error against the replay's quantile
    (|predicted - measured| / measured: latencies are never 0) and 90 %-interval coverage."""
    rows = [c for c in cases if c.get("latency") and c["latency"]["verified"]]
    if not rows:
        return None
    out = {"metric": rows[0]["latency"]["metric"]}
    for q in rows[0]["latency"]["predicted"]:
        pairs = [(c["latency"]["predicted"][q], c["latency"]["verified"][q]) for c in rows]
        errors = [abs(p["value"] - m) / m for p, m in pairs]
        out[q] = {"cases": len(pairs), "median_relative_error": float(np.median(errors)),
                  "coverage_90": float(np.mean([p["low"] <= m <= p["high"] for p, m in pairs])),
                  "median_interval_ratio": float(np.median([p["high"] / p["low"] for p, m in pairs if p["low"] > 0]))}
    return out


def evaluate_cases(ctx, cases, *, gcm_model, bayes_model, verify_fn: Callable, seed: int = 0,
                   progress: Callable | None = None, controls: bool = True, latency_model=None) -> list[dict]:
    """Predict and replay each case. With ``controls`` each distinct window is also replayed once with no
    intervention (``replayed_no_change``): the recorded and the replayed machine differ in speed, and only
    this control tells a model's error from the replay's drift. With ``latency_model`` its p50/p90
    prediction is scored against the replay's quantiles too."""
    from causalsre.whatif.predict import observed, predict

    results, no_change = [], {}
    for window_text, intervention in cases:
        window = ctx.table(window_text)
        seen = observed(window, ctx.objective)
        predicted = predict(window, intervention, objective=ctx.objective, gcm_model=gcm_model,
                            bayes_model=bayes_model, seed=seed, new_run=True)
        predicted["no_change"] = {"burn_rate": seen["burn_rate"], "bad_rate": seen["bad_rate"]}
        verified = verify_fn(ctx, window_text, intervention)
        if controls and window_text not in no_change:
            no_change[window_text] = verify_fn(ctx, window_text, {})["burn_rate"]
        results.append({"window": window_text, "intervention": intervention, "observed": seen["burn_rate"],
                        "predicted": predicted,
                        "verified": {k: verified.get(k) for k in ("burn_rate", "bad_rate", "requests", "speed_ratio")},
                        "replayed_no_change": no_change.get(window_text),
                        "case_set": case_set(window_text, intervention),
                        "latency": _latency_case(latency_model, window, intervention, verified, seed)})
        if progress:
            progress()
    return results


def _latency_case(model, window, intervention: dict, verified: dict, seed: int) -> dict | None:
    if model is None:
        return None
    from causalsre.bayes.latency import observed_quantiles

    measured = (verified.get("latency") or {}).get(model.metric)
    return {"metric": model.metric, "observed": observed_quantiles(window, model.metric),
            "predicted": model.predict(window, intervention, seed=seed), "verified": measured}

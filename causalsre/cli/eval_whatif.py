"""`causalsre eval whatif`: calibration of what-if predictions against harness replays."""

from __future__ import annotations

import json

import click

from causalsre.resources import DEMO_SUITE as _SUITE  # datasets/cpu-tiny, shipped as package data
from causalsre.resources import SLO_SPEC as _SLO

METHODS = ["gcm", "bayes", "bayes_new_run", "no_change"]


@click.command("whatif")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=str(_SUITE), show_default="datasets/cpu-tiny/suite.duckdb",
              help="Scenario-suite telemetry database.")
@click.option("--slo", "slo_path", type=click.Path(dir_okay=False), default=str(_SLO), show_default="models/slos/llm-serving.yaml")
@click.option("--slo-name", help="Which SLO of the file (default: the first).")
@click.option("--fit", "fit_path", type=click.Path(dir_okay=False), help="A saved fit of this database.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N cases.")
@click.option("--latency", type=click.Choice(["none", "queue_s", "ttft_s", "tpot_s", "e2e_s"]), default="ttft_s",
              show_default=True, help="Also score the log-latency model's p50/p90 of this metric ('none': skip).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the cases and scores as JSON.")
def whatif(db_path, slo_path, slo_name, fit_path, limit, latency, seed, as_json):
    """Replay >= 10 interventions on the scenario suite; error and interval coverage per method.

    Example: causalsre eval whatif --json > whatif-calibration.json
    """
    from rich.progress import Progress

    from causalsre.whatif.run import load_or_fit
    from causalsre.whatif.calibration import DEFAULT_CASES, evaluate_cases, replay_speed, score, score_latency
    from causalsre.whatif.verify import speed_warning
    from causalsre.whatif.context import Context
    from causalsre.whatif.gcm_predict import GcmWhatIf
    from causalsre.whatif.verify import verify

    cases = DEFAULT_CASES[:limit] if limit else DEFAULT_CASES
    ctx = Context.open(db_path, slo_path, slo_name)
    try:
        table = ctx.table(None)
        gcm_model = GcmWhatIf.fit(table, ctx.view, seed=seed)
        bayes_model = load_or_fit(ctx, fit_path, seed=seed, progress=not as_json)
        latency_model = None
        if latency != "none":
            from causalsre.bayes.latency import fit_latency_model

            latency_model = fit_latency_model(table, ctx.graph, metric=latency, seed=seed, progress=not as_json)
        with Progress(transient=True, disable=as_json) as bar:
            task = bar.add_task("replaying interventions", total=len(cases))
            results = evaluate_cases(ctx, cases, gcm_model=gcm_model, bayes_model=bayes_model,
                                     verify_fn=verify, seed=seed, progress=lambda: bar.advance(task),
                                     latency_model=latency_model)
    finally:
        ctx.close()
    scores = score(results, METHODS)
    by_set = {name: score([c for c in results if c["case_set"] == name], METHODS)
              for name in dict.fromkeys(c["case_set"] for c in results if c["case_set"])}
    speed = replay_speed(results)
    latency_scores = score_latency(results)
    report = {"cases": results, "scores": scores, "scores_by_set": by_set, "replay_speed_ratio": speed,
              "latency_scores": latency_scores, "diagnostics": bayes_model.diagnostics().to_dict(),
              "latency_diagnostics": latency_model.diagnostics().to_dict() if latency_model else None}
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    for case in results:
        label = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in case["intervention"].items())
        preds = "  ".join(f"{m} {p['burn_rate']:.3g}" + (f" [{p['low']:.3g}, {p['high']:.3g}]" if "low" in p else "")
                          for m, p in case["predicted"].items())
        click.echo(f"{case['window']:<48} {label:<22} measured {case['verified']['burn_rate']:.3g}  {preds}")
    for name, set_scores in [("all", scores), *by_set.items()]:
        click.echo(f"-- {name}")
        _echo_scores(set_scores)
    if latency_scores:
        for q in ("p50", "p90"):
            s = latency_scores[q]
            click.echo(f"latency {latency_scores['metric']} {q}: median relative error {s['median_relative_error']:.0%}, "
                       f"90% coverage {s['coverage_90']:.0%} ({s['cases']} cases)")
    warning = speed_warning(speed["median"] if speed else None)
    if speed:
        click.echo(f"replay machine speed / recording's: median {speed['median']:.2f}x "
                   f"(range {speed['min']:.2f}-{speed['max']:.2f}x)")
    if warning:
        click.echo(f"warning: {warning}", err=True)


def _echo_scores(scores: dict) -> None:
    for method, s in scores.items():
        coverage = "" if s["coverage_90"] is None else f", 90% coverage {s['coverage_90']:.0%}"
        click.echo(f"{method:<10} median relative error {s['median_relative_error']:.0%}{coverage} ({s['cases']} cases)")

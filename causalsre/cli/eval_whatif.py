"""`causalsre eval whatif`: calibration of what-if predictions against harness replays."""

from __future__ import annotations

import click

from causalsre.cli.options import FIT_FILE, INPUT_FILE, SEED, OutputFolder, SLO_NAME, db_option, echo_json, json_option, \
    progress_bar, slo_option
from causalsre.resources import DEMO_SUITE as _SUITE  # datasets/cpu-tiny, shipped as package data
from causalsre.resources import SLO_SPEC as _SLO

METHODS = ["gcm", "bayes", "bayes_new_run", "no_change"]
SUITE_METHODS = [*METHODS, "bayes_paired", "bayes_paired_split", "bayes_paired_pooled", "bayes_paired_hull", "no_change_replay"]   # paired: see whatif/calibration_suite.py


@click.command("whatif")
@db_option("Scenario-suite telemetry database.", default=str(_SUITE), show_default="datasets/cpu-tiny/suite.duckdb")
@slo_option(default=str(_SLO), show_default="models/slos/llm-serving.yaml")
@SLO_NAME
@click.option("--fit", "fit_path", type=FIT_FILE, help="A saved fit of this database.")
@click.option("--limit", type=click.IntRange(1, 1_000_000), help="Only the first N cases.")
@click.option("--latency", type=click.Choice(["none", "queue_s", "ttft_s", "tpot_s", "e2e_s"]), default="ttft_s",
              show_default=True, help="Also score the log-latency model's p50/p90 of this metric ('none': skip).")
@click.option("--data", "data_dirs", multiple=True, type=click.Path(file_okay=False),
              help="A suite folder made by `eval generate` (repeatable): cases from its ground truth instead of --db's.")
@click.option("--cases", "max_cases", type=click.IntRange(1, 1_000_000),
              help="With --data: at most N cases in all.")
@click.option("--methods", default=",".join(SUITE_METHODS), show_default=True,
              help="With --data: comma-separated methods to score.")
@click.option("--out", "out_dir", type=OutputFolder(),
              help="With --data: folder for the replay cache (replays.json); a rerun replays nothing twice.")
@click.option("--noise-replays", type=click.IntRange(0, 100), default=0, show_default=True,
              help="With --data: replay the first N cases a second time with another engine seed (replay noise).")
@click.option("--calibrate-from", "calibrate_from", type=INPUT_FILE,
              help="With --data: a JSON report of this command on other (development) suites; its cases set the "
                   "conformal margins of the *_cqr methods (default: leave one incident out of these cases).")
@SEED
@json_option("Print the cases and scores as JSON (progress goes to stderr).")
def whatif(db_path, slo_path, slo_name, fit_path, limit, latency, data_dirs, max_cases, methods, out_dir,
           noise_replays, calibrate_from, seed, as_json):
    """Replay interventions and score each method's prediction against the replay.

    With --data: every true cause of a generated suite's incidents reverted (and pushable knobs pushed to one
    more observed value), each replayed; coverage, width and error in burn points (percentage points of the
    bad-event share). Without: the 24 fixed cases on the shipped suite (--db).

    Example: causalsre eval whatif --data /tmp/suite --out /tmp/suite-whatif --cases 30 --json > whatif.json
    """
    given = [flag for flag, value in (("--cases", max_cases), ("--out", out_dir), ("--noise-replays", noise_replays),
                                      ("--calibrate-from", calibrate_from)) if value]
    if given and not data_dirs:  # they were ignored: the fixed cases replayed for minutes without them
        from causalsre.errors import UserError

        raise UserError(f"{', '.join(given)} only apply with --data", "add --data SUITE, or drop them")
    if data_dirs:
        _run_suite(data_dirs, slo_path, max_cases=max_cases, methods=methods, out_dir=out_dir,
                  noise_replays=noise_replays, calibrate_from=calibrate_from, seed=seed, as_json=as_json)
        return
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
        # On stderr, with --json too (stdout is the report only); drawn only where stderr is a terminal.
        with progress_bar("replaying interventions", total=len(cases)) as bar:
            task = bar.task_ids[0]
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
        echo_json(report)
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


def _run_suite(data_dirs, slo_path, *, max_cases, methods, out_dir, noise_replays, calibrate_from, seed, as_json):
    from pathlib import Path

    from causalsre.errors import UserError
    from causalsre.whatif.calibration_suite import suite_report

    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(SUITE_METHODS))
    if unknown or not chosen:
        raise UserError(f"--methods: unknown method {', '.join(unknown) or '(none given)'}",
                        f"choose from {', '.join(SUITE_METHODS)}")
    calibration = None
    if calibrate_from:
        from causalsre.safeio import load_json

        calibration = load_json(Path(calibrate_from), what="--calibrate-from report")
    report = suite_report([Path(d) for d in data_dirs], slo_path, methods=chosen, max_cases=max_cases, seed=seed,
                          out_dir=Path(out_dir) if out_dir else None, noise_replays=noise_replays,
                          calibration=calibration, progress=lambda message: click.echo(message, err=True))
    if as_json:
        echo_json(report)
        return
    click.echo("burn points = percentage points of the bad-event share (0-100)")
    for case in report["cases"]:
        preds = "  ".join(f"{m} {p['point']:.1f}" + (f" [{p['low']:.1f}, {p['high']:.1f}]" if "low" in p else "")
                          for m, p in case["predicted"].items())
        click.echo(f"{case['key']:<64} measured {case['measured']['points']:5.1f}  {preds}")
    for method, s in report["scores"].items():
        interval = "" if s["coverage_90"] is None else (f", 90% coverage {s['coverage_90']:.0%}, median width "
                                                        f"{s['median_width']:.1f}, [0, 100] x{s['full_range']}")
        click.echo(f"{method:<18} {s['cases']} cases, median abs error {s['median_abs_error']:.1f}{interval}")
    click.echo(f"best: {report['best_method']}; {report['unobserved_cases']} case(s) with a never-observed value")
    if report["replay_noise"]["pairs"]:
        click.echo(f"replay noise: median |first - second| {report['replay_noise']['median_abs_difference']:.1f} "
                   f"points over {len(report['replay_noise']['pairs'])} re-seeded replays")
    for line in report["failures"]:
        click.echo(f"miss: {line}")

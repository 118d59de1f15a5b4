"""`causalsre eval govern`: the budget governor against the baseline policies on the same requests."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click

from causalsre.cli.options import OutputFolder, OutputPath, json_option

_POLICY_HELP = "Comma-separated policies (default: every one of fcfs,priority,vtc,edf,budget this engine has)."


@click.command("govern")
@click.option("--load", "loads", multiple=True, type=float, metavar="X",
              help="Offered load as a multiple of the calibrated capacity (repeat; default 0.8 1.0 1.3 1.6).")
@click.option("--seeds", type=click.IntRange(max=1000), default=2, show_default=True,  # 10**20 ran for ever
              help="Seeds 0..N-1 per workload and load.")
@click.option("--policies", default=None, metavar="NAME,...", help=_POLICY_HELP)
@click.option("--workload", "workloads", multiple=True, type=click.Choice(["gamma", "azure"]),
              help="Workloads to run (repeat; default both; azure is skipped when its trace file is missing).")
@click.option("--trace", "trace_path", default="../shared/traces/AzureLLMInferenceTrace_conv.csv",
              show_default=True, type=click.Path(dir_okay=False), help="The Azure LLM conversation trace (CSV).")
@click.option("--duration-s", type=float, default=20.0, show_default=True, help="Seconds of arrivals per run.")
@click.option("--out", "out_dir", type=OutputFolder(), default=None,
              help="New folder for the runs' databases, the tier SLO specs and govern.json "
                   "(default: ./govern-<UTC time>).")
@click.option("--html", "html_path", type=OutputPath(suffixes=(".html", ".htm")), default=None,
              help="Also write an HTML (or .md) report: the table and each tier's budget burn-down per policy.")
@click.option("--target", type=click.Choice(["engine", "vllm"]), default="engine", show_default=True,
              help="engine: the embedded engine; vllm: the gateway (`serve --upstream`) in front of the real vLLM "
                   "peer (.venv-vllm; policies fcfs, priority, edf, budget; batching depth stays vLLM's).")
@click.option("--clock", type=click.Choice(["modelled", "wall"]), default=None,
              help="modelled (default for --target engine): time advances by a step-cost model fitted on real "
                   "steps, so the machine's load does not move the numbers; wall: the machine's clock (the only "
                   "one for --target vllm).")
@click.option("--clock-model", "clock_model", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Reuse the step-cost model of an earlier evaluation (its clock_model.json or govern.json) "
                   "instead of fitting one: the same file gives the same numbers on any machine load.")
@click.option("--calibration-from", "calibration_from", type=click.Path(dir_okay=False), default=None,
              metavar="GOVERN_JSON", help="Reuse the capacity and per-tier thresholds of an earlier modelled-clock "
                                          "evaluation (its govern.json; same step-cost model required): on the "
                                          "modelled clock the calibration is deterministic, so this only saves its "
                                          "long half-load run.")
@click.option("--first-seed", type=click.IntRange(0, 2**32 - 1 - 1000), default=0, show_default=True,
              help="Seeds run are FIRST..FIRST+N-1 (report on seeds other than the ones a change was tuned on).")
@click.option("--quick", is_flag=True, help="4-second runs and a short capacity probe (smoke tests).")
@json_option("Print runs, summary (the targets) and setup (calibration, request hashes) as JSON.")
def govern(loads, seeds, policies, workloads, trace_path, duration_s, out_dir, html_path, target, clock, clock_model,
           calibration_from, first_seed, quick, as_json):
    """Run every policy on the same tiered requests at each load; per tier the budget consumed (`slo report`).

    Tiers: premium 10 % of traffic at 99.5 %, standard 30 % at 99 %, free 60 % at 95 %; TTFT/TPOT thresholds
    calibrated by a half-load run. Each run's DuckDB is kept under --out. Method: docs/methods/governor.md.

    Example: causalsre eval govern --load 0.8 --load 1.3 --seeds 2 --out /tmp/govern --html /tmp/govern.html

    Same step-cost model again: causalsre eval govern --clock-model /tmp/govern/clock_model.json --out /tmp/g2

    Same calibration too: ... --clock-model /tmp/govern/govern.json --calibration-from /tmp/govern/govern.json

    In front of vLLM: causalsre eval govern --target vllm --load 1.3 --seeds 1 --workload gamma --out /tmp/gv
    """
    from causalsre.evaluation.govern import DEFAULT_LOADS, evaluate_govern

    if html_path:
        from causalsre.report.document import check_report_path

        check_report_path(html_path)
    names = None if policies is None else [p.strip() for p in policies.split(",") if p.strip()]
    out_dir = out_dir or f"govern-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    result = evaluate_govern(out_dir, loads=loads or DEFAULT_LOADS, seeds=seeds, policies=names,
                             duration_s=duration_s, workloads=workloads or ("gamma", "azure"),
                             trace_path=trace_path, quick=quick, target=target, clock=clock,
                             clock_model=clock_model, first_seed=first_seed, calibration_from=calibration_from,
                             progress=lambda m: click.echo(m, err=True))
    if html_path:
        from causalsre.report import write_report
        from causalsre.report.govern import govern_report

        write_report(govern_report(result), html_path)
    if as_json:
        click.echo(json.dumps({"runs": result["runs"], "summary": result["summary"], "setup": result["setup"]},
                              indent=2))
        return
    if result["setup"].get("note"):
        click.echo(result["setup"]["note"])
    for line in table_lines(result):
        click.echo(line)
    click.echo(f"databases, tier SLO specs and govern.json in {out_dir}" + (f"; wrote {html_path}" if html_path else ""))


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table_lines(result: dict) -> list[str]:
    """The runs as a fixed-width table, then one line per target."""
    lines = [f"{'workload':<8} {'load':>4} {'seed':>4} {'policy':<8} {'tok/s':>7} {'good/s':>6} "
             f"{'premium':>8} {'standard':>8} {'free':>8} {'rejected':>8} {'actions':>7}"]
    for r in result["runs"]:
        used = {t["tier"]: t["budget_consumed"] for t in r["tiers"]}
        mark = "*" if r.get("speed_flagged") else " "
        lines.append(f"{r['workload']:<8} {r['load']:>4g} {r['seed']:>3}{mark} {r['policy']:<8} "
                     f"{_fmt(r['throughput_tok_s'], '.1f'):>7} {_fmt(r['goodput_rps'], '.2f'):>6} "
                     f"{_fmt(used.get('premium'), '.2f'):>8} {_fmt(used.get('standard'), '.2f'):>8} "
                     f"{_fmt(used.get('free'), '.2f'):>8} {r['rejected']:>8} {r['actions']:>7}")
    lines.append("(premium/standard/free: error budget consumed, 1.0 = the whole budget spent; "
                 "* = a group whose speed probe moved beyond the tolerance)")
    for name, target in result["summary"].items():
        lines.append(f"target {name}: {target['status'].upper()}: {target['target']}"
                     + (f" ({target['reason']})" if "reason" in target else "")
                     + (f"; on steady groups only: {target['steady_status'].upper()}" if "steady_status" in target
                        else ""))
    clock = result["setup"].get("clock") or {}
    if clock.get("mode") == "modelled":
        fit = clock.get("fit") or {}
        lines.append("clock: modelled (step cost " + ", ".join(f"{k} {v:.3g}" for k, v in clock["coefficients"].items())
                     + (f"; fit R^2 {fit['r2']} on {fit['steps']} steps" if "r2" in fit else "")
                     + f"; from {clock.get('source')})")
    flagged = result["setup"].get("flagged_cases", [])
    if flagged:
        lines.append(f"{len(flagged)} of {len(result['setup']['cases'])} groups flagged (speed moved more than "
                     f"{100 * result['setup']['speed_tolerance']:.0f} %): "
                     + ", ".join(f"{c['workload']} x{c['load']:g} s{c['seed']}" for c in flagged))
    return lines

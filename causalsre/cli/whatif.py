"""`causalsre whatif`, `causalsre effect`, `causalsre recommend`: interventions, effects and their ranking."""

from __future__ import annotations

import json

import click

from causalsre.cli.fit import echo_diagnostics, load_or_fit
from causalsre.cli.options import DB, FIT_FILE, GRAPH, INPUT_FILE, OUTPUT_FILE, PRIORS, same_file, RUN, SEED, SLO, SLO_NAME, finite, json_option, \
    parse_knobs, set_option, window_option

FIT = click.option("--fit", "fit_path", type=FIT_FILE,
                   help="A saved fit from `causalsre fit --out` (default: fit now).")
WINDOW = window_option()
GOVERNOR = click.option("--governor", "governor_file", type=INPUT_FILE, metavar="TIERS.toml",
                        help="A TOML file with a [governor] section and [[governor.tiers]] (as a run config's): the "
                             "tiers for policy=budget and for the per-tier budgets (default: the run's recorded one).")


def _fmt(pred: dict) -> str:
    if pred.get("identified") is False:
        return f"not identified (never observed): burn anywhere in [{pred['low']:.3g}, {pred['high']:.3g}]"
    return (f"burn {pred['burn_rate']:.3g} [{pred['low']:.3g}, {pred['high']:.3g}]  "
            f"bad rate {pred['bad_rate']:.2%}")


@click.command("whatif")
@DB
@SLO
@SLO_NAME
@GRAPH
@PRIORS
@FIT
@WINDOW
@RUN
@set_option(required=True)
@GOVERNOR
@click.option("--method", type=click.Choice(["gcm", "bayes", "both"]), default="both", show_default=True)
@click.option("--verify", is_flag=True, help="Replay the window through the harness with the intervention.")
@click.option("--verify-db", type=INPUT_FILE, help="Keep the replay telemetry in this database.")
@click.option("--latency", type=click.Choice(["queue_s", "ttft_s", "tpot_s", "e2e_s"]),
              help="Also predict p50/p90 of this latency with the log-latency model (fits it: about a minute).")
@click.option("--latency-draws", type=click.IntRange(min=50, max=100_000), metavar="N",
              help="Posterior draws per chain of the --latency fit (default: the latency priors' [sampler], 1000); "
                   "fewer is quicker and rougher.")
@SEED
@json_option("Print the report as JSON.")
@click.option("--out", "out_path", type=OUTPUT_FILE,
              help="Write a self-contained report (.html or .md).")
def whatif(db_path, slo_path, slo_name, graph_path, priors_path, fit_path, window_text, run_id, settings,
           governor_file, method, verify, verify_db, latency, latency_draws, seed, as_json, out_path):
    """Predicted bad-event and burn rate of a window under an intervention, with 90 % intervals.

    Example: causalsre whatif --db suite.duckdb --slo models/slos/llm-serving.yaml
    --window phase:incident@push_max_num_seqs-s0 --set max_num_seqs=16 --verify

    The budget governor: causalsre whatif --db t.duckdb --slo models/slos/llm-serving.yaml
    --window phase:incident@RUN --set policy=budget --governor tiers.toml --verify
    (per-tier budgets before and after; a policy the database never ran is not predicted, only replayed).
    """
    from causalsre.whatif.run import run_whatif
    from causalsre.windows import scope_window

    window_text = scope_window(window_text, run_id)
    if verify_db and not verify:  # it was ignored: the what-if ran to its end without the replay asked for
        from causalsre.errors import UserError

        raise UserError("--verify-db keeps the replay of --verify", "add --verify, or drop --verify-db")
    if verify_db and same_file(verify_db, db_path):  # the replay would be written into the analysed database
        from causalsre.errors import UserError

        raise UserError(f"--verify-db {verify_db} is the same file as --db",
                        "keep the replay in another database: the analysed one is only ever read")

    if latency_draws and not latency:  # the fit it sizes would not run
        from causalsre.errors import UserError

        raise UserError("--latency-draws sizes the fit of --latency", "add --latency METRIC, or drop --latency-draws")
    settings = parse_knobs(settings)  # names checked against the settings table before any work
    if out_path:
        from causalsre.report.document import check_report_path

        check_report_path(out_path)
    result = run_whatif(db_path, slo_path, window_text, settings, method=method, slo_name=slo_name,
                        graph_path=graph_path, priors_path=priors_path, fit_path=fit_path, verify=verify,
                        verify_db=verify_db, seed=seed, progress=not as_json, latency=latency,
                        latency_draws=latency_draws, governor_file=governor_file)
    if out_path:
        from causalsre.report import Report, write_report
        from causalsre.report.builders import diagnostics_section, whatif_section, whatif_summary

        sections = [whatif_section(result)]
        diagnostics = diagnostics_section(result["diagnostics"])
        if diagnostics is not None:
            sections.append(diagnostics)
        write_report(Report("What-if report", [whatif_summary(result)], sections,
                            {"database": db_path, "spec": slo_path, "seed": seed}), out_path)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"window {window_text}: {result['requests']} requests, observed burn {result['observed']:.3g} "
               f"(bad rate {result['observed_bad_rate']:.2%})")
    click.echo("intervention: " + ", ".join(f"{k}={v}" for k, v in result["intervention"].items()))
    for name, pred in result["predicted"].items():
        click.echo(f"  {name:<6} {_fmt(pred)}")
    verified = result["verified"]
    if verified is not None:
        click.echo(f"  measured burn {verified['burn_rate']:.3g} (bad rate {verified['bad_rate']:.2%}, "
                   f"{result['verified_requests']} replayed requests" + _speed(result.get("verified_speed_ratio")) + ")")
    if result["latency"] is not None:
        click.echo(_latency_line(result["latency"]))
    if result["tiers"] is not None:
        _echo_tiers(result["tiers"]["before"], result["tiers"]["after"], "recorded", "replay")
    for note in result["warnings"]:
        click.echo(f"warning: {note}", err=True)
    if result["diagnostics"] is not None:
        from causalsre.bayes.diagnostics import Diagnostics

        echo_diagnostics(Diagnostics(**result["diagnostics"]))
    if out_path:
        click.echo(f"wrote {out_path}")


@click.command("effect")
@DB
@SLO
@SLO_NAME
@GRAPH
@click.option("--treatment", required=True, help="An actionable knob of the graph.")
@click.option("--control", help="Reference value (default: the most common).")
@click.option("--treated", help="Compared value (default: the least common).")
@SEED
@json_option()
def effect(db_path, slo_path, slo_name, graph_path, treatment, control, treated, seed, as_json):
    """Average effect of a knob on the bad-event rate (DoWhy backdoor + refuters, pgmpy do-query).

    Example: causalsre effect --db suite.duckdb --slo models/slos/llm-serving.yaml --treatment max_num_seqs
    """
    from causalsre.whatif.context import Context
    from causalsre.whatif.effect import estimate_effect

    ctx = Context.open(db_path, slo_path, slo_name, graph_path)
    try:
        result = estimate_effect(ctx.table(None), ctx.view, treatment, control=control, treated=treated, seed=seed)
    finally:
        ctx.close()
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    d, p = result["dowhy"], result["pgmpy"]
    click.echo(f"effect of {treatment}: {result['control']} -> {result['treated']} on the bad-event rate")
    click.echo(f"  observed difference   {_diff(result['observed_bad_rate'], result):+.4f}")
    click.echo(f"  DoWhy (backdoor on {d['backdoor_set'] or 'nothing'}): {d['effect']:+.4f}")
    for name, ref in d["refutations"].items():
        p_value = "n/a" if ref["p_value"] is None else f"{ref['p_value']:.2f}"
        click.echo(f"    refuter {name:<20} new effect {ref['new_effect']:+.4f}  p {p_value}")
    click.echo(f"  pgmpy do-query          {p['effect']:+.4f} (P(bad|do) {p['p_bad_control']:.4f} -> "
               f"{p['p_bad_treated']:.4f})")


def _diff(observed: dict, result: dict) -> float:
    return observed[str(result["treated"])] - observed[str(result["control"])]


@click.command("recommend")
@DB
@SLO
@SLO_NAME
@GRAPH
@PRIORS
@FIT
@WINDOW
@RUN
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, 1_000))
@click.option("--governor-grid", is_flag=True,
              help="Propose a budget-governor configuration instead: replay the window under policy=budget with "
                   "each margin x batching rule of a small grid (docs/methods/whatif.md) and rank by measured "
                   "per-tier budgets.")
@GOVERNOR
@click.option("--margin", "margins", multiple=True, type=finite(0.0, 1.0),
              help="With --governor-grid: the margins to try (repeat; default 0.1, 0.25, 0.5).")
@SEED
@json_option("Print the ranking as JSON.")
def recommend(db_path, slo_path, slo_name, graph_path, priors_path, fit_path, window_text, run_id, top,
              governor_grid, governor_file, margins, seed, as_json):
    """Rank single-knob interventions by predicted burn in a window (Bayesian posterior predictive).

    Example: causalsre recommend --db suite.duckdb --slo models/slos/llm-serving.yaml --window phase:incident

    A governor configuration, each candidate verified by replay (minutes: one replay per candidate):
    causalsre recommend --db t.duckdb --slo models/slos/llm-serving.yaml --window phase:incident@RUN
    --governor-grid --governor tiers.toml
    """
    from causalsre.whatif.context import Context
    from causalsre.whatif.predict import observed
    from causalsre.whatif.recommend import recommend as rank
    from causalsre.windows import scope_window

    window_text = scope_window(window_text, run_id)
    if (margins or governor_file) and not governor_grid:
        from causalsre.errors import UserError

        raise UserError(f"{'--margin' if margins else '--governor'} only applies to --governor-grid here",
                        "add --governor-grid, or drop the option")
    if governor_grid:
        return _recommend_governor(db_path, slo_path, slo_name, graph_path, window_text, governor_file, margins,
                                   as_json)
    ctx = Context.open(db_path, slo_path, slo_name, graph_path)
    try:
        table, window = ctx.table(None), ctx.table(window_text)
        model = load_or_fit(ctx, fit_path, priors_path=priors_path, seed=seed, progress=not as_json)
        actionable = [n for n in ctx.view.actionable if n in table.columns]
        ranking = rank(model, table, window, actionable, objective=ctx.objective, seed=seed)[:top]
        seen = observed(window, ctx.objective)
    finally:
        ctx.close()
    if as_json:
        click.echo(json.dumps({"window": window_text, "observed": seen["burn_rate"], "ranking": ranking,
                               "diagnostics": model.diagnostics().to_dict()}, indent=2, default=str))
        return
    click.echo(f"window {window_text}: observed burn {seen['burn_rate']:.3g}; burn <= 1 keeps within budget")
    for i, row in enumerate(ranking, 1):
        label = ", ".join(f"{k}={v}" for k, v in row["intervention"].items())
        mark = "within budget" if row["within_budget"] else ""
        click.echo(f"{i:>3}. {label:<28} {_fmt(row)}  {mark}")
    if not ranking:
        click.echo("no actionable knob varies in this database: nothing can be compared (run a sweep first)")
    echo_diagnostics(model.diagnostics())


def _recommend_governor(db_path, slo_path, slo_name, graph_path, window_text, governor_file, margins, as_json):
    from causalsre.whatif.context import Context
    from causalsre.whatif.governor import MARGINS, recommend_governor, resolve_governor

    ctx = Context.open(db_path, slo_path, slo_name, graph_path)
    try:
        governor = resolve_governor(ctx, window_text, {"policy": "budget"}, governor_file)
        result = recommend_governor(ctx, window_text, governor, margins=tuple(margins) or MARGINS,
                                    say=lambda text: click.echo(text, err=True))
    finally:
        ctx.close()
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    ref = result["reference"]
    click.echo(f"window {window_text}: replayed unchanged, burn {ref['burn_rate']:.3g}; each candidate replayed "
               "with policy=budget")
    for i, row in enumerate(result["candidates"], 1):
        g = row["governor"]
        tiers = ", ".join(f"{t['tier']} {_used(t)}" for t in row["tiers"])
        click.echo(f"{i:>3}. margin {g['margin']:g}, batching {g['batching']:<8} burn {row['burn_rate']:.3g}  "
                   f"budget used: {tiers}")
    best = result["best"]["governor"]
    click.echo(f"best: margin = {best['margin']:g}, min_max_num_seqs = {best['min_max_num_seqs']}, "
               f"max_max_num_seqs = {best['max_max_num_seqs']}, min_batched_tokens = {best['min_batched_tokens']}, "
               f"max_batched_tokens = {best['max_batched_tokens']}")
    _echo_tiers(result["reference"]["tiers"], result["best"]["tiers"], "unchanged replay", "best")


def _used(tier: dict) -> str:
    return "-" if tier["budget_consumed"] is None else f"{tier['budget_consumed']:.3g}x"


def _echo_tiers(before: list[dict], after: list[dict] | None, first: str, second: str) -> None:
    """One line per tier: budget consumed (1 = the whole budget) and bad / events, then and now."""
    click.echo(f"  per-tier budget consumed ({first}" + (f" -> {second}" if after else "") + "):")
    for i, b in enumerate(before):
        if not b["events"] and not (after and after[i]["events"]):
            continue   # a tier with no request here (the implicit default tier, usually): nothing to say
        line = f"    {b['tier']:<10}{' protected' if b['protected'] else '          '}  {_used(b)} " \
               f"({b['bad_events']}/{b['events']} bad)"
        if after:
            a = after[i]
            line += f" -> {_used(a)} ({a['bad_events']}/{a['events']} bad)"
        click.echo(line)


def _speed(ratio: float | None) -> str:
    return "" if ratio is None else f"; replay machine {ratio:.2f}x the recording's speed"


def _latency_line(latency: dict) -> str:
    parts = []
    for q, pred in latency["predicted"].items():
        seen = (latency["observed"] or {}).get(q)
        measured = (latency["verified"] or {}).get(q)
        parts.append(f"{q} {pred['value']:.3g} s [{pred['low']:.3g}, {pred['high']:.3g}]"
                     + (f" (observed {seen:.3g} s" if seen is not None else " (")
                     + (f", replay {measured:.3g} s)" if measured is not None else ")"))
    return f"  {latency['metric']} under the intervention: " + "; ".join(parts)

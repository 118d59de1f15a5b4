"""`causalsre slo ...`: check OpenSLO specs and report error budgets over a telemetry database."""

from __future__ import annotations

import json

import click

from causalsre.cli.options import DB, INPUT_FILE, OUTPUT_FILE, RUN, json_option, not_blank, slo_option
from causalsre.errors import UserError

GROUP_CHOICES = ("run", "tenant", "priority", "model", "phase")


@click.group()
def slo() -> None:
    """Check SLO specs and report error budgets, burn rates and alerts."""


@slo.command("check")
@click.argument("spec", type=INPUT_FILE)
@click.option("--alert-windows", type=INPUT_FILE, help="Sloth AlertWindows YAML to alert with.")
@json_option()
@click.option("--strict", is_flag=True, help="Exit with code 1 when there are warnings.")
def check(spec: str, alert_windows: str | None, as_json: bool, strict: bool) -> None:
    """Validate an OpenSLO v1 spec: errors exit with code 2, warnings are printed.

    Example: causalsre slo check slos.yaml
    """
    from causalsre.slo.check import check_spec

    result = check_spec(spec, alert_windows)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        for item in result["slos"]:
            thresholds = ", ".join(f"{t:g}" for t in item["alert_thresholds"])
            conditions = " and ".join(item["conditions"]) or "finished ok"
            click.echo(f"ok: {item['name']}: {item['objective']:.6g} of requests with {conditions}, "
                       f"{item['budgeting_method']} over {item['window']}; burn-rate thresholds {thresholds}")
        for warning in result["warnings"]:
            click.echo(f"warning: {warning}", err=True)
    if strict and result["warnings"]:
        raise SystemExit(1)


def _parse_where(pairs: tuple[str, ...], columns: dict[str, str]) -> dict | None:
    from causalsre.slo.columns import check_column

    where: dict[str, list] = {}
    for pair in pairs:
        column, sep, text = pair.partition("=")
        if not sep:
            raise UserError(f"--where {pair!r} is not COLUMN=VALUE", "write e.g. --where tenant=acme")
        column = check_column(column.strip(), columns, what="--where column")
        where.setdefault(column, []).append(_where_value(column, columns[column], text))
    return {column: values[0] if len(values) == 1 else values for column, values in where.items()} or None


_INT_BITS = {"TINYINT": 8, "SMALLINT": 16, "INTEGER": 32, "BIGINT": 64, "HUGEINT": 128}


def _where_value(column: str, sql_type: str, text: str) -> object:
    """The --where value as the column's type, checked here so that DuckDB never sees a value it cannot
    compare (a 20-digit integer, text for a timestamp, anything for a JSON column)."""
    import math

    from causalsre.slo.columns import kind_of
    from causalsre.times import parse_instant

    kind, upper = kind_of(sql_type), sql_type.upper()
    if kind == "text":
        return text
    if kind == "bool":
        if text.strip().lower() not in ("true", "false", "1", "0"):
            raise UserError(f"--where {column} is true or false, not {text[:40]!r}", f"write e.g. {column}=true")
        return text.strip().lower() in ("true", "1")
    if upper == "TIMESTAMP":
        return parse_instant(text, what=f"--where {column}")
    if kind != "number":
        raise UserError(f"--where cannot filter on {column} ({sql_type})",
                        "filter on a text, number, true/false or time column such as tenant or priority")
    stripped = text.strip()
    if stripped.lstrip("+-").isdigit() and len(stripped) <= 40:
        value: float | int = int(stripped)
    else:
        try:
            value = float(stripped) if len(stripped) <= 40 else math.nan
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise UserError(f"--where {column} needs a finite number, not {text[:40]!r}", "write e.g. priority=0")
    bits = next((b for name, b in _INT_BITS.items() if upper.startswith(name)), None)
    if bits is None:
        return float(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise UserError(f"--where {column} needs a whole number, not {text[:40]!r}", "write e.g. priority=0")
        value = int(value)
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise UserError(f"--where {column} {text[:40]} does not fit its type {sql_type}",
                        f"give a whole number between {-(2 ** (bits - 1))} and {2 ** (bits - 1) - 1}")
    return value


@slo.command("report")
@DB
@slo_option(name="spec")
@click.option("--at", help="Evaluate at this ISO time (UTC, years 1970..2200); default: the latest request.",
              callback=not_blank("give an ISO 8601 time such as 2026-11-28T00:50:00Z, or leave --at out for the "
                                 "latest request"))
@json_option("Print the report as JSON.")
@click.option("--plot", "plot_path", type=OUTPUT_FILE, help="Write the burn-rate figure (PNG).")
@click.option("--group-by", multiple=True, type=click.Choice(GROUP_CHOICES), help="Report per group too.")
@click.option("--where", "where_pairs", multiple=True,
              help="Filter COLUMN=VALUE, e.g. tenant=acme or priority=0 (repeat for more); the value must fit "
                   "the column's type, and JSON columns such as attributes cannot be filtered.")
@click.option("--alert-windows", type=INPUT_FILE, help="Sloth AlertWindows YAML.")
@click.option("--min-events", default=1, show_default=True, type=click.IntRange(1, 2**53),
              help="Windows with fewer requests are no-data.")
@click.option("--resolution", help="Timeline resolution for --plot, e.g. 1m (default: about 600 points).",
              callback=not_blank("give a duration such as 1m or 30s, or leave --resolution out"))
@RUN
@click.option("--out", "out_path", type=OUTPUT_FILE,
              help="Write a self-contained report (.html or .md) with the plots inline.")
@click.option("--fail-on-alert", is_flag=True,
              help="Exit with code 1 when any burn-rate alert fires (of an SLO or of a --group-by group): a CI gate.")
def report(db_path, spec, at, as_json, plot_path, group_by, where_pairs, alert_windows, min_events, resolution,
           run_id, out_path, fail_on_alert):
    """Error budget, burn rate and multiwindow alerts of each SLO in SPEC over the database.

    Example: causalsre slo report --db telemetry.duckdb --slo slos.yaml --json --plot burn.png

    In CI (the job fails while an alert fires; the report is still printed):
    causalsre slo report --db telemetry.duckdb --slo slos.yaml --fail-on-alert

    One run only: causalsre slo report --db suite.duckdb --slo slos.yaml --run rate_surge-s0
    """
    from causalsre.api import connect, slo_report
    from causalsre.slo.columns import database_columns

    if plot_path:
        from causalsre.report.palette import check_image_path

        check_image_path(plot_path, "--plot")
    if out_path:
        from causalsre.report.document import check_report_path

        check_report_path(out_path)
    # The one implementation is the API's (cs.slo_report): this command parses options and prints.
    con = connect(db_path)
    try:
        result = slo_report(con, spec, at=at, where=_parse_where(where_pairs, database_columns(con)),
                            group_by=group_by, alert_windows=alert_windows, min_events=min_events,
                            resolution=resolution, run=run_id, timeline=bool(plot_path or out_path))
    finally:
        con.close()
    reports = result.data
    if plot_path:
        from causalsre.report.figures import plot_timelines

        plot_timelines(result.timelines, plot_path, result.alert_windows)
    if out_path:
        from causalsre.report import Report, write_report
        from causalsre.report.builders import slo_section, slo_summary

        document = Report(f"SLO report: {', '.join(r['name'] for r in reports)}", [slo_summary(r) for r in reports],
                          [slo_section(reports, result.timelines, result.alert_windows)],
                          {"database": db_path, "spec": spec, "evaluated at": reports[0].get("at")})
        write_report(document, out_path)
    if as_json:
        click.echo(result.to_json())
    else:
        _print_table(reports)
    for written in (plot_path, out_path):
        if written and not as_json:
            click.echo(f"wrote {written}")
    firing = firing_alerts(reports)
    if fail_on_alert and firing:  # on stderr, so that --json's stdout stays the report
        click.echo(f"{len(firing)} alert(s) firing: {', '.join(firing[:5])}", err=True)
        raise click.exceptions.Exit(1)  # an alert fired (docs/cli.md: exit codes)


def firing_alerts(reports: list[dict]) -> list[str]:
    """``SLO[group] severity`` of every firing alert, of each SLO and each of its groups."""
    out = []
    for item in reports:
        for label, row in [(item["name"], item)] + [
                (item["name"] + "[" + ",".join(f"{k}={v}" for k, v in g["group"].items()) + "]", g)
                for g in item.get("groups", [])]:
            out += [f"{label} {a['severity']}" for a in row.get("alerts", []) if a.get("firing")]
    return out


def _fmt(value, spec: str = ".4g") -> str:
    return "no data" if value is None else format(value, spec)


def _print_table(reports: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="SLO error budgets")
    for heading in ("SLO", "objective", "events", "bad", "SLI", "budget used", "remaining", "burn", "firing"):
        table.add_column(heading, justify="left" if heading in ("SLO", "firing") else "right")
    for item in reports:
        rows = [(item["name"], item)] + [
            ("  " + ", ".join(f"{k}={v}" for k, v in g["group"].items()), g) for g in item.get("groups", [])
        ]
        for label, row in rows:
            firing = [f"{a['severity']} {a['threshold']:.3g}x ({a['long_window']}/{a['short_window']})"
                      for a in row["alerts"] if a["firing"]]
            table.add_row(label, f"{row['objective']:.4%}", str(row["events"]), str(row["bad_events"]),
                          _fmt(row["sli"], ".4%"), _fmt(row["budget_consumed"], ".1%"),
                          _fmt(row["budget_remaining"], ".1%"), _fmt(row["burn_rate"], ".3g"),
                          "; ".join(firing) or "-")
    console = Console()
    if not console.is_terminal:  # piped output: do not wrap SLO names at 80 columns
        console = Console(width=200)
    console.print(table)

"""``causalsre bench slo|postmortem|bayes``: the analysis benchmarks (no engine runs), registered on the
``causalsre bench`` group in :mod:`causalsre.cli.bench`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from causalsre.cli.options import JSON, SEED, OutputFolder, db_option, finite
from causalsre.errors import UserError


@click.command("slo")
@click.option("--num-requests", "--requests", "num_requests", type=click.IntRange(1000, 1 << 40),
              help="requests to generate [default: 10,000,000; 100,000,000 with --fleet]")
@click.option("--fleet", is_flag=True,
              help="a fleet's history as Hive-partitioned Parquet per day, the report read from the files, "
                   "against Polars' lazy scan (needs the bench extra: pip install 'causalsre[bench]')")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650), help="--fleet: days of history")
@click.option("--dir", "folder", type=OutputFolder(path_type=Path),
              help="--fleet: write the Parquet here (kept) instead of a temporary folder (deleted)")
@click.option("--reuse", is_flag=True, help="--fleet: read the Parquet an earlier run left in --dir (no writing)")
@click.option("--polars-engine", default="streaming", show_default=True, type=click.Choice(["streaming", "in-memory"]),
              help="--fleet: Polars' collect engine (in-memory took 7.2 GiB at 30M requests)")
@click.option("--memory-cap-gib", default=12.0, show_default=True, type=finite(0.5, 1 << 20),
              help="--fleet: a side whose resident set passes min(this, available - 2 GiB) is stopped and "
                   "reported skipped")
@SEED
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1, 1024), help="DuckDB (and Polars) threads")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1, 100), help="without --fleet")
@JSON
def slo_command(num_requests, fleet, days, folder, reuse, polars_engine, memory_cap_gib, seed, threads, repeats,
                as_json) -> None:
    """The SLO report (DuckDB) against a straightforward pandas implementation on the same generated
    requests; checks both give the same numbers. With --fleet: N requests as Parquet, the report straight
    from the files against Polars, wall time and peak RSS of each (each side in its own process).

    Example: causalsre bench slo --json

    Example: causalsre bench slo --fleet --requests 10000000 --json
    """
    progress = (lambda message: None) if as_json else (lambda message: click.echo(f"... {message}", err=True))
    if fleet:
        _fleet(num_requests or 100_000_000, days, folder, seed, threads, as_json, progress,
               dict(reuse=reuse, polars_engine=polars_engine, memory_cap_gib=memory_cap_gib))
        return
    from causalsre.bench.slo import run

    report = run(num_requests or 10_000_000, seed, threads, repeats)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"{report['num_requests']:,} requests: DuckDB report {report['duckdb_report_s']} s, pandas "
                   f"{report['pandas_total_s']} s: {report['speedup_vs_pandas_total']}x; "
                   f"numbers agree: {report['numbers_agree']}")
    if not report["numbers_agree"]:
        raise UserError(f"the DuckDB and pandas reports disagree on {', '.join(report['disagreements'])}",
                        "this is a bug: report it with the --json output")


def _fleet(requests, days, folder, seed, threads, as_json, progress, options) -> None:
    try:
        import polars  # noqa: F401
    except ImportError:
        raise UserError("the fleet benchmark's peer, Polars, is not installed",
                        "pip install 'causalsre[bench]'") from None
    from causalsre.bench.fleet import run

    report = run(requests, days, folder, seed, threads, keep=folder is not None, progress=progress, **options)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        ours, peer = report["ours"], report["peer"]
        theirs = (f"Polars skipped ({peer['skipped']})" if "skipped" in peer else
                  f"Polars {peer['seconds']} s, peak {peer['peak_rss_gib']} GiB; ours/Polars "
                  f"{report['ratio_ours_over_polars']}; agree: {report['agree']}")
        click.echo(f"{report['requests']:,} requests in {report['parquet']['files']} Parquet files "
                   f"({report['parquet']['gib']} GiB): ours {ours['seconds']} s, peak {ours['peak_rss_gib']} GiB; "
                   + theirs)
    if report["agree"] is False:
        raise UserError(f"our report and Polars disagree on {', '.join(report['disagreements'])}",
                        "this is a bug: report it with the --json output")


@click.command("postmortem")
@click.option("--requests", default=100_000, show_default=True, type=click.IntRange(1000, 1 << 34))
@click.option("--baseline/--no-baseline", default=None,
              help="also time the pipeline without subsampling [default: only up to 1,000,000 requests]")
@db_option("write the incident to this file and keep it; a file already there is reused (its own "
           "request count, not --requests)", required=False, name="db")
@JSON
def postmortem_command(requests, baseline, db, as_json) -> None:
    """Postmortem speed: a synthetic incident of N requests (known cause cpu_contention) written through the
    schema, the postmortem as shipped (windows over 200k requests subsampled, stratified), against the same
    pipeline without subsampling.

    Example: causalsre bench postmortem --requests 10000000 --json

    Generate once, time again: causalsre bench postmortem --requests 10000000 --db /tmp/pm10m.duckdb --json
    """
    from causalsre.bench.postmortem import run

    progress = (lambda message: None) if as_json else (lambda message: click.echo(f"... {message}", err=True))
    report = run(requests, with_baseline=baseline, progress=progress, db=Path(db) if db else None)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        used = report["rows_used"]
        click.echo(f"{report['requests']:,} requests: postmortem {report['seconds']} s, top cause "
                   f"{report['top_factor']} (expected {report['expected']})"
                   + (f", rows used {used['baseline']:,} + {used['incident']:,}" if used else "")
                   + (f"; without subsampling {report['baseline']['seconds']} s ({report['speedup_vs_baseline']}x)"
                      if "baseline" in report else ""))


@click.command("bayes")
@click.option("--requests", default=100_000, show_default=True, type=click.IntRange(1000, 1 << 30))
@click.option("--baseline-requests", default=20_000, show_default=True, type=click.IntRange(100, 1 << 30))
@SEED
@JSON
def bayes_command(requests, baseline_requests, seed, as_json) -> None:
    """The Bayesian burn model's fit and what-if on N requests of the known SCM, against the same model and
    sampler with one Bernoulli cell per request (fitting throughput ratio).

    Example: causalsre bench bayes --requests 100000 --json
    """
    from causalsre.bench.bayes import run

    report = run(requests, baseline_requests, seed)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"fit {report['fit_s']:.1f} s on {requests:,} requests ({report['fit_cells']} cells), "
                   f"{report['fit_throughput_ratio_vs_baseline']:.1f}x the per-request baseline's throughput; "
                   f"{report['fit_diagnostics']}")

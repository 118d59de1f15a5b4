"""``causalsre bench``: benchmarks that print JSON with ratios against baselines measured in the same run."""

from __future__ import annotations

import json
from pathlib import Path

import click

from causalsre.cli.options import JSON, SEED, db_option, finite
from causalsre.errors import UserError


@click.group()
def bench() -> None:
    """Benchmarks (each prints a JSON report with --json)."""


def _range(text: str, name: str) -> tuple[int, int]:
    try:
        low, high = (int(x) for x in text.split(":"))
    except ValueError:
        raise UserError(f"{name} must look like MIN:MAX, got {text!r}", f"pass e.g. --{name} 16:256") from None
    if not 1 <= low <= high:
        raise UserError(f"{name} needs 1 <= MIN <= MAX, got {text!r}", f"pass e.g. --{name} 16:256")
    return low, high


@bench.command("engine")
@click.option("--preset", default="small", show_default=True, help="model preset: tiny, small, medium, large")
@click.option("--num-requests", default=32, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--prompt-lengths", default="16:256", show_default=True, help="MIN:MAX prompt tokens")
@click.option("--output-lengths", default="16:128", show_default=True, help="MIN:MAX output tokens")
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1, 1024))
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda")
@click.option("--dtype", default="float32", show_default=True,
              type=click.Choice(["float32", "bfloat16", "float16"]))
@SEED
@click.option("--static-batch-size", default=8, show_default=True, type=click.IntRange(1, 4096))
@click.option("--max-num-seqs", default=32, show_default=True, type=click.IntRange(1, 4096))
@click.option("--max-num-batched-tokens", default=48, show_default=True, type=click.IntRange(1, 1 << 20),
              help="token budget per step, for the engine and transformers' continuous batching alike; the "
                   "default holds CPU decode steps near static generate's inter-token latency (Sarathi-Serve's "
                   "rule); 256 gives more throughput and longer inter-token gaps")
@click.option("--chunk-size", default=128, show_default=True, type=click.IntRange(1, 1 << 20))
@click.option("--baselines", default="static,continuous", show_default=True,
              help="comma list of static, continuous; or none")
@click.option("--rounds", default=2, show_default=True, type=click.IntRange(1, 100),
              help="interleaved rounds; each system reports its best (static generate runs once)")
@click.option("--peer", type=click.Choice(["vllm"]), default=None,
              help="instead: the engine against the peer vLLM (make peer-vllm) on the same shape and requests, "
                   "in one run (docs/benchmarks.md); skipped with the reason where .venv-vllm is absent")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), help="also write the JSON here")
@JSON
def engine_command(preset, num_requests, prompt_lengths, output_lengths, threads, device, dtype, seed,
                   static_batch_size, max_num_seqs, max_num_batched_tokens, chunk_size, baselines, rounds,
                   peer, out_path, as_json) -> None:
    """The inference engine against Hugging Face transformers (static generate and continuous batching) on
    the same model, weights and mixed workload, plus telemetry cost and decode roofline fraction.

    Example: causalsre bench engine --json

    Against vLLM: causalsre bench engine --peer vllm --preset tiny --num-requests 16 --json
    """
    from harness.engine.benchmark.run import BenchSettings, run_benchmark
    from harness.engine.config import MODEL_PRESETS

    if preset not in MODEL_PRESETS:
        raise UserError(f"unknown preset {preset!r}", f"use one of {', '.join(MODEL_PRESETS)}")
    chosen = tuple(b.strip() for b in baselines.split(",") if b.strip() and b.strip() != "none")
    unknown = sorted(set(chosen) - {"static", "continuous"})
    if unknown:
        raise UserError(f"unknown baseline(s): {', '.join(unknown)}", "use static, continuous or none")
    settings = BenchSettings(
        preset=preset, num_requests=num_requests, seed=seed, threads=threads, device=device, dtype=dtype,
        prompt_range=_range(prompt_lengths, "prompt-lengths"), output_range=_range(output_lengths, "output-lengths"),
        static_batch_size=static_batch_size, max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens, chunk_size=chunk_size, baselines=chosen,
        rounds=rounds)
    progress = (lambda message: None) if as_json else (lambda message: click.echo(f"... {message}", err=True))
    if peer == "vllm":
        from harness.peers.bench import run_peer_benchmark

        report = run_peer_benchmark(settings, progress=progress)
        if "skipped" in report:
            click.echo(f"skipped: {report['skipped']}", err=True)
    else:
        report = run_benchmark(settings, progress=progress)
    text = json.dumps(report, indent=2)
    if out_path is not None:
        out_path.write_text(text + "\n")
    if as_json:
        click.echo(text)
    elif peer == "vllm":
        _print_peer_summary(report)
    else:
        _print_summary(report)


def _print_peer_summary(report: dict) -> None:
    if "skipped" in report:
        return
    r = report["ratio_ours_over_vllm"]
    for name in ("ours", "vllm"):
        x = report[name]
        click.echo(f"{name:5} {x['throughput_tok_s']} tok/s, TTFT p50 {x['p50_ttft_s']} s p99 {x['p99_ttft_s']} s, "
                   f"TPOT p50 {x['p50_tpot_s']} s p99 {x['p99_tpot_s']} s")
    click.echo(f"ours/vLLM: throughput {r['throughput']}x, TTFT p50 {r['p50_ttft']}x, TPOT p50 {r['p50_tpot']}x "
               f"(load average {report['machine']['load_average'][0]})")


def _print_summary(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"engine benchmark ({report['model']['preset']}, {report['machine']['device']}, "
                        f"{report['machine']['threads']} threads)")
    for column in ("system", "tok/s", "tok/CPU-s", "p99 TPOT s", "engine/baseline"):
        table.add_column(column)
    table.add_row("engine", str(report["throughput_tok_s"]), str(report["tok_per_cpu_s"]),
                  str(report["p99_tpot_s"]), "")
    for name, b in report["baselines"].items():
        if "skipped" in b:
            table.add_row(name, "-", "-", "-", b["skipped"])
        else:
            table.add_row(name, str(b["throughput_tok_s"]), str(b["tok_per_cpu_s"]), str(b["p99_tpot_s"]),
                          f"{b['ratio']}x")
    Console().print(table)
    t, r = report["telemetry"], report["roofline_fraction"]
    click.echo(f"telemetry overhead {t['overhead_fraction']:.1%} ({t['callback_ns_mean']} ns per callback); "
               f"decode roofline fraction batch 1: {r['batch_1']}, benchmark batches: {r['benchmark']}")
    for warning in report.get("roofline", {}).get("warnings", []):
        click.echo(f"warning: {warning}", err=True)


@bench.command("slo")
@click.option("--num-requests", "--requests", "num_requests", type=click.IntRange(1000, 1 << 40),
              help="requests to generate [default: 10,000,000; 100,000,000 with --fleet]")
@click.option("--fleet", is_flag=True,
              help="a fleet's history as Hive-partitioned Parquet per day, the report read from the files, "
                   "against Polars' lazy scan (needs the bench extra: pip install 'causalsre[bench]')")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650), help="--fleet: days of history")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
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
        raise UserError(f"the DuckDB and pandas reports disagree on {', '.join(report['disagreements'])}")


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
        raise UserError(f"our report and Polars disagree on {', '.join(report['disagreements'])}")


@bench.command("postmortem")
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


@bench.command("serve")
@click.option("--preset", default="small", show_default=True, help="model preset: tiny, small, medium, large")
@click.option("--num-requests", default=48, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--rate", default=2.0, show_default=True, type=finite(0.01, 10_000),
              help="Poisson arrivals per second (the same schedule for both sides)")
@click.option("--prompt-lengths", default="16:128", show_default=True, help="MIN:MAX prompt tokens")
@click.option("--output-lengths", default="16:64", show_default=True, help="MIN:MAX output tokens")
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1, 1024))
@click.option("--max-num-seqs", default=16, show_default=True, type=click.IntRange(1, 4096))
@click.option("--max-num-batched-tokens", default=256, show_default=True, type=click.IntRange(1, 1 << 20))
@click.option("--rounds", default=2, show_default=True, type=click.IntRange(1, 100),
              help="interleaved rounds (ABBA order); the percentiles pool them, each round's ratio is listed")
@SEED
@JSON
def serve_command(preset, num_requests, rate, prompt_lengths, output_lengths, threads, max_num_seqs,
                  max_num_batched_tokens, rounds, seed, as_json) -> None:
    """What `causalsre serve` adds to a request's latency: the same requests at the same arrival times through
    the engine in-process and through `causalsre serve` over real HTTP (streaming /v1/completions); TTFT and
    end-to-end p50/p99 of each, their ratio, and the median added latency per request (target <= 5 %).

    Example: causalsre bench serve --json

    Quick: causalsre bench serve --preset tiny --num-requests 8 --rate 4 --rounds 1
    """
    from harness.engine.config import MODEL_PRESETS

    from causalsre.bench.serve import run

    if preset not in MODEL_PRESETS:
        raise UserError(f"unknown preset {preset!r}", f"use one of {', '.join(MODEL_PRESETS)}")
    progress = (lambda message: None) if as_json else (lambda message: click.echo(f"... {message}", err=True))
    report = run(preset=preset, num_requests=num_requests, rate=rate, seed=seed, threads=threads,
                 prompt_range=_range(prompt_lengths, "prompt-lengths"),
                 output_range=_range(output_lengths, "output-lengths"), rounds=rounds, max_num_seqs=max_num_seqs,
                 max_num_batched_tokens=max_num_batched_tokens, progress=progress)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for key in ("in_process", "http"):
            x = report[key]
            click.echo(f"{key:10} {x['ok']}/{x['requests']} ok; TTFT p50 {x['p50_ttft_s']} s p99 {x['p99_ttft_s']} s; "
                       f"end-to-end p50 {x['p50_e2e_s']} s p99 {x['p99_e2e_s']} s")
        r, p = report["ratio_http_over_in_process"], report["paired"]
        click.echo(f"HTTP/in-process: TTFT p50 {r['p50_ttft']}x p99 {r['p99_ttft']}x, end-to-end p50 {r['p50_e2e']}x "
                   f"p99 {r['p99_e2e']}x; per request median +{p['median_added_e2e_s']} s "
                   f"({p['median_added_e2e_fraction']}); same requests: {report['same_requests']}")


@bench.command("bayes")
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

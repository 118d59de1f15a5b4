"""``causalsre bench``: benchmarks that print JSON with ratios against baselines measured in the same run."""

from __future__ import annotations

import json
from pathlib import Path

import click

from causalsre.cli.options import JSON, SEED, OutputPath, finite
from causalsre.errors import UserError
from causalsre.cli.bench_analysis import bayes_command, postmortem_command, slo_command


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
@click.option("--out", "out_path", type=OutputPath(path_type=Path), help="also write the JSON here")
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
        from causalsre.safeio import write_text

        write_text(out_path, text + "\n")
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
    old = r.get("against_sgemm1024")
    if old:
        click.echo(f"  against the 1024^3 sgemm ceiling used until 2026-12-02: batch 1: {old['batch_1']}, "
                   f"benchmark batches: {old['benchmark']}")
    for warning in report.get("roofline", {}).get("warnings", []):
        click.echo(f"warning: {warning}", err=True)


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


# The analysis benchmarks live in their own module (they never run the engine); the group lists them all.
for _command in (slo_command, postmortem_command, bayes_command):
    bench.add_command(_command)

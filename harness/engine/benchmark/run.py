"""Runs the engine benchmark and returns its JSON-ready report (see docs/engine.md for how to read it)."""

from __future__ import annotations

import platform
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field

import torch

from harness.engine.benchmark import hf_baselines
from harness.engine.benchmark.roofline import measure_hardware, roofline_seconds
from harness.engine.benchmark.workload import BenchRequest, mixed_workload, spans, summarize
from harness.engine.config import EngineConfig, ModelConfig
from harness.engine.engine import Engine
from harness.engine.observer import NullObserver, StepRecord


class RecordingObserver:
    """What a telemetry writer does on the hot path: append tuples to in-memory lists."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.tokens: list[tuple] = []
        self.steps: list[StepRecord] = []
        self.requests: list = []
        self.decode_context: list[int] = []
        self.engine: Engine | None = None

    def on_event(self, request_id, event_type, ts_ns, step_id) -> None:
        self.events.append((request_id, event_type, ts_ns, step_id))

    def on_token(self, request_id, token_index, step_id, ts_ns) -> None:
        self.tokens.append((request_id, token_index, step_id, ts_ns))

    def on_step(self, step) -> None:
        self.steps.append(step)
        self.decode_context.append(self.engine.last_decode_context_tokens if self.engine else 0)

    def on_request_done(self, record) -> None:
        self.requests.append(record)


@dataclass
class BenchSettings:
    preset: str = "small"
    num_requests: int = 32
    seed: int = 0
    threads: int = 2
    device: str = "cpu"
    dtype: str = "float32"
    prompt_range: tuple[int, int] = (16, 256)
    output_range: tuple[int, int] = (16, 128)
    static_batch_size: int = 8
    max_num_seqs: int = 32
    max_num_batched_tokens: int = 256
    chunk_size: int = 128
    baselines: tuple[str, ...] = ("static", "continuous")
    engine_overrides: dict = field(default_factory=dict)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _engine_config(s: BenchSettings, requests: list[BenchRequest]) -> EngineConfig:
    block = 16
    # room for every request at once, plus the warm-up and batch-1 runs that share the engine
    blocks = sum(-(-(len(r.prompt) + r.target_output_tokens) // block) for r in requests) + 64
    knobs = dict(model=s.preset, device=s.device, dtype=s.dtype, num_threads=s.threads, seed=s.seed,
                 max_num_seqs=s.max_num_seqs, max_num_batched_tokens=s.max_num_batched_tokens,
                 enable_chunked_prefill=True, chunk_size=s.chunk_size, policy="fcfs",
                 batching_mode="decode_first", num_kv_blocks=blocks, block_size=block,
                 max_queue_len=max(64, len(requests)), request_timeout_s=None)
    knobs.update(s.engine_overrides)
    return EngineConfig(**knobs)


def run_engine(engine: Engine, requests: list[BenchRequest], id_base: int) -> tuple[dict, list[list[int]]]:
    """All requests arrive at once (offline throughput); returns the summary and the generated tokens."""
    device = engine.runner.device
    _sync(device)
    start_ns = engine.now_ns()
    for i, r in enumerate(requests):
        if not engine.add_request(id_base + i, r.prompt, r.target_output_tokens):
            raise RuntimeError("benchmark request rejected: raise max_queue_len")
    seqs = [engine.sequences[id_base + i] for i in range(len(requests))]
    while engine.has_unfinished():
        engine.step()
    _sync(device)
    end_ns = engine.now_ns()
    ns = 1e-9
    summary = summarize([(s.first_token_ns * ns, s.last_token_ns * ns, s.num_output_tokens) for s in seqs],
                        start_ns * ns, end_ns * ns)
    return summary, [s.token_ids[s.num_prompt_tokens:] for s in seqs]


def _callback_cost_ns(recorder: RecordingObserver) -> float:
    """Mean cost of one observer call, replaying the recorded calls into a fresh recorder."""
    fresh = RecordingObserver()
    calls = [(fresh.on_token, t) for t in recorder.tokens] + [(fresh.on_event, e) for e in recorder.events]
    t = time.perf_counter_ns()
    for fn, args in calls:
        fn(*args)
    for step in recorder.steps:
        fresh.on_step(step)
    return (time.perf_counter_ns() - t) / max(1, len(calls) + len(recorder.steps))


def _roofline(engine: Engine, recorder: RecordingObserver, hardware: dict, batch1_steps: list[tuple]) -> dict:
    mc, elt = engine.model_config, engine.runner.kv_caches.element_size()
    by_batch: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for step, ctx in zip(recorder.steps, recorder.decode_context):
        if step.num_prefill_seqs == 0 and step.num_decode_seqs:
            by_batch[step.num_decode_seqs].append(((step.end_ns - step.start_ns) * 1e-9, ctx))

    def row(batch: int, samples: list[tuple[float, int]]) -> dict:
        achieved = statistics.median(t for t, _ in samples)
        ctx = int(statistics.median(c for _, c in samples))
        bound = roofline_seconds(mc, batch, ctx, elt, hardware)
        return {"batch": batch, "steps": len(samples), "median_step_s": round(achieved, 6),
                "roofline_step_s": round(bound, 6), "fraction": round(bound / achieved, 3)}

    rows = [row(b, v) for b, v in sorted(by_batch.items()) if len(v) >= 3]
    weighted = sum(r["fraction"] * r["steps"] for r in rows) / max(1, sum(r["steps"] for r in rows))
    return {"bandwidth_gb_s": round(hardware["bandwidth_bytes_s"] / 1e9, 2),
            "matmul_gflop_s": round(hardware["matmul_flop_s"] / 1e9, 2),
            "batch_1": row(1, batch1_steps) if batch1_steps else None,
            "by_batch": rows, "benchmark_weighted_fraction": round(weighted, 3)}


def _batch1_steps(engine: Engine, seed: int) -> list[tuple[float, int]]:
    recorder = RecordingObserver()
    recorder.engine = engine
    engine.observer = recorder
    prompt = mixed_workload(1, engine.model_config.vocab_size, seed + 1, (128, 128), (64, 64))[0]
    run_engine(engine, [prompt], id_base=10_000_000)
    return [((s.end_ns - s.start_ns) * 1e-9, c) for s, c in zip(recorder.steps, recorder.decode_context)
            if s.num_prefill_seqs == 0 and s.num_decode_seqs == 1]


def _same_tokens(a: list[list[int]], b: list[list[int]]) -> float:
    return round(sum(x == y for x, y in zip(a, b)) / max(1, len(a)), 3)


def run_benchmark(s: BenchSettings, progress=lambda message: None) -> dict:
    torch.set_num_threads(s.threads)
    mc = ModelConfig.from_name(s.preset)
    requests = mixed_workload(s.num_requests, mc.vocab_size, s.seed, s.prompt_range, s.output_range)
    warmup = mixed_workload(4, mc.vocab_size, s.seed + 7, (8, 64), (4, 8))
    config = _engine_config(s, requests)
    progress("building the engine")
    engine = Engine(config, observer=NullObserver())
    run_engine(engine, warmup, id_base=1_000_000)
    progress("engine, telemetry off (NullObserver)")
    null_summary, engine_tokens = run_engine(engine, requests, id_base=0)
    progress("engine, telemetry on (recording observer)")
    recorder = RecordingObserver()
    recorder.engine = engine
    engine.observer = recorder
    summary, _ = run_engine(engine, requests, id_base=2_000_000)
    progress("roofline: hardware and batch-1 decode")
    hardware = measure_hardware(engine.runner.device, engine.runner.dtype)
    batch1 = _batch1_steps(engine, s.seed)
    report = {
        "machine": {"device": s.device, "threads": s.threads, "dtype": s.dtype, "torch": torch.__version__,
                    "cpu": platform.processor() or platform.machine(),
                    "gpu": torch.cuda.get_device_name() if s.device.startswith("cuda") else None},
        "model": {"preset": s.preset, "parameters": mc.num_parameters()},
        "workload": {"num_requests": s.num_requests, "seed": s.seed, "prompt_range": list(s.prompt_range),
                     "output_range": list(s.output_range), "arrivals": "all at t=0 (offline)"},
        "engine_config": config.to_dict(),
        **summary,
        "telemetry": {
            "null_observer_tok_s": null_summary["throughput_tok_s"],
            "recording_observer_tok_s": summary["throughput_tok_s"],
            "overhead_fraction": round(1 - summary["throughput_tok_s"] / null_summary["throughput_tok_s"], 4),
            "callback_ns_mean": round(_callback_cost_ns(recorder), 1),
            "calls": len(recorder.tokens) + len(recorder.events) + len(recorder.steps),
        },
    }
    roofline = _roofline(engine, recorder, hardware, batch1)
    report["roofline"] = roofline
    report["roofline_fraction"] = {"batch_1": roofline["batch_1"]["fraction"] if roofline["batch_1"] else None,
                                   "benchmark": roofline["benchmark_weighted_fraction"]}
    report["baselines"] = _baselines(s, engine, requests, engine_tokens, summary, progress)
    return report


def _baselines(s: BenchSettings, engine: Engine, requests, engine_tokens, summary, progress) -> dict:
    import transformers

    device, dtype = engine.runner.device, engine.runner.dtype
    hf = hf_baselines.build_hf_model(engine.runner.model, device, dtype)
    warm = requests[:2]
    out: dict = {}

    def record(name: str, result) -> None:
        times, start, end, tokens = result
        b = summarize(spans(times), start, end)
        b["ratio"] = round(summary["throughput_tok_s"] / b["throughput_tok_s"], 3)
        b["p99_tpot_ratio"] = round(summary["p99_tpot_s"] / b["p99_tpot_s"], 3) if b["p99_tpot_s"] else None
        b["same_tokens_fraction"] = _same_tokens(engine_tokens, tokens)
        b["transformers"] = transformers.__version__
        out[name] = b

    if "static" in s.baselines:
        progress(f"transformers generate(), static batches of {s.static_batch_size}")
        hf_baselines.run_static(hf, warm, s.static_batch_size, device)
        record("hf_static_generate", hf_baselines.run_static(hf, requests, s.static_batch_size, device))
        out["hf_static_generate"]["batch_size"] = s.static_batch_size
    if "continuous" in s.baselines:
        if not hf_baselines.has_continuous_batching(hf):
            out["hf_continuous_batching"] = {"skipped": f"transformers {transformers.__version__} has none"}
        else:
            progress("transformers continuous batching")
            # the same token budget and request limit as the engine
            hf_baselines.run_continuous(hf, warm, s.max_num_batched_tokens, s.max_num_seqs)
            record("hf_continuous_batching",
                   hf_baselines.run_continuous(hf, requests, s.max_num_batched_tokens, s.max_num_seqs))
    return out

"""What the engine benchmark measures beside throughput: the K/V each decode step read, the telemetry calls
(and what one costs), and the roofline fraction of the decode-only steps (docs/engine.md, "How to read the
JSON"). Split from run.py, which runs the systems."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict

from harness.engine.benchmark.roofline import roofline_seconds
from harness.engine.engine import Engine
from harness.engine.observer import StepRecord


class DecodeContextMeter:
    """K/V tokens the last step's decodes read (for the roofline), measured by wrapping the engine's runner:
    the benchmark's figure, so the engine itself keeps nothing for it. The engine calls the runner once per
    step, just before it reports the step to its observer."""

    def __init__(self, engine: Engine) -> None:
        self.last = 0
        run = engine.runner.run

        def metered(chunks):
            self.last = sum(c.start + 1 for c in chunks if not c.is_prefill)
            return run(chunks)

        engine.runner.run = metered


class RecordingObserver:
    """What a telemetry writer does on the hot path: append tuples to in-memory lists."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.tokens: list[tuple] = []
        self.steps: list[StepRecord] = []
        self.requests: list = []
        self.decode_context: list[int] = []
        self.meter: DecodeContextMeter | None = None

    def on_event(self, request_id, event_type, ts_ns, step_id) -> None:
        self.events.append((request_id, event_type, ts_ns, step_id))

    def on_token(self, request_id, token_index, step_id, ts_ns) -> None:
        self.tokens.append((request_id, token_index, step_id, ts_ns))

    def on_step(self, step) -> None:
        self.steps.append(step)
        self.decode_context.append(self.meter.last if self.meter else 0)

    def on_request_done(self, record) -> None:
        self.requests.append(record)


def callback_cost_ns(recorder: RecordingObserver) -> float:
    """Mean cost of one observer call, replaying the recorded calls into a fresh recorder."""
    fresh = RecordingObserver()
    calls = [(fresh.on_token, t) for t in recorder.tokens] + [(fresh.on_event, e) for e in recorder.events]
    t = time.perf_counter_ns()
    for fn, args in calls:
        fn(*args)
    for step in recorder.steps:
        fresh.on_step(step)
    return (time.perf_counter_ns() - t) / max(1, len(calls) + len(recorder.steps))


def roofline_report(engine: Engine, recorder: RecordingObserver, hardware: dict, batch1_steps: list[tuple],
                    probes: list[dict] | None = None) -> dict:
    """Per decode-only batch size, the median step against the roofline step. Every fraction is given
    against the model-shape compute ceiling and, as ``fraction_sgemm1024``, against the 1024^3 sgemm that
    was the ceiling until 2026-12-02, so a change of yardstick is never mistaken for a change of engine."""
    mc, elt = engine.model_config, engine.runner.kv_caches.element_size()
    by_batch: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for step, ctx in zip(recorder.steps, recorder.decode_context):
        if step.num_prefill_seqs == 0 and step.num_decode_seqs:
            by_batch[step.num_decode_seqs].append(((step.end_ns - step.start_ns) * 1e-9, ctx))
    old = "sgemm_flop_s" in hardware

    def row(batch: int, samples: list[tuple[float, int]]) -> dict:
        achieved = statistics.median(t for t, _ in samples)
        ctx = int(statistics.median(c for _, c in samples))
        bound = roofline_seconds(mc, batch, ctx, elt, hardware)
        out = {"batch": batch, "steps": len(samples), "median_step_s": round(achieved, 6),
               "roofline_step_s": round(bound, 6), "fraction": round(bound / achieved, 3)}
        if old:
            out["fraction_sgemm1024"] = round(roofline_seconds(mc, batch, ctx, elt, hardware, "sgemm_flop_s")
                                              / achieved, 3)
        return out

    rows = [row(b, v) for b, v in sorted(by_batch.items()) if len(v) >= 3]

    def weighted(key: str) -> float:
        return round(sum(r[key] * r["steps"] for r in rows) / max(1, sum(r["steps"] for r in rows)), 3)

    batch_1 = row(1, batch1_steps) if batch1_steps else None
    warnings = []
    above = [r["batch"] for r in rows + ([batch_1] if batch_1 else []) if r["fraction"] > 1.0]
    if above:
        # A step cannot beat the hardware: the probes ran slower than the engine did (a busy machine).
        warnings.append(f"fraction above 1 at batch {', '.join(map(str, sorted(set(above))))}: every hardware "
                        "probe ran slower than the engine's own steps (a busy machine); the roofline is "
                        "understated, rerun on a quiet machine")
    report = {"bandwidth_gb_s": round(hardware["bandwidth_bytes_s"] / 1e9, 2),
              "matmul_gflop_s": round(hardware["matmul_flop_s"] / 1e9, 2),
              "matmul_probe": hardware.get("matmul_probe"),
              "probes": hardware.get("probes", 1), "bandwidth_probe": hardware.get("bandwidth_probe"),
              "bandwidth_spread": round(hardware.get("bandwidth_spread", 1.0), 3),
              "matmul_spread": round(hardware.get("matmul_spread", 1.0), 3),
              "batch_1": batch_1, "by_batch": rows, "benchmark_weighted_fraction": weighted("fraction"),
              "warnings": warnings}
    if old:
        report.update(sgemm1024_gflop_s=round(hardware["sgemm_flop_s"] / 1e9, 2),
                      sgemm1024_spread=round(hardware.get("sgemm_spread", 1.0), 3),
                      benchmark_weighted_fraction_sgemm1024=weighted("fraction_sgemm1024"))
    if probes:
        report["probe_values"] = [{"bandwidth_gb_s": round(p["bandwidth_bytes_s"] / 1e9, 2),
                                   "matmul_gflop_s": round(p["matmul_flop_s"] / 1e9, 2),
                                   "sgemm1024_gflop_s": round(p.get("sgemm_flop_s", 0.0) / 1e9, 2)}
                                  for p in probes]
    return report

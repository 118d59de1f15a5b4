"""Where a decode step's CPU time goes: ``python -m harness.engine.benchmark.profile --batch 32 --threads 1``
(``--per-op`` for a line per kernel).

Builds an engine, fills ``batch`` sequences (contexts 128 + 10 * (i % 32) tokens), then times decode-only
steps with each component's function wrapped by a per-thread CPU-time counter (``time.thread_time``: on a
shared machine, time spent descheduled does not count). Prints one line per component (docs/engine.md,
"Where a decode step goes"). The wrappers are set on this engine's objects only; nothing in the engine
keeps a hook for them.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time

import torch

from harness.engine import cpu_kernels
from harness.engine import model as model_module
from harness.engine.config import EngineConfig
from harness.engine.engine import Engine
from harness.engine.observer import NullObserver

LOOP = ("scheduler", "batch building (index tensors)", "telemetry (observer calls)")
# since 2026-12-02 the one call also runs the final norm and the lm_head of the sampled rows
STACK = "decoder layers + lm_head (one C call)"


def _wrap(counter: collections.Counter, undo: list, obj, name: str, label: str) -> None:
    fn = getattr(obj, name)
    undo.append((obj, name, obj.__dict__.get(name) if isinstance(obj, type) else fn))

    def timed(*args, **kwargs):
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            counter[label] += time.thread_time() - start

    setattr(obj, name, timed)


def profile_decode(preset: str = "small", batch: int = 32, threads: int = 1, steps: int = 20,
                   per_op: bool = False) -> dict:
    """Mean CPU milliseconds per decode step, by component, and the step's total. The fused path runs its
    decoder layers in one C call (cpu_kernels.decoder_stack) where the step fits the panel kernel, which no
    Python wrapper can see into; ``per_op`` runs the per-op loop it replaces (same kernels, same order) so
    each kernel gets its own line."""
    torch.set_num_threads(threads)
    engine = Engine(EngineConfig(model=preset, num_threads=threads, seed=0, max_num_seqs=max(64, batch),
                                 max_num_batched_tokens=4096, chunk_size=512, num_kv_blocks=4096, block_size=16,
                                 max_queue_len=max(128, batch), request_timeout_s=None), observer=NullObserver())
    gen = torch.Generator().manual_seed(1)
    vocab = engine.model_config.vocab_size
    for i in range(batch):
        prompt = torch.randint(0, vocab, (128 + 10 * (i % 32),), generator=gen).tolist()
        engine.add_request(i, prompt, steps + 8)
    while any(s.num_computed_tokens < s.num_prompt_tokens for s in engine.sequences.values()):
        engine.step()
    for _ in range(3):
        engine.step()
    acc: collections.Counter = collections.Counter()
    undo: list = []
    runner, wrap = engine.runner, lambda obj, name, label: _wrap(acc, undo, obj, name, label)
    stack = runner.use_cpu_kernels and not per_op and getattr(runner.model, "stack_weights", None) is not None
    if runner.use_cpu_kernels and not stack:
        runner.model.stack_weights = None
    if stack:
        wrap(cpu_kernels, "decoder_stack", STACK)
        wrap(model_module, "_project", "projections (matmuls)")      # all of them above 64 rows
        wrap(cpu_kernels, "add_rms_norm", "norms (+ residual add)")
        wrap(cpu_kernels, "paged_decode_attention", "attention")
    elif runner.use_cpu_kernels:
        # the fused path's module-level helpers and kernels, patched on the modules for this run
        wrap(model_module, "_project", "projections (matmuls)")
        wrap(cpu_kernels, "add_rms_norm", "norms (+ residual add)")
        wrap(cpu_kernels, "rotary_cache_write", "rotary + K/V cache write")
        wrap(cpu_kernels, "silu_mul", "SiLU-mul")
        wrap(cpu_kernels, "paged_decode_attention", "attention")
    else:
        wrap(model_module, "linear", "projections (matmuls)")
        wrap(model_module, "apply_rotary", "rotary + K/V cache write")
    wrap(runner, "prepare", LOOP[1])
    wrap(runner.model, "forward_paged", "forward")
    wrap(engine.scheduler, "schedule", LOOP[0])
    wrap(engine, "_emit", LOOP[2])
    per_step = []
    try:
        for _ in range(steps):
            start = time.thread_time()
            engine.step()
            per_step.append(time.thread_time() - start)
    finally:
        for obj, name, original in reversed(undo):     # the module-level patches must not outlive the run
            setattr(obj, name, original)
    total = sum(per_step)
    forward = acc.pop("forward")
    inside = sum(v for k, v in acc.items() if k not in LOOP)
    acc["other forward ops"] = forward - inside
    acc["engine loop and sampling"] = total - forward - sum(acc[k] for k in LOOP)
    ms = {k: round(v / steps * 1e3, 3) for k, v in sorted(acc.items(), key=lambda kv: -kv[1])}
    return {"preset": preset, "batch": batch, "threads": threads, "steps": steps,
            "path": ("fused C kernels, layers in one call" if stack else "fused C kernels, per op")
            if runner.use_cpu_kernels else "torch",
            "step_ms": round(total / steps * 1e3, 3), "median_step_ms": round(statistics.median(per_step) * 1e3, 3),
            "components_ms": ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--per-op", action="store_true",
                        help="the per-op loop instead of the one-call C stack: a line for every kernel")
    result = profile_decode(**vars(parser.parse_args()))
    print(f"{result['path']}, {result['preset']}, batch {result['batch']}, {result['threads']} thread(s): "
          f"{result['step_ms']} ms CPU a step (median {result['median_step_ms']})")
    for name, value in result["components_ms"].items():
        print(f"  {name:34s} {value:8.2f} ms  {100 * value / result['step_ms']:5.1f} %")


if __name__ == "__main__":
    main()

"""The benchmark's mixed workload and the latency/throughput arithmetic shared by every system measured."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class BenchRequest:
    prompt: list[int]
    target_output_tokens: int


def mixed_workload(num_requests: int, vocab_size: int, seed: int, prompt_range: tuple[int, int],
                   output_range: tuple[int, int]) -> list[BenchRequest]:
    """Prompt and output lengths drawn uniformly (seeded), so batches mix short and long requests."""
    rng = random.Random(seed)
    return [BenchRequest([rng.randrange(vocab_size) for _ in range(rng.randint(*prompt_range))],
                         rng.randint(*output_range)) for _ in range(num_requests)]


def spans(token_times: list[list[float]]) -> list[tuple[float, float, int]]:
    """(first token time, last token time, tokens) of each request that produced tokens."""
    return [(t[0], t[-1], len(t)) for t in token_times if t]


def summarize(requests: list[tuple[float, float, int]], start: float, end: float) -> dict:
    """Throughput and latency from each request's (first token, last token, count), seconds on one clock.

    TPOT of a request = (last token - first token) / (tokens - 1); the percentiles are over requests."""
    useful = sum(n for _, _, n in requests)
    tpot = [(last - first) / (n - 1) for first, last, n in requests if n > 1]
    ttft = [first - start for first, _, _ in requests]
    wall = end - start

    def pct(values: list[float], q: float, digits: int) -> float | None:
        return round(float(np.percentile(values, q)), digits) if values else None

    return {
        "output_tokens": useful,
        "wall_s": round(wall, 4),
        "throughput_tok_s": round(useful / wall, 2) if wall > 0 else None,
        "p50_tpot_s": pct(tpot, 50, 5), "p99_tpot_s": pct(tpot, 99, 5),
        "p50_ttft_s": pct(ttft, 50, 4), "p99_ttft_s": pct(ttft, 99, 4),
    }

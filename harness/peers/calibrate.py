"""How much load a running vLLM takes before it misses the SLO's first-token objective: a short ramp.

The harness sizes its own scenarios from the engine's measured capacity (``harness.capacity``); a real vLLM
on a shared machine is as fast as the machine is right now, so the recorder (``harness.peers.realfiles``)
measures it the same way before it records: Poisson arrivals at rising rates (a few seconds each), streamed
completions of the case's prompt and output lengths, and the capacity is the highest rate whose p90
time-to-first-token stays within the objective with no failed request. Cases are then sized as multiples of
it, so a baseline is clean and an incident burns on a quiet machine and a busy one alike.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np

TTFT_OBJECTIVE_S = 1.0  # models/slos/llm-serving.yaml: first token within 1 s
STEP_S = 4.0  # seconds of arrivals per rung of the ramp
RATES = (0.5, 0.8, 1.25, 2.0, 3.2, 5.0, 8.0, 12.5, 20.0)  # ~1.6x apart


def _one(client, url: str, model: str, prompt: list[int], output_len: int, out: list, index: int) -> None:
    """Stream one completion; ``out[index]`` becomes its TTFT in seconds, or None when it failed."""
    import httpx

    body = {"model": model, "prompt": prompt, "max_tokens": output_len, "ignore_eos": True,
            "stream": True, "temperature": 0.0}
    sent, first = time.monotonic(), None
    try:
        with client.stream("POST", f"{url}/v1/completions", json=body) as response:
            if response.status_code != 200:
                out[index] = None
                return
            # Read the whole reply (the request holds its slot until it finishes); the first chunk is its first token.
            for line in response.iter_lines():
                if first is None and line.startswith("data:") and line[5:].strip() not in ("", "[DONE]"):
                    first = time.monotonic() - sent
        out[index] = first
    except httpx.HTTPError:
        out[index] = None


def ttft_at(url: str, rate: float, input_len: int, output_len: int, seed: int, *, model: str = "causalsre",
            step_s: float = STEP_S) -> tuple[float, int]:
    """p90 TTFT (s) and failed requests of ``step_s`` seconds of Poisson arrivals at ``rate``."""
    import httpx

    rng = np.random.default_rng([seed, int(rate * 1000)])
    count = max(4, int(round(rate * step_s)))
    gaps = rng.exponential(1.0 / rate, count)
    results: list = [float("nan")] * count
    threads = []
    # One client for the rung (thread-safe): a client per request costs its TLS set-up, which on a busy
    # machine was most of a stub's 50 ms "first token".
    client = httpx.Client(timeout=60.0, limits=httpx.Limits(max_connections=None, max_keepalive_connections=64))
    start = time.monotonic()
    for i in range(count):
        start += gaps[i]
        time.sleep(max(0.0, start - time.monotonic()))
        prompt = rng.integers(10, 4000, input_len).tolist()  # token ids inside the tiny preset's vocabulary
        thread = threading.Thread(target=_one, args=(client, url, model, prompt, output_len, results, i), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    client.close()
    failed = sum(1 for r in results if r is None or r != r)
    ttfts = [r for r in results if r is not None and r == r]
    return (float(np.percentile(ttfts, 90)) if ttfts else float("inf")), failed


def calibrate_rate(url: str, input_len: int, output_len: int, *, seed: int = 0, model: str = "causalsre",
                   rates: tuple[float, ...] = RATES, step_s: float = STEP_S,
                   objective_s: float = TTFT_OBJECTIVE_S, log=None) -> dict:
    """The ramp: ``{"capacity": requests/s, "ramp": [[rate, p90 ttft, failed], ...]}``; capacity is the
    highest rate within the objective (the lowest rung's half when even that one missed it)."""
    ramp, capacity = [], rates[0] / 2
    for rate in rates:
        p90, failed = ttft_at(url, rate, input_len, output_len, seed, model=model, step_s=step_s)
        ramp.append([rate, round(p90, 3), failed])
        if log is not None:
            print(f"    ramp {rate:g}/s: p90 TTFT {p90:.2f} s, {failed} failed", file=log)
        if p90 > objective_s or failed:
            break
        capacity = rate
        time.sleep(1.0)  # let the last rung's stragglers drain before the next
    return {"capacity": capacity, "ramp": ramp, "input_len": input_len, "output_len": output_len}


if __name__ == "__main__":  # python -m harness.peers.calibrate URL INPUT_LEN OUTPUT_LEN
    import sys

    print(json.dumps(calibrate_rate(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), log=sys.stderr)))

"""What ``causalsre serve`` adds to a request's latency: ``causalsre bench serve [--json]``.

The same seeded requests (:func:`harness.engine.benchmark.workload.mixed_workload`) at the same seeded Poisson
arrival times are served twice per round, with the same engine settings (one run config read by both):

* **in-process**: an :class:`harness.engine.Engine` in this process, built on the main thread and stepped on a
  thread of its own, as ``serve``'s engine thread steps it (requests whose arrival time has come are added
  between steps); a request's TTFT and end-to-end latency are the times its first and last token's text was in
  the driver's hands (after the step that made it) minus its scheduled arrival. The thread matters: OpenMP's
  thread count is per thread, so an engine stepped off the main thread runs its parallel regions on one thread whatever ``num_threads`` says, which on a busy
  2-core machine was 7-10x faster than two threads on the main one (docs/benchmarks.md);
* **HTTP**: ``causalsre serve CONFIG --port 0`` started as a process of its own (no ``--db``), each request
  streamed over ``POST /v1/completions`` with httpx at its scheduled time (token-id prompt, ``max_tokens`` =
  its output length), TTFT and end-to-end taken when the client has parsed the first and last token's chunk.

Both sides mark the same point: the caller holds the token's text. What it costs to get there (the
client's read and parse of each event) is kept, as a user's client pays it too.

So the HTTP side carries everything a client of ``serve`` pays beyond the engine: the asyncio handler, the
hand-off to the engine thread and back, JSON and server-sent events, the loopback socket, and this client's
own parsing, which shares the machine's cores with the server. Rounds interleave the two sides; the
percentiles pool every round's requests, the paired figures compare each request with itself, and each
round's ratio is reported beside the pooled one.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from causalsre.errors import UserError
from causalsre.safeio import write_text

TARGET_ADDED = 0.05   # issue 17: serve adds at most 5 % to a request's latency
STARTUP_S = 180.0     # torch import and the engine build: slow on a busy 2-core machine


def _config_text(preset: str, threads: int, max_num_seqs: int, max_num_batched_tokens: int) -> str:
    # The one config both sides read; a request timeout of an hour (TOML has no null) so that a slow round on a
    # busy machine is measured, not cut short.
    return (f'name = "bench-serve"\n\n[engine]\nmodel = "{preset}"\nnum_threads = {int(threads)}\n'
            f"max_num_seqs = {int(max_num_seqs)}\nmax_num_batched_tokens = {int(max_num_batched_tokens)}\n"
            "num_kv_blocks = 2048\nmax_queue_len = 4096\nrequest_timeout_s = 3600.0\n\n"
            "[serve]\nmax_tokens_limit = 4096\n")


def arrivals(num_requests: int, rate: float, seed: int) -> np.ndarray:
    """Seconds after the round's start: a seeded Poisson process at ``rate`` requests per second."""
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, num_requests)
    return np.concatenate([[0.0], np.cumsum(gaps[1:])])


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p99": None}
    return {"p50": round(float(np.percentile(values, 50)), 5), "p99": round(float(np.percentile(values, 99)), 5)}


# ---- in-process ---------------------------------------------------------------------------------------------
def _in_process_round(engine, requests, offsets: np.ndarray, id_base: int) -> list[dict]:
    """One round through the engine in this process, stepped on a thread of its own as serve steps it."""
    import threading

    out: list[list[dict]] = []
    worker = threading.Thread(target=lambda: out.append(_drive(engine, requests, offsets, id_base)),
                              name="bench-engine")
    worker.start()
    worker.join()
    if not out:
        raise RuntimeError("the in-process round failed (see the traceback above)")
    return out[0]


def _drive(engine, requests, offsets: np.ndarray, id_base: int) -> list[dict]:
    """Per request: status, ttft_s, e2e_s, output tokens and text."""
    from harness.serve.text import token_word

    done: dict[int, str] = {}
    engine.observer.on_request_done = lambda record: done.__setitem__(record.request_id, record.status)
    start = engine.now_ns()
    due = [start + int(o * 1e9) for o in offsets]
    seqs, index = {}, 0
    words: dict[int, list[str]] = {}
    first: dict[int, int] = {}
    last: dict[int, int] = {}

    def take_new_words() -> None:
        """After a step: each request's new tokens as text, then one timestamp for all of them: the point the
        HTTP side's clock marks too (the caller holds the text; there, the client has parsed the event). The
        engine's own token timestamp is taken before it even tells its observer: timing by it left the
        caller's share of the work out of one side only."""
        fresh = []
        for i, seq in seqs.items():
            new = seq.num_output_tokens - len(words[i])
            if new > 0:
                words[i].extend(token_word(t) for t in seq.token_ids[len(seq.token_ids) - new:])
                fresh.append(i)
        now = engine.now_ns()
        for i in fresh:
            first.setdefault(i, now)
            last[i] = now

    while index < len(requests) or engine.has_unfinished():
        now = engine.now_ns()
        while index < len(requests) and due[index] <= now:
            r = requests[index]
            if engine.add_request(id_base + index, r.prompt, r.target_output_tokens, arrival_ns=due[index]):
                seqs[index] = engine.sequences[id_base + index]
                words[index] = []
            index += 1
        if engine.has_unfinished():
            engine.step()
            take_new_words()
        elif index < len(requests):   # idle until the next arrival, as serve's engine thread blocks on its queue
            time.sleep(max(0.0, (due[index] - engine.now_ns()) / 1e9))
    out = []
    for i, r in enumerate(requests):
        seq = seqs.get(i)
        ok = seq is not None and done.get(id_base + i) == "ok" and i in first
        out.append({"status": done.get(id_base + i, "rejected"),
                    "ttft_s": (first[i] - due[i]) / 1e9 if ok else None,
                    "e2e_s": (last[i] - due[i]) / 1e9 if ok else None,
                    "output_tokens": seq.num_output_tokens if seq is not None else 0,
                    "text": "".join(words[i]) if ok else None})
    return out


# ---- over HTTP ----------------------------------------------------------------------------------------------
async def _stream(client, url: str, model: str, request, due_ns: int) -> dict:
    delay = (due_ns - time.perf_counter_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)
    body = {"model": model, "prompt": request.prompt, "max_tokens": request.target_output_tokens,
            "ignore_eos": True, "temperature": 0.0, "stream": True}
    first = last = None
    parts: list[str] = []
    finish = None
    async with client.stream("POST", f"{url}/v1/completions", json=body) as response:
        if response.status_code != 200:
            return {"status": f"http {response.status_code}", "ttft_s": None, "e2e_s": None, "output_tokens": 0,
                    "text": None}
        async for line in response.aiter_lines():
            if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                continue
            event = json.loads(line[5:])
            if "error" in event:   # the server ended the stream with an error object: a failed request
                finish = f"error {event['error'].get('code') or event['error'].get('message')}"
            for choice in event.get("choices") or []:
                if choice.get("text"):
                    last = time.perf_counter_ns()
                    first = first if first is not None else last
                    parts.append(choice["text"])
                finish = choice.get("finish_reason") or finish
    ok = finish == "length" and first is not None
    return {"status": "ok" if ok else f"finish {finish}", "ttft_s": (first - due_ns) / 1e9 if ok else None,
            "e2e_s": (last - due_ns) / 1e9 if ok else None, "output_tokens": len(parts),
            "text": "".join(parts) if ok else None}


def _http_round(url: str, model: str, requests, offsets: np.ndarray) -> list[dict]:
    import httpx

    async def go() -> list[dict]:
        limits = httpx.Limits(max_connections=len(requests) + 4, max_keepalive_connections=len(requests) + 4)
        async with httpx.AsyncClient(timeout=httpx.Timeout(900.0, connect=30.0), limits=limits) as client:
            start = time.perf_counter_ns() + 50_000_000   # every task created before the first is due
            return await asyncio.gather(*(_stream(client, url, model, r, start + int(o * 1e9))
                                          for r, o in zip(requests, offsets)))

    return asyncio.run(go())


class _Server:
    """``causalsre serve CONFIG --port 0 --json`` in a process of its own; stopped with SIGTERM."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.proc: subprocess.Popen | None = None
        self.url = self.model = ""

    def __enter__(self) -> "_Server":
        self.proc = subprocess.Popen([sys.executable, "-m", "causalsre", "serve", str(self.config), "--port", "0",
                                      "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], STARTUP_S)
        line = self.proc.stdout.readline() if ready else ""
        if not line.strip():
            self.__exit__()
            raise UserError(f"causalsre serve did not start within {STARTUP_S:.0f} s",
                            "run `causalsre serve` by hand to see why")
        info = json.loads(line)
        self.url, self.model = info["url"], info["model"]
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- the benchmark ------------------------------------------------------------------------------------------
def _side(name: str, rounds: list[list[dict]]) -> dict:
    pooled = [r for rnd in rounds for r in rnd]
    ok = [r for r in pooled if r["status"] == "ok"]
    ttft, e2e = _percentiles([r["ttft_s"] for r in ok]), _percentiles([r["e2e_s"] for r in ok])
    return {"name": name, "requests": len(pooled), "ok": len(ok),
            "p50_ttft_s": ttft["p50"], "p99_ttft_s": ttft["p99"], "p50_e2e_s": e2e["p50"], "p99_e2e_s": e2e["p99"],
            "rounds_p50_e2e_s": [_percentiles([r["e2e_s"] for r in rnd if r["status"] == "ok"])["p50"]
                                 for rnd in rounds]}


def _ratio(a, b):
    return round(a / b, 4) if a is not None and b else None


def run(preset: str = "small", num_requests: int = 48, rate: float = 2.0, seed: int = 0, threads: int = 2,
        prompt_range: tuple[int, int] = (16, 128), output_range: tuple[int, int] = (16, 64), rounds: int = 2,
        max_num_seqs: int = 16, max_num_batched_tokens: int = 256, progress=None) -> dict:
    """Both sides on the same requests and arrivals, ``rounds`` interleaved rounds; the JSON-ready report."""
    import torch

    from harness.engine import Engine, EngineConfig
    from harness.engine.benchmark.workload import mixed_workload
    from harness.engine.observer import NullObserver
    from harness.serve import load_serve_settings

    say = progress or (lambda message: None)
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as folder:
        config = Path(folder) / "bench-serve.toml"
        write_text(config, _config_text(preset, threads, max_num_seqs, max_num_batched_tokens))
        settings = load_serve_settings(config)
        say(f"building the in-process engine ({preset})")
        engine = Engine(EngineConfig(**settings.engine.model_dump()), observer=NullObserver())
        vocab = engine.model_config.vocab_size
        requests = mixed_workload(num_requests, vocab, seed, prompt_range, output_range)
        offsets = arrivals(num_requests, rate, seed)
        warmup = mixed_workload(4, vocab, seed + 7, (8, 32), (4, 8))
        _in_process_round(engine, warmup, np.zeros(4), id_base=10_000_000)
        ours: list[list[dict]] = []
        theirs: list[list[dict]] = []
        say("starting causalsre serve")
        with _Server(config) as server:
            _http_round(server.url, server.model, warmup, np.zeros(4))
            for rnd in range(rounds):
                # ABBA order: a machine whose load drifts during the run favours neither side
                for side in (("in-process", "http") if rnd % 2 == 0 else ("http", "in-process")):
                    say(f"round {rnd + 1}/{rounds}: {side}")
                    if side == "http":
                        theirs.append(_http_round(server.url, server.model, requests, offsets))
                    else:
                        ours.append(_in_process_round(engine, requests, offsets, id_base=(rnd + 1) * 1_000_000))
        threads_used = torch.get_num_threads()
    ctx = {"preset": preset, "num_requests": num_requests, "seed": seed, "rate": rate, "threads": threads,
           "prompt_range": prompt_range, "output_range": output_range, "rounds": rounds, "requests": requests,
           "engine": settings.engine.model_dump(), "threads_used": threads_used}
    return _report(ctx, ours, theirs, load_before)


def _report(ctx: dict, ours: list[list[dict]], theirs: list[list[dict]], load_before: list) -> dict:
    a = _side("engine in-process, stepped on a thread of its own as serve steps it", ours)
    b = _side("causalsre serve over HTTP (httpx streaming /v1/completions)", theirs)
    pairs = [(x, y) for ro, rt in zip(ours, theirs) for x, y in zip(ro, rt) if x["status"] == y["status"] == "ok"]
    same = all(len(ro) == len(rt) for ro, rt in zip(ours, theirs)) and all(
        x["output_tokens"] == y["output_tokens"] == r.target_output_tokens
        for ro, rt in zip(ours, theirs) for x, y, r in zip(ro, rt, ctx["requests"]))
    ratio = {k: _ratio(b[f"{k}_s"], a[f"{k}_s"]) for k in ("p50_ttft", "p99_ttft", "p50_e2e", "p99_e2e")}
    added = [y["e2e_s"] - x["e2e_s"] for x, y in pairs]
    added_fraction = [(y["e2e_s"] - x["e2e_s"]) / x["e2e_s"] for x, y in pairs if x["e2e_s"] > 0]
    added_ttft = [y["ttft_s"] - x["ttft_s"] for x, y in pairs]
    return {
        "benchmark": "serve-overhead",
        "model": {"preset": ctx["preset"]},
        "workload": {"num_requests": ctx["num_requests"], "seed": ctx["seed"], "arrivals": "poisson",
                     "rate_rps": ctx["rate"], "prompt_range": list(ctx["prompt_range"]),
                     "output_range": list(ctx["output_range"]), "rounds": ctx["rounds"],
                     "order": "interleaved rounds, in-process first in odd rounds and HTTP first in even ones "
                              "(ABBA); serve stays up, idle, while the engine in this process runs"},
        "engine": ctx["engine"],
        "in_process": a, "http": b,
        "ratio_http_over_in_process": ratio,
        # each round's ratio: on a machine whose load swings, the spread of these says how far to trust the above
        "rounds_ratio_p50_e2e": [_ratio(y, x) for x, y in zip(a["rounds_p50_e2e_s"], b["rounds_p50_e2e_s"])],
        "paired": {"requests": len(pairs),
                   "median_added_e2e_s": round(float(np.median(added)), 5) if added else None,
                   "median_added_e2e_fraction": round(float(np.median(added_fraction)), 4) if added_fraction else None,
                   "median_added_ttft_s": round(float(np.median(added_ttft)), 5) if added_ttft else None},
        "same_requests": same,
        "identical_outputs": sum(x["text"] == y["text"] for x, y in pairs),
        "targets": {"added_le_5pct": all(r is not None and r <= 1 + TARGET_ADDED
                                         for r in (ratio["p50_e2e"], ratio["p99_e2e"]))},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "threads": ctx["threads"],
                    "torch_threads": ctx["threads_used"], "load_average_before": load_before,
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }

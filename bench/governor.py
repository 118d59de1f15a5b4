"""Governor overhead per engine step, printed as JSON: ``python bench/governor.py [--steps 200] [--queue 64]``.

Two figures. ``engine``: a real tiny-model engine (CPU) under policy ``budget`` with more requests than
seats; every governor entry point (per-step tick, queue sort with its key, seat checks, arrival and finish
hooks) is wrapped with a timer, and their total is divided by the steps' total time. The sort is counted
whole although fcfs sorts too, so the ratio overstates the governor's extra cost. ``scheduler_only``: the
same hooks with a fake forward (pure Python, no torch) and ``--queue`` waiting requests, microseconds per step.
``engine_fcfs_hooks``: the same hooks under fcfs (its sort, and the counters every policy feeds);
``extra_ratio`` = budget's ratio - fcfs's, what the governor adds. ``--rounds N`` keeps the best of N.
The issue's target is a ratio <= 0.01.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.engine.config import EngineConfig  # noqa: E402
from harness.engine.governor.config import GovernorConfig, TierSpec  # noqa: E402
from harness.engine.scheduler import Scheduler  # noqa: E402
from harness.engine.sequence import Sequence  # noqa: E402

HOOKS = ("on_step", "sort", "may_start", "started", "seat_victim", "on_arrival", "on_done", "prefill_order",
         "on_leave", "prefill_cap", "observe_step", "queue_drops")
TIERS = GovernorConfig(tiers=(
    TierSpec("premium", ("premium",), criticality=0, objective=0.995, ttft_s=1.5, tpot_s=0.25, protected=True),
    TierSpec("standard", ("standard",), criticality=1, objective=0.99, ttft_s=2.0, tpot_s=0.3),
    TierSpec("free", ("free",), criticality=2, objective=0.95, ttft_s=3.0, tpot_s=0.4)),
    short_window_s=1.0, long_window_s=10.0)
TENANTS = ["premium"] + ["standard"] * 3 + ["free"] * 6


def timed(governor, names=HOOKS, spent=None) -> list[int]:
    """Wrap the governor's entry points; the returned one-element list accumulates their nanoseconds."""
    spent = [0] if spent is None else spent
    for name in names:
        inner = getattr(governor, name, None)
        if inner is None:   # a hook an older governor lacks (the bench also times the previous code)
            continue

        def wrapper(*args, _inner=inner, **kwargs):
            t0 = time.perf_counter_ns()
            try:
                return _inner(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter_ns() - t0
        setattr(governor, name, wrapper)
    return spent


def engine_ratio(steps: int, seed: int, policy: str = "budget") -> dict:
    """``policy = "fcfs"``: the same hooks timed on fcfs's policy object (the sort every policy does) plus
    the governor's counting hooks, which run under every policy: budget's figure minus this one is what the
    governor adds to a step."""
    from harness.engine.engine import Engine

    rng = random.Random(seed)
    config = EngineConfig(model="tiny", policy=policy, max_num_seqs=16, max_num_batched_tokens=256,
                          max_queue_len=1000, request_timeout_s=None)
    engine = Engine(config, governor=TIERS)
    spent = timed(engine.governor)
    if policy == "budget":
        engine.scheduler._policies["budget"] = engine.governor   # the scheduler calls the wrapped object
    else:
        timed(engine.scheduler.policy, ("sort", "may_start", "started", "seat_victim", "prefill_order",
                                         "on_leave"), spent)
    step_ns = num_steps = 0
    next_id = 0
    while num_steps < steps:
        while len(engine.scheduler.waiting) < 32:   # keep the queue longer than the seats
            engine.add_request(next_id, [rng.randrange(1, 4000) for _ in range(rng.randint(16, 96))],
                               rng.randint(4, 32), tenant=rng.choice(TENANTS))
            next_id += 1
        t0 = time.perf_counter_ns()
        if engine.step() is not None:
            step_ns += time.perf_counter_ns() - t0
            num_steps += 1
    return {"steps": num_steps, "mean_step_ms": step_ns / num_steps / 1e6,
            "governor_us_per_step": spent[0] / num_steps / 1e3, "ratio": spent[0] / step_ns}


def scheduler_only(steps: int, queue: int, seed: int) -> dict:
    rng = random.Random(seed)
    config = EngineConfig(policy="budget", max_num_seqs=16, max_num_batched_tokens=256, max_queue_len=100_000,
                          request_timeout_s=None, num_kv_blocks=4096)
    scheduler = Scheduler(config, TIERS)
    gov = scheduler.governor
    spent = timed(gov)
    next_id, now = 0, 0
    t_all = time.perf_counter_ns()
    for _ in range(steps):
        while len(scheduler.waiting) < queue:
            seq = Sequence(next_id, [1] * rng.randint(16, 96), rng.randint(4, 32), tenant=rng.choice(TENANTS),
                           arrival_ns=now)
            gov.on_arrival(seq, now, is_active=True)
            scheduler.add(seq)
            next_id += 1
        gov.on_step(now, config.max_num_seqs, config.max_num_batched_tokens, is_active=True,
                    last_decode_step_ns=20_000_000)
        out = scheduler.schedule(now)
        for c in out.chunks:
            c.seq.num_computed_tokens += c.num_tokens
            if c.samples:
                c.seq.token_ids.append(7)
                c.seq.first_token_ns = c.seq.first_token_ns or now
                c.seq.last_token_ns = now
                if c.seq.is_done:
                    scheduler.remove(c.seq)
                    gov.on_done(c.seq, "ok", now)
        now += 20_000_000
    total = time.perf_counter_ns() - t_all
    return {"steps": steps, "queue": queue, "governor_us_per_step": spent[0] / steps / 1e3,
            "scheduler_us_per_step": total / steps / 1e3}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--queue", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-engine", action="store_true", help="skip the real engine (no torch)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat, alternating policies; keep the best")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.queue < 1 or args.rounds < 1:
        parser.error("--steps, --queue and --rounds must be >= 1")
    rounds = [scheduler_only(args.steps, args.queue, args.seed) for _ in range(args.rounds)]
    result = {"scheduler_only": min(rounds, key=lambda r: r["governor_us_per_step"]), "target_ratio": 0.01,
              "rounds": args.rounds}
    if not args.no_engine:
        # Alternate budget and fcfs so a noisy neighbour's spell hits both; the best round of each (the least
        # disturbed) is reported, and the governor's extra cost is budget's hooks minus fcfs's.
        best: dict[str, dict] = {}
        for _ in range(args.rounds):
            for policy in ("budget", "fcfs"):
                r = engine_ratio(args.steps, args.seed, policy)
                if policy not in best or r["ratio"] < best[policy]["ratio"]:
                    best[policy] = r
        result["engine"] = best["budget"]
        result["engine_fcfs_hooks"] = best["fcfs"]
        result["extra_ratio"] = best["budget"]["ratio"] - best["fcfs"]["ratio"]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

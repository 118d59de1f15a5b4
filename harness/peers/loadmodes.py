"""Record real `vllm bench serve` results in the load modes the main recording (realfiles.py) lacks: a closed
loop (``--request-rate inf --max-concurrency N``) and a linear ramp-up (``--ramp-up-strategy linear``), each
with its 1 s ``/metrics`` scrape loop, against the peer vLLM (tiny shape, one core, four sequences).

``python -m harness.peers.loadmodes OUT`` (main virtualenv; wrap it in ``flock /tmp/causalsre-tests-real-vllm.lock``:
one vLLM at a time). Writes ``OUT/<case>/bench.json``, ``OUT/<case>/scrapes/metrics-<epoch>.prom`` and
``OUT/cases.json`` in realfiles.py's layout, so ``python -m harness.peers.loadmodes OUT --fixtures DEST``
copies them, trimmed, into test fixtures (tests/fixtures/vllm_real/loadmodes). Tens of requests a case: the test
fixtures stay small and a recording takes minutes (two vLLM starts).

Cases and their truth: ``closed_more_clients`` against ``closed_baseline`` changes only the client's
concurrency (4 -> 16 on a four-seat server): the cause is ``max_concurrency``; ``closed_fewer_seqs`` restarts
the server with ``--max-num-seqs 1`` under the same four clients: the cause is ``max_num_seqs`` (recorded
with ``--metadata``); ``ramp_up`` against ``open_baseline`` ramps the offered rate 2 -> 20 requests/s.
No rate here comes from a capacity measurement: the closed loops need none, and the ramp's ends are whole
numbers (vLLM's ``--ramp-up-*-rps`` are integers).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from causalsre.safeio import write_text
from harness.peers.realfiles import BASE_ENGINE, METADATA_KEYS, Case, run_bench, write_fixtures

INF = "inf"
_CHAT = {"input_len": 256, "output_len": 32}
CASES = (
    (Case("closed_baseline", None, None, why="closed loop: 4 clients, 4 server seats (nothing waits in vLLM)"),
     {**_CHAT, "rate": INF, "max_concurrency": 4, "num_prompts": 40}),
    (Case("closed_more_clients", "max_concurrency", "workload",
          why="closed loop: 16 clients on the same 4-seat server (12 wait in vLLM's queue)"),
     {**_CHAT, "rate": INF, "max_concurrency": 16, "num_prompts": 48}),
    (Case("closed_fewer_seqs", "max_num_seqs", "batching", engine={"max_num_seqs": 1},
          why="closed loop: the same 4 clients, the server restarted with --max-num-seqs 1 (from 4)"),
     {**_CHAT, "rate": INF, "max_concurrency": 4, "num_prompts": 40}),
    (Case("open_baseline", None, None, why="open loop at a constant 1.5 requests/s: the ramp's baseline"),
     {**_CHAT, "rate": 1.5, "num_prompts": 40}),
    # Held out (recorded after causalsre/causal/load_mode.py was frozen, with a fresh seed): other magnitudes and
    # another server knob than the development pairs above, and a no-fault control.
    (Case("heldout_closed_baseline", None, None, why="held out: closed loop, 4 clients, 4 server seats"),
     {**_CHAT, "rate": INF, "max_concurrency": 4, "num_prompts": 40}),
    (Case("heldout_control", None, None, why="held out: the same closed loop re-run (the next seed)"),
     {**_CHAT, "rate": INF, "max_concurrency": 4, "num_prompts": 40, "seed_offset": 1}),
    (Case("heldout_more_clients", "max_concurrency", "workload",
          why="held out: 10 clients on the same 4-seat server"),
     {**_CHAT, "rate": INF, "max_concurrency": 10, "num_prompts": 40}),
    (Case("heldout_smaller_budget", "max_num_batched_tokens", "batching", engine={"max_num_batched_tokens": 8},
          why="held out: the same 4 clients, the server restarted with --max-num-batched-tokens 8 (from 1024)"),
     {**_CHAT, "rate": INF, "max_concurrency": 4, "num_prompts": 40}),
    (Case("ramp_up", "arrival_rate", "workload",
          why="a linear ramp of the offered rate, 2 -> 20 requests/s (the closed loop served ~7/s)"),
     {**_CHAT, "rate": INF, "ramp_up": ("linear", 2, 20), "num_prompts": 80}),
)
BASELINE_OF = {"closed_more_clients": "closed_baseline", "closed_fewer_seqs": "closed_baseline",
               "ramp_up": "open_baseline", **{f"heldout_{c}": "heldout_closed_baseline"
                                              for c in ("control", "more_clients", "smaller_budget")}}


def record(out_dir: Path, names: list[str] | None = None, seed: int = 0) -> dict:
    """Every chosen case, grouped by server configuration (the baseline server's first): one vLLM start each."""
    from harness.config import EngineSection
    from harness.peers.vllm_server import VllmServer

    chosen = [(c, load) for c, load in CASES if names is None or c.name in names]
    out_dir.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list] = {}
    for case, load in chosen:
        groups.setdefault(json.dumps(case.engine, sort_keys=True), []).append((case, load))
    summary = {}
    for key, cases in sorted(groups.items(), key=lambda kv: kv[0] != "{}"):
        engine = EngineSection(**{**BASE_ENGINE, **json.loads(key)})
        print(f"starting vLLM {json.loads(key) or 'baseline'} for {[c.name for c, _ in cases]}", file=sys.stderr)
        server = VllmServer(engine, served_model_name="causalsre", log_path=out_dir / "vllm.log")
        with server:
            for case, load in cases:
                print(f"  {case.name}: vllm bench serve {load}", file=sys.stderr)
                run_bench(server.url, case, load, out_dir, seed)
                summary[case.name] = {"cause": case.cause, "family": case.family, "why": case.why,
                                      "baseline": BASELINE_OF.get(case.name), "server_flags": server.flags,
                                      "load": {k: list(v) if isinstance(v, tuple) else v for k, v in load.items()},
                                      "metadata": {k: {**BASE_ENGINE, **case.engine}[k] for k in METADATA_KEYS}}
                write_text(out_dir / "cases.json", json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--only", nargs="*", choices=[c.name for c, _ in CASES])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixtures", type=Path, help="do not run: copy OUT's cases, trimmed, into this folder "
                        "(each case's kept scrapes in one gzipped scrapes.prom.gz, as realfiles.py --scrape-log)")
    args = parser.parse_args(argv)
    if args.fixtures:
        names = args.only or [c.name for c, _ in CASES]
        print(len(write_fixtures(args.out_dir, args.fixtures, names, scrape_log=True)), "files")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the server and the benchmark are stopped
    print(json.dumps(record(args.out_dir, args.only, args.seed), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

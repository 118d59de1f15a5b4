"""vLLM's serving benchmark result (``vllm bench serve --save-result --save-detailed``) -> one run per result.

Field meanings, from vllm/benchmarks/serve.py: ``start_times`` are ``time.perf_counter()`` values taken when
each request was *sent* (an arbitrary origin, so only differences count); ``queue_times`` are the client-side
waits before sending (``client_queue_time = start_time - request_arrival_time``, the wait for a
``--max-concurrency`` slot); ``ttfts`` and ``latencies`` are measured from sending; ``itls`` are the gaps
between streamed chunks; ``date`` (``%Y%m%d-%H%M%S``, the client's local clock) is written after the run
ends, ``duration`` seconds after it began. An empty ``errors`` entry means success.

So a request arrived at ``start - queue``: latencies here are measured from that arrival, the way every
view of the schema measures them (a client that queues does not hide the wait). Arrival order and gaps are
exact; the wall clock is ``date - duration`` for the first arrival, on the client's clock (UTC unless
``--utc-offset`` says otherwise). Older files without ``start_times`` fall back to ``request_submit_times``
(epoch seconds) or, failing both, to evenly spaced arrivals over ``duration``, recorded as
``arrivals: "approximate"`` in the run's config.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from causalsre.errors import UserError
from causalsre.telemetry.importers.bench_settings import metadata_settings, with_concurrency
from causalsre.telemetry.importers.checks import MAX_LATENCY_S, epoch_seconds, number
from causalsre.telemetry.importers.coverage import (APPROXIMATE_NOTE, bench_notes, closed_loop_note,
                                                    summary_only_description)
from causalsre.telemetry.importers.files import existing_file, fingerprint, read_json
from causalsre.telemetry.importers.frames import requests_frame
from causalsre.telemetry.importers.sglang_bench import looks_like_sglang
from causalsre.telemetry.importers.writer import Batch

KIND = "import-vllm-bench"
REQUIRED = ("ttfts", "itls", "input_lens", "output_lens", "errors")
WHAT = "the file saved by `vllm bench serve --save-result --save-detailed`"
CONFIG_KEYS = ("backend", "label", "model_id", "tokenizer_id", "request_rate", "burstiness", "max_concurrency",
               "num_prompts", "duration", "date", "completed", "failed", "ramp_up_strategy", "ramp_up_start_rps",
               "ramp_up_end_rps")


_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def utc_offset(text: str | None) -> timezone:
    """``+02:00`` / ``-0500`` / ``Z`` -> a timezone; the clock ``date`` was written on (default UTC)."""
    if text is None or text.strip().upper() in ("Z", "UTC", "+00:00"):
        return timezone.utc
    match = _OFFSET.match(text.strip())
    if not match or int(match.group(3)) >= 60 or int(match.group(2)) * 60 + int(match.group(3)) > 14 * 60:
        raise UserError(f"--utc-offset {text!r} is not an offset like +02:00 or -05:00",
                        "give the benchmark client's UTC offset, between -14:00 and +14:00")
    minutes = int(match.group(2)) * 60 + int(match.group(3))
    return timezone(timedelta(minutes=minutes if match.group(1) == "+" else -minutes))


def parse(paths: list[str | Path], *, name: str | None = None, offset: str | None = None,
          keep_failed: bool = False) -> list[Batch]:
    """Read and check every file; one :class:`Batch` (a new run) per benchmark result.

    ``offset`` is the UTC offset of the client's clock, on which vLLM wrote ``date`` (its local time).
    A result whose every request failed is refused unless ``keep_failed`` (an outage, imported as errors).
    """
    zone = utc_offset(offset)
    batches = []
    for raw in paths:
        path = existing_file(raw)
        doc = read_json(path, WHAT)
        docs = doc if isinstance(doc, list) and doc and all(isinstance(d, dict) for d in doc) else [doc]
        digest = fingerprint([path])
        for index, one in enumerate(docs):
            where = path.name if len(docs) == 1 else f"{path.name} result {index + 1}"
            run_id = f"{KIND}-{digest}" if len(docs) == 1 else f"{KIND}-{digest}-{index + 1}"
            batches.append(_batch(one, where, run_id, name or path.name, zone, keep_failed))
    return batches


def _batch(doc: object, where: str, run_id: str, name: str, zone: timezone, keep_failed: bool) -> Batch:
    if not isinstance(doc, dict):
        raise UserError(f"{where} is not a JSON object", f"give {WHAT}")
    if looks_like_sglang(doc):
        raise UserError(f"{where} is an sglang.bench_serving result, not vLLM's (it has no start_times or date)",
                        "import it with `causalsre db import sglang-bench`")
    missing = [k for k in REQUIRED if k not in doc]
    if missing and "latencies" in doc and "ttfts" not in doc and "total_input_sequences" in doc:
        raise UserError(f"{where} is a pooling (embedding) benchmark: it has no time to first token or output",
                        "import generation benchmarks (vllm bench serve on a completions or chat endpoint)")
    if "ttfts" not in doc and any(k in doc for k in ("mean_ttft_ms", "median_ttft_ms", "completed")):
        # Later serve.py keeps `latencies` and `queue_times` without --save-detailed: end-to-end times with
        # no first token, no send time and no error per request, still no SLO verdict per request.
        kept = "; its latencies list has no first-token times, send times or errors" \
            if isinstance(doc.get("latencies"), list) else ""
        raise UserError(f"{where} is a summary-only result (saved without --save-detailed: "
                        f"{summary_only_description(doc)}{kept}): aggregates cannot say which requests missed an "
                        "SLO, so there are no bad events to count or attribute",
                        "rerun the benchmark with --save-result --save-detailed")
    if missing:
        raise UserError(f"{where} lacks key(s) {', '.join(missing)}",
                        "save the benchmark with --save-result --save-detailed")
    if not isinstance(doc["ttfts"], list) or not doc["ttfts"]:
        raise UserError(f"{where} holds no requests", "give a benchmark result with at least one request")
    n = len(doc["ttfts"])
    for key in REQUIRED + tuple(k for k in ("start_times", "queue_times", "latencies", "request_submit_times")
                                if doc.get(k) is not None):
        if not isinstance(doc[key], list) or len(doc[key]) != n:
            raise UserError(f"{where}: {key} must be a list of {n} entries like ttfts", "give an unmodified file")
    errors = ["" if e is None else str(e) for e in doc["errors"]]
    failed = np.array([bool(e.strip()) for e in errors])
    if failed.all() and not keep_failed:
        last = errors[0].strip().splitlines()[-1]  # vLLM stores a traceback: its last line names the error
        raise UserError(f"{where}: all {n} requests failed (the first: {last[:100]!r}), so the "
                        "result measured no serving", "check that the server was up and the benchmark's "
                        "flags (vLLM warns 'All requests failed'); pass --keep-failed to import an outage as errors")
    ttft = _floats(doc["ttfts"], where, "ttfts")
    gaps = []
    for i, entry in enumerate(doc["itls"]):
        if entry is None:
            entry = []
        if not isinstance(entry, list):
            raise UserError(f"{where}: itls entry {i} is not a list", "give an unmodified file")
        gaps.append(float(sum(_floats(entry, where, f"itls[{i}]"))) if entry else 0.0)
    decode = np.array(gaps)
    queue = _floats(doc["queue_times"], where, "queue_times") if doc.get("queue_times") is not None else np.zeros(n)
    latency = _floats(doc["latencies"], where, "latencies") if doc.get("latencies") is not None else ttft + decode
    latency = np.where(latency > 0, latency, ttft + decode)
    concurrency = closed_loop(doc, queue, where)
    # A closed loop queues every request at once: that instant is the load generator's, not a user's
    # arrival, so a request arrives when it is sent (vLLM's own TTFT); the client's wait stays an attribute.
    waited = np.zeros(n) if concurrency else queue
    base, arrival, arrivals = _arrivals(doc, n, waited, where, zone)
    send = arrival + waited
    first_token = np.where(failed, np.nan, send + ttft)
    # A failed request ends when the client gave up on it (its latency), a good one when its last token came.
    finish = np.where(failed, send + latency, send + np.maximum(latency, ttft + decode))
    attributes = None
    if doc.get("queue_times") is not None:
        attributes = [json.dumps({"client_queue_s": float(q)}) for q in queue]
    reasons = doc.get("finish_reasons") if isinstance(doc.get("finish_reasons"), list) else None
    frame, t0 = requests_frame(
        {"arrival": arrival, "enqueue": send, "first_token": first_token,
         "last_token": np.where(failed, np.nan, send + ttft + decode), "finish": finish}, base_s=base,
        prompt_tokens=doc["input_lens"], output_tokens=doc["output_lens"],
        status=np.where(failed, "error", "ok"),
        finish_reason=[e[:200] if e.strip() else (str(reasons[i]) if reasons and len(reasons) == n
                                                  and reasons[i] else "length") for i, e in enumerate(errors)],
        attributes=attributes, where=where)
    config = {key: doc[key] for key in CONFIG_KEYS if key in doc and isinstance(doc[key], (str, int, float))}
    config.update(source=where, arrivals=arrivals)
    rate, burst = doc.get("request_rate"), doc.get("burstiness")
    if doc.get("ramp_up_strategy"):
        rate = ramp_up_rate(doc, n)
    elif _unlimited(rate):
        burst = None  # vLLM: burstiness "only takes effect when request_rate is not inf"
    # --metadata KEY=VALUE naming a server knob (bench_settings.py): in force for the whole run, from t0.
    settings = metadata_settings(doc, where, t0)
    if settings is not None:
        config["settings_from_metadata"] = sorted(settings["setting"])
    notes = bench_notes(settings)
    if concurrency:
        config["closed_loop"] = {"max_concurrency": concurrency}
        notes.append(closed_loop_note(concurrency))
        settings = with_concurrency(settings, concurrency, t0)
    if arrivals == "approximate":
        notes.append(APPROXIMATE_NOTE)
    if notes:
        config["notes"] = notes
    return Batch(run_id=run_id, kind=KIND, name=name, t0_s=t0, config=config, requests=frame, settings=settings,
                 arrival_rate=_positive_or_none(rate), burstiness=_positive_or_none(burst), notes=notes)


def _unlimited(rate: object) -> bool:
    # main_async() writes "inf" for an unlimited --request-rate; json.dump of a float inf reads back as inf.
    return rate == "inf" or (isinstance(rate, float) and np.isinf(rate))


def closed_loop(doc: dict, queue: np.ndarray, where: str) -> int | None:
    """``--max-concurrency`` of a closed-loop result (``--request-rate inf``, no ramp-up), else None.

    get_request() then yields every request at once and each waits on the client's semaphore for a slot: the
    ``queue_times`` are the load generator's own backlog. A ramp-up also writes ``request_rate: "inf"``
    (main_async) but paces its arrivals, and so does a ``--dataset-name timed_trace`` run (its trace's
    timestamps; the result does not say so): where the arrivals (``start_times - queue_times``) spread over
    more than a twentieth of the run, they were paced, whatever the rate says.
    """
    limit = doc.get("max_concurrency")
    if doc.get("ramp_up_strategy") or not _unlimited(doc.get("request_rate")):
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        return None
    if doc.get("start_times") is not None and doc.get("queue_times") is not None:
        spread = float(np.ptp(_floats_any(doc["start_times"], where, "start_times") - queue))
        duration = doc.get("duration")
        if isinstance(duration, (int, float)) and not isinstance(duration, bool) and spread > 0.05 * duration:
            return None
    return limit


def ramp_up_rate(doc: dict, n: int) -> float | None:
    """The offered rate of a ``--ramp-up-strategy`` run, averaged over its time: n / the expected duration.

    vLLM's _get_current_request_rate() gives request i the rate start + (end - start) * i / (n - 1)
    (linear) or start * (end / start) ** (i / (n - 1)) (exponential); the gap before it is drawn at that
    rate, so the run offered n requests in sum(1 / rate_i) seconds. None when the keys are not numbers.
    """
    start, end = doc.get("ramp_up_start_rps"), doc.get("ramp_up_end_rps")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (start, end)):
        return None
    if not (np.isfinite(start) and np.isfinite(end)) or end <= 0 or start < 0:
        return None
    progress = np.arange(n) / max(n - 1, 1)
    if doc["ramp_up_strategy"] == "linear":
        rates = start + (end - start) * progress
    elif doc["ramp_up_strategy"] == "exponential" and start > 0:
        rates = start * (end / start) ** progress
    else:
        return None
    rates = rates[rates > 0]
    return float(len(rates) / np.sum(1.0 / rates)) if len(rates) else None


def _floats(values: list, where: str, key: str) -> np.ndarray:
    return np.array([number(0.0 if v is None else v, f"{where}: {key}[{i}]", maximum=MAX_LATENCY_S)
                     for i, v in enumerate(values)], dtype=float)


def _positive_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if np.isfinite(value) and value > 0 else None


def _bench_end(doc: dict, where: str, zone: timezone) -> float | None:
    """Epoch seconds of ``date`` (the client's local clock, at ``zone``, when the run ended)."""
    if doc.get("date") is None:
        return None
    try:
        end = datetime.strptime(str(doc["date"]), "%Y%m%d-%H%M%S").replace(tzinfo=zone)
    except ValueError:
        raise UserError(f"{where}: date {doc['date']!r} is not YYYYMMDD-HHMMSS", "give an unmodified file") from None
    return epoch_seconds(end.timestamp(), f"{where}: date")


def _arrivals(doc: dict, n: int, queue: np.ndarray, where: str, zone: timezone) -> tuple[float, np.ndarray, str]:
    """(epoch seconds of the first arrival, arrivals in seconds after it, how they were found)."""
    duration = number(doc.get("duration") or 0.0, f"{where}: duration", maximum=MAX_LATENCY_S)
    if doc.get("start_times") is not None:
        end = _bench_end(doc, where, zone)
        if end is None:
            raise UserError(f"{where} has start_times but no date", "give an unmodified file (vLLM writes date)")
        start = _floats_any(doc["start_times"], where, "start_times")
        relative = start - queue
        if np.ptp(relative) > MAX_LATENCY_S:
            raise UserError(f"{where}: start_times span more than a week", "give an unmodified file")
        return end - duration, relative - relative.min(), "start_times"
    if doc.get("request_submit_times") is not None:
        submits = np.array([epoch_seconds(v, f"{where}: request_submit_times[{i}]")
                            for i, v in enumerate(doc["request_submit_times"])])
        return float(submits.min()), submits - submits.min(), "request_submit_times"
    end = _bench_end(doc, where, zone)
    if end is None:
        raise UserError(f"{where} has neither start_times nor date", "save the benchmark with --save-detailed")
    return end - duration, np.linspace(0.0, duration, num=n, endpoint=False), "approximate"


def _floats_any(values: list, where: str, key: str) -> np.ndarray:
    # perf_counter values: any finite number (the origin is arbitrary, only differences count).
    return np.array([number(v, f"{where}: {key}[{i}]", minimum=None) for i, v in enumerate(values)], dtype=float)

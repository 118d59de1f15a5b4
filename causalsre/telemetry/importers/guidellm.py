"""guidellm's benchmark report (``benchmarks.json``) -> one run per benchmark (one rate or strategy).

Schema, from guidellm's ``GenerativeBenchmarksReport`` (src/guidellm/benchmark/schemas/report.py and
schemas/request_stats.py, report version 2): ``benchmarks[]`` each holds ``requests`` split by status into
``successful``, ``incomplete`` and ``errored``; a request's ``info.timings`` are Unix timestamps
(``targeted_start``: when the scheduler meant to send it; ``request_start``; ``first_token_iteration``;
``last_token_iteration``; ``request_end``), its tokens are the computed ``prompt_tokens`` /
``output_tokens`` (or ``input_metrics`` / ``output_metrics.total_tokens``). Older reports (guidellm < 0.4)
put ``scheduled_time``, ``start_time``, ``first_token_time``, ``last_token_time``, ``end_time`` on the
request itself; both are read.

The arrival is the targeted start, so a load generator that falls behind does not hide queueing (no
coordinated omission); ``incomplete`` requests (cancelled at the end of a benchmark) are ``aborted``,
``errored`` ones ``error``. guidellm may keep only a sample of each status (``--sample-size``): the run's
config then records ``sampled: true`` and the totals guidellm measured.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from causalsre.errors import UserError
from causalsre.telemetry.importers.checks import MAX_TOKENS, epoch_seconds, number
from causalsre.telemetry.importers.files import existing_file, fingerprint, read_json
from causalsre.telemetry.importers.frames import requests_frame
from causalsre.telemetry.importers.writer import Batch

KIND = "import-guidellm"
WHAT = "the benchmarks.json that `guidellm benchmark --output-path` saves"
STATUS = {"successful": "ok", "incomplete": "aborted", "errored": "error"}
# (new report: info.timings key, old report: key on the request)
TIMES = {"target": ("targeted_start", "scheduled_time"), "start": ("request_start", "start_time"),
         "first": ("first_token_iteration", "first_token_time"), "last": ("last_token_iteration", "last_token_time"),
         "end": ("request_end", "end_time")}


def parse(paths: list[str | Path], *, name: str | None = None) -> list[Batch]:
    batches = []
    for raw in paths:
        path = existing_file(raw)
        doc = read_json(path, WHAT)
        if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
            raise UserError(f"{path.name} is not a guidellm report (no benchmarks list)", f"give {WHAT}")
        if not doc["benchmarks"]:
            raise UserError(f"{path.name} holds no benchmarks", "give a report of a benchmark that ran")
        digest = fingerprint([path])
        for index, bench in enumerate(doc["benchmarks"]):
            where = f"{path.name} benchmark {index + 1}"
            batches.append(_batch(bench, where, f"{KIND}-{digest}-{index + 1}", f"{name or path.name} #{index + 1}"))
    return batches


def _batch(bench: object, where: str, run_id: str, name: str) -> Batch:
    if not isinstance(bench, dict) or not isinstance(bench.get("requests"), dict):
        raise UserError(f"{where} has no requests object", f"give {WHAT}")
    rows = []
    for group, status in STATUS.items():
        entries = bench["requests"].get(group) or []
        if not isinstance(entries, list):
            raise UserError(f"{where}: requests.{group} is not a list", f"give {WHAT}")
        rows.extend(_request(r, f"{where} {group}[{i}]", status) for i, r in enumerate(entries))
    if not rows:
        raise UserError(f"{where} holds no requests", "run the benchmark with at least one request")
    rows.sort(key=lambda r: r["arrival"])
    base = rows[0]["arrival"]
    times = {key: np.array([r[key] - base for r in rows]) for key in ("arrival", "enqueue", "first_token",
                                                                     "last_token", "finish")}
    frame, t0 = requests_frame(times, base_s=base, prompt_tokens=[r["prompt"] for r in rows],
                               output_tokens=[r["output"] for r in rows], status=[r["status"] for r in rows],
                               finish_reason=[r["reason"] for r in rows], where=where)
    config = {"source": where, **_strategy(bench)}
    totals = (bench.get("metrics") or {}).get("request_totals") if isinstance(bench.get("metrics"), dict) else None
    if isinstance(totals, dict) and isinstance(totals.get("total"), (int, float)):
        config["request_totals"] = {k: v for k, v in totals.items() if isinstance(v, (int, float))}
        config["sampled"] = bool(totals["total"] > len(rows))
    rate = config.get("rate")
    return Batch(run_id=run_id, kind=KIND, name=name, t0_s=t0, config=config, requests=frame,
                 arrival_rate=float(rate) if isinstance(rate, (int, float)) and 0 < rate < 1e9 else None)


def _strategy(bench: dict) -> dict:
    strategy = (bench.get("config") or {}).get("strategy") if isinstance(bench.get("config"), dict) else None
    if not isinstance(strategy, dict):
        return {}
    return {k: strategy[k] for k in ("type_", "rate", "streams", "max_concurrency")
            if isinstance(strategy.get(k), (str, int, float)) and not isinstance(strategy.get(k), bool)}


def _request(entry: object, where: str, status: str) -> dict:
    if not isinstance(entry, dict):
        raise UserError(f"{where} is not an object", f"give {WHAT}")
    info = entry.get("info") if isinstance(entry.get("info"), dict) else {}
    timings = info.get("timings") if isinstance(info.get("timings"), dict) else {}
    found = {}
    for key, (new, old) in TIMES.items():
        value = timings.get(new, entry.get(old))
        found[key] = np.nan if value is None else epoch_seconds(value, f"{where}: {new}")
    start = found["start"]
    candidates = [v for v in (found["target"], start) if np.isfinite(v)]
    if not candidates:
        raise UserError(f"{where} has no start time", f"give {WHAT}")
    arrival = min(candidates)  # the targeted start, unless the request went out (a hair) before it
    # An incomplete request has no request_end: it ended (was cancelled) at its last sign of life.
    resolved = timings.get("resolve_end")
    seen = [v for v in (found["first"], found["last"], start) if np.isfinite(v)]
    if resolved is not None:
        seen.append(epoch_seconds(resolved, f"{where}: resolve_end"))
    end = found["end"] if np.isfinite(found["end"]) else max(seen)
    error = info.get("error") or entry.get("error")
    return {
        "arrival": arrival, "enqueue": start, "first_token": found["first"], "last_token": found["last"],
        "finish": end, "status": status,
        "reason": str(error)[:200] if error else ("length" if status == "ok" else status),
        "prompt": _tokens(entry, "prompt_tokens", "input_metrics", where),
        "output": _tokens(entry, "output_tokens", "output_metrics", where),
    }


def _tokens(entry: dict, key: str, metrics_key: str, where: str) -> float | None:
    value = entry.get(key)
    if value is None and isinstance(entry.get(metrics_key), dict):
        value = entry[metrics_key].get("total_tokens", entry[metrics_key].get("text_tokens"))
    return number(value, f"{where}: {key}", maximum=MAX_TOKENS, allow_none=True)

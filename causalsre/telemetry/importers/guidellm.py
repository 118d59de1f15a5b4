"""guidellm's benchmark report (``benchmarks.json`` or ``.yaml``) -> one run per benchmark (one rate or strategy).

Schema, from guidellm's ``GenerativeBenchmarksReport`` (src/guidellm/benchmark/schemas/report.py and
schemas/request_stats.py, report version 2): ``benchmarks[]`` each holds ``requests`` split by status into
``successful``, ``incomplete`` and ``errored``; a request's ``info.timings`` are Unix timestamps
(``targeted_start``: when the scheduler meant to send it; ``request_start``; ``first_token_iteration``;
``last_token_iteration``; ``request_end``), its tokens are the computed ``prompt_tokens`` /
``output_tokens`` (or ``input_metrics`` / ``output_metrics.total_tokens``). Older reports (guidellm < 0.4)
put ``start_time``, ``first_token_time``, ``last_token_time``, ``end_time`` on the request itself; both
are read.

Versions, read in vllm-project/guidellm's tags: v0.4 to v0.7 (and the real 0.8.1 fixture) as above;
v0.2-v0.3 (``benchmark/benchmark.py``: ``start_time``, ``first_token_time``, ``last_token_time``,
``end_time`` on the request, the targeted start in ``scheduler_info.targeted_start_time``, ``-1`` when
unset; ``request_totals`` on the benchmark; ``args.strategy``); v0.1 (``core/result.py``, saved as YAML by
default: ``benchmarks[].benchmarks[]`` each with ``mode``, ``rate``, ``results`` holding ``start_time``,
``first_token_time``, ``end_time``, ``prompt_token_count``, ``output_token_count``, and ``errors`` that
carry no times: those are counted in the run's config as ``errors_without_times``, not imported).

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
from causalsre.telemetry.importers.files import existing_file, fingerprint, read_json_or_yaml
from causalsre.telemetry.importers.frames import requests_frame
from causalsre.telemetry.importers.writer import Batch

KIND = "import-guidellm"
WHAT = "the benchmarks.json (or .yaml) that `guidellm benchmark --output-path` saves"
STATUS = {"successful": "ok", "incomplete": "aborted", "errored": "error"}
# (new report: info.timings key, old report: key on the request)
TIMES = {"target": ("targeted_start", "targeted_start_time"), "start": ("request_start", "start_time"),
         "first": ("first_token_iteration", "first_token_time"), "last": ("last_token_iteration", "last_token_time"),
         "end": ("request_end", "end_time")}


def parse(paths: list[str | Path], *, name: str | None = None) -> list[Batch]:
    batches = []
    for raw in paths:
        path = existing_file(raw)
        doc = read_json_or_yaml(path, WHAT)
        if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
            raise UserError(f"{path.name} is not a guidellm report (no benchmarks list)", f"give {WHAT}")
        benches = _flatten(doc["benchmarks"])
        if not benches:
            raise UserError(f"{path.name} holds no benchmarks", "give a report of a benchmark that ran")
        digest = fingerprint([path])
        for index, bench in enumerate(benches):
            where = f"{path.name} benchmark {index + 1}"
            batches.append(_batch(bench, where, f"{KIND}-{digest}-{index + 1}", f"{name or path.name} #{index + 1}"))
    return batches


def _flatten(benchmarks: list) -> list:
    """guidellm 0.1 nests a report per run: ``benchmarks[].benchmarks[]``; later versions list them flat."""
    flat = []
    for entry in benchmarks:
        inner = entry.get("benchmarks") if isinstance(entry, dict) and "requests" not in entry else None
        flat.extend(inner if isinstance(inner, list) else [entry])
    return flat


def _v01(bench: dict) -> dict:
    """A guidellm 0.1 ``TextGenerationBenchmark`` in the later shape (times on the request, v0.2 style)."""
    results = []
    for r in bench.get("results") or []:
        if isinstance(r, dict):
            results.append({**r, "prompt_tokens": r.get("prompt_token_count"),
                            "output_tokens": r.get("output_token_count"),
                            "last_token_time": r.get("last_time", r.get("end_time"))})
    return {"requests": {"successful": results}, "config": {"strategy": {"type_": bench.get("mode"),
                                                                        "rate": bench.get("rate")}},
            "_untimed_errors": len(bench.get("errors") or [])}


def _batch(bench: object, where: str, run_id: str, name: str) -> Batch:
    if isinstance(bench, dict) and "requests" not in bench and isinstance(bench.get("results"), list):
        bench = _v01(bench)
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
    if bench.get("_untimed_errors"):
        config["errors_without_times"] = bench["_untimed_errors"]
    totals = (bench.get("metrics") or {}).get("request_totals") if isinstance(bench.get("metrics"), dict) else None
    totals = totals if isinstance(totals, dict) else bench.get("request_totals")  # v0.2-v0.3: on the benchmark
    if isinstance(totals, dict) and isinstance(totals.get("total"), (int, float)):
        config["request_totals"] = {k: v for k, v in totals.items() if isinstance(v, (int, float))}
        config["sampled"] = bool(totals["total"] > len(rows))
    rate = config.get("rate")
    return Batch(run_id=run_id, kind=KIND, name=name, t0_s=t0, config=config, requests=frame,
                 arrival_rate=float(rate) if isinstance(rate, (int, float)) and 0 < rate < 1e9 else None)


def _strategy(bench: dict) -> dict:
    strategy = None
    for holder in ("config", "args"):  # v0.4+: config.strategy; v0.2-v0.3: args.strategy
        if isinstance(bench.get(holder), dict) and isinstance(bench[holder].get("strategy"), dict):
            strategy = bench[holder]["strategy"]
            break
    if not isinstance(strategy, dict):
        return {}
    return {k: strategy[k] for k in ("type_", "rate", "streams", "max_concurrency")
            if isinstance(strategy.get(k), (str, int, float)) and not isinstance(strategy.get(k), bool)}


def _request(entry: object, where: str, status: str) -> dict:
    if not isinstance(entry, dict):
        raise UserError(f"{where} is not an object", f"give {WHAT}")
    info = entry.get("info") if isinstance(entry.get("info"), dict) else {}
    timings = info.get("timings") if isinstance(info.get("timings"), dict) else {}
    scheduler = entry.get("scheduler_info") if isinstance(entry.get("scheduler_info"), dict) else {}
    found = {}
    for key, (new, old) in TIMES.items():
        value = timings.get(new, entry.get(old))
        if key == "target" and value is None:
            value = scheduler.get("targeted_start_time")  # v0.2-v0.3
        # v0.2-v0.3 write -1 for a time that was never set (a request cancelled before it started)
        unset = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value == -1)
        found[key] = np.nan if unset else epoch_seconds(value, f"{where}: {new}")
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

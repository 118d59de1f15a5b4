"""Prometheus metrics -> ``metric_samples``: text exposition scrapes and HTTP API ``query_range`` JSON.

Series keep their names as exposed (``vllm:num_requests_waiting``; a counter as ``..._total``; a histogram
as ``_bucket`` with ``le`` in the labels, ``_sum`` and ``_count``). The ``*_created`` series that
prometheus_client adds (a creation timestamp, not a measurement) are left out. Samples whose value is
NaN or infinite (a summary quantile with no observations, say) cannot be stored and are skipped; the run's
config counts them. A text scrape is parsed with prometheus_client's own parser. The server's configuration
in info gauges (``vllm:cache_config_info``) also becomes recorded settings (:mod:`.info`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

from causalsre.errors import UserError
from causalsre.telemetry.importers.checks import epoch_seconds, parse_time
from causalsre.telemetry.importers.files import existing_file, fingerprint
from causalsre.telemetry.importers.writer import Batch
from causalsre.telemetry.importers.info import info_settings

KIND = "import-prometheus"
_SCRAPE_COMMENT = re.compile(r"^#\s*scrape_time[:=\s]\s*(\S+)", re.MULTILINE)
_NAME_EPOCH = re.compile(r"(?<!\d)(\d{10}(?:\.\d+)?)(?!\d)")
_NAME_STAMP = re.compile(r"(?<!\d)(\d{8}T\d{6}Z?)(?!\d)")
MONOTONE_TYPES = ("counter", "histogram", "summary", "gaugehistogram")


def parse(paths: list[str | Path], *, run_id: str | None = None, at: str | None = None,
          name: str | None = None) -> Batch:
    """All files of one command as one batch: a new run, or samples added to ``run_id``."""
    files = [existing_file(p) for p in paths]
    if at is not None and len(files) != 1:
        raise UserError("--at gives the scrape time of one file, but several were given",
                        "put a `# scrape_time <time>` line in each file, or import them one at a time")
    rows: list[tuple] = []
    skipped = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{path.name} is not UTF-8 text", "give a Prometheus text scrape or JSON") from None
        if text.lstrip().startswith("{"):
            found, bad = _query_json(text, path)
        else:
            found, bad = _scrape(text, path, at)
        rows.extend(found)
        skipped += bad
    if not rows:
        raise UserError(f"{', '.join(p.name for p in files)} hold no samples", "give a non-empty scrape or query")
    samples = pd.DataFrame(rows, columns=["ts_s", "metric", "labels_json", "value", "source"])
    samples = samples.drop_duplicates(subset=["ts_s", "metric", "labels_json"]).reset_index(drop=True)
    settings, conflicts = info_settings(samples)
    config = {"source": [p.name for p in files], "series": int(samples.groupby(["metric", "labels_json"]).ngroups),
              "skipped_non_finite": skipped,
              "settings_from_info": sorted(set(settings["setting"])) if settings is not None else [],
              "info_conflicts": conflicts}
    if run_id is not None:
        return Batch(run_id=run_id, kind=KIND, name=name or files[0].name, samples=samples, config=config,
                     settings=settings, attach=True)
    # t0 stays the first sample; a setting in force since the process started begins before it (start_ns < 0).
    return Batch(run_id=f"{KIND}-{fingerprint(files)}", kind=KIND, name=name or files[0].name,
                 t0_s=float(samples["ts_s"].min()), config=config, samples=samples, settings=settings)


def _scrape_time(text: str, path: Path, at: str | None) -> float:
    if at is not None:
        return parse_time(at, "--at")
    comment = _SCRAPE_COMMENT.search(text)
    if comment:
        return parse_time(comment.group(1), f"{path.name}: # scrape_time")
    epoch = _NAME_EPOCH.search(path.name)
    if epoch:
        return epoch_seconds(float(epoch.group(1)), f"{path.name}: time in the file name")
    stamp = _NAME_STAMP.search(path.name)
    if stamp:
        return parse_time(stamp.group(1), f"{path.name}: time in the file name")
    raise UserError(f"{path.name}: no scrape time", "add `# scrape_time 2026-01-01T00:00:00Z` (or epoch seconds) "
                    "to the file, put epoch seconds in its name, or pass --at")


def _scrape(text: str, path: Path, at: str | None) -> tuple[list[tuple], int]:
    from prometheus_client.parser import text_string_to_metric_families

    scraped_at = _scrape_time(text, path, at)
    rows, skipped = [], 0
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path.name} is not a Prometheus text scrape ({first[:120]})",
                        "give the body of a /metrics response (text exposition format)") from None
    for family in families:
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            value = float(sample.value)
            if not math.isfinite(value):
                skipped += 1
                continue
            if value < 0 and family.type in MONOTONE_TYPES:
                raise UserError(f"{path.name}: {sample.name} is {value} but a {family.type} cannot be negative",
                                "give an unmodified scrape")
            ts = scraped_at
            if sample.timestamp is not None:  # an explicit sample timestamp wins over the scrape time
                ts = epoch_seconds(float(sample.timestamp), f"{path.name}: timestamp of {sample.name}")
            rows.append((ts, sample.name, json.dumps(dict(sorted(sample.labels.items()))), value, path.name))
    return rows, skipped


def _query_json(text: str, path: Path) -> tuple[list[tuple], int]:
    """``/api/v1/query_range`` (matrix) or ``/api/v1/query`` (vector) responses."""
    try:
        doc = json.loads(text)
    except RecursionError:  # a deeply nested array: a traceback before
        raise UserError(f"{path.name} nests deeper than the JSON parser can follow",
                        "give a Prometheus HTTP API response") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path.name} is not valid JSON ({exc})", "give a Prometheus HTTP API response") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict) or doc.get("status") not in ("success", None):
        raise UserError(f"{path.name} is not a successful Prometheus API response (status {doc.get('status')!r})"
                        if isinstance(doc, dict) else f"{path.name} is not a JSON object",
                        "save the body of /api/v1/query_range?query=...")
    kind, result = data.get("resultType"), data.get("result")
    if kind not in ("matrix", "vector") or not isinstance(result, list):
        raise UserError(f"{path.name}: resultType {kind!r} is not matrix or vector",
                        "query series (a range query gives a matrix), not a scalar or string")
    rows, skipped = [], 0
    for i, series in enumerate(result):
        where = f"{path.name}: result[{i}]"
        if not isinstance(series, dict) or not isinstance(series.get("metric", {}), dict):
            raise UserError(f"{where} is not a series object", "give an unmodified API response")
        labels = {str(k): str(v) for k, v in series.get("metric", {}).items()}
        metric = labels.pop("__name__", None) or path.stem  # an expression's result has no name: the file's
        points = series.get("values") if kind == "matrix" else [series.get("value")]
        if not isinstance(points, list):
            raise UserError(f"{where} has no values list", "give an unmodified API response")
        for point in points:
            if not isinstance(point, list) or len(point) != 2:
                raise UserError(f"{where}: a point is not [time, \"value\"]", "give an unmodified API response")
            ts = epoch_seconds(point[0], f"{where}: time")
            try:
                value = float(point[1])
            except (TypeError, ValueError):
                raise UserError(f"{where}: value {point[1]!r} is not a number", "give an unmodified API response") from None
            if not math.isfinite(value):
                skipped += 1
                continue
            rows.append((ts, metric, json.dumps(dict(sorted(labels.items()))), value,
                         f"prometheus {kind} {path.name}"))
    return rows, skipped

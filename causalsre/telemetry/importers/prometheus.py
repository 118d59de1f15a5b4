"""Prometheus metrics -> ``metric_samples``: text exposition scrapes and HTTP API ``query_range`` JSON.

Series keep their names as exposed (``vllm:num_requests_waiting``; a counter as ``..._total``; a histogram
as ``_bucket`` with ``le`` in the labels, ``_sum`` and ``_count``). The ``*_created`` series that
prometheus_client adds (a creation timestamp, not a measurement) are left out. Samples whose value is
NaN or infinite (a summary quantile with no observations, say) cannot be stored and are skipped; the run's
config counts them. Text scrapes (one or many per file, Prometheus text or OpenMetrics, gzip or not) are
split and checked in :mod:`.scrapes`. The server's configuration in info gauges (``vllm:cache_config_info``)
also becomes recorded settings (:mod:`.info`). Counter resets (a restart between scrapes) are kept as
scraped and counted in the run's config; the join (:mod:`.mapping`) reads a drop as a restart.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pandas as pd

from causalsre.errors import UserError
from causalsre.telemetry.importers.checks import epoch_seconds
from causalsre.telemetry.importers.coverage import scrape_notes
from causalsre.telemetry.importers.files import files_in, fingerprint, max_bytes, read_text
from causalsre.telemetry.importers.info import info_settings, unmodelled_notes, unmodelled_settings
from causalsre.telemetry.importers.scrapes import counter_resets, file_time, split
from causalsre.telemetry.importers.scrapes import rows as scrape_rows
from causalsre.telemetry.importers.tsdb_dump import is_tsdb_dump, to_exposition
from causalsre.telemetry.importers.writer import Batch

KIND = "import-prometheus"
WHAT = "a Prometheus text scrape (the body of /metrics) or query_range JSON"
# prometheus_client's pure-Python parser reads about 0.3 MB of scrape text a second on one core: past this
# much text a command would run for minutes, so it is refused with a way round (CAUSALSRE_IMPORT_MAX_MB).
TEXT_MAX_MB = 64
PROGRESS_BYTES = 8 << 20  # more text than this: say how far the parse has got, on stderr


def parse(paths: list[str | Path], *, run_id: str | None = None, at: str | None = None,
          name: str | None = None) -> Batch:
    """All files of one command as one batch: a new run, or samples added to ``run_id``.

    A directory stands for the files in it (a folder of scrapes), in name order.
    """
    files = files_in(paths)
    if at is not None and len(files) != 1:
        raise UserError("--at gives the scrape time of one file, but several were given",
                        "put a `# scrape_time <time>` line in each file, or import them one at a time")
    texts = [(path, read_text(path, WHAT)) for path in files]
    total = sum(len(text) for _, text in texts)
    limit = max_bytes() if os.environ.get("CAUSALSRE_IMPORT_MAX_MB", "").strip() else TEXT_MAX_MB << 20
    if total > limit:
        raise UserError(f"{len(files)} file(s) hold {total / 2**20:.0f} MB of metrics, over the "
                        f"{limit / 2**20:.0f} MB a command parses in reasonable time",
                        "import them in several commands with --run, export a query_range JSON of the vLLM "
                        "series instead, or raise CAUSALSRE_IMPORT_MAX_MB")
    rows: list[tuple] = []
    skipped, done, scrape_count = 0, 0, 0
    report_at = total / 10  # progress in tenths, so a long parse says how far it is without flooding stderr
    for path, text in texts:
        if is_tsdb_dump(text):  # `promtool tsdb dump`: one `{__name__=...} value ms` line per sample
            text = to_exposition(text, path.name)
        if text.lstrip().startswith("{"):
            found, bad = _query_json(text, path)
        else:
            scrapes = split(text, path.name)
            if at is not None:  # --at wins over the file's own `# scrape_time`, as it always has
                if len(scrapes) > 1:
                    raise UserError(f"--at gives one scrape time but {path.name} holds {len(scrapes)} scrapes",
                                    "leave out --at: put a `# scrape_time <time>` line before each scrape")
                scrapes[0].time_text = None
            default = file_time(path, at) if len(scrapes) == 1 else None
            found, bad = [], 0
            for scrape in scrapes:
                more, worse = scrape_rows(scrape, default, path.name)
                found.extend(more)
                bad += worse
                done += len(scrape.text)
                if total > PROGRESS_BYTES and done >= report_at:
                    print(f"parsed {done / 2**20:.0f} of {total / 2**20:.0f} MB of metrics", file=sys.stderr)
                    report_at += total / 10
            scrape_count += len(scrapes)
        rows.extend(found)
        skipped += bad
    if not rows:
        dropped = f" ({skipped} non-finite values, NaN or +-Inf, are skipped)" if skipped else ""
        raise UserError(f"{', '.join(p.name for p in files)} hold no samples{dropped}",
                        "give a non-empty scrape or query")
    samples = pd.DataFrame(rows, columns=["ts_s", "metric", "labels_json", "value", "source"])
    conflicting = samples.groupby(["ts_s", "metric", "labels_json"])["value"].nunique()
    if (conflicting > 1).any():
        ts, metric, labels = conflicting[conflicting > 1].index[0]
        same = samples[(samples["ts_s"] == ts) & (samples["metric"] == metric) & (samples["labels_json"] == labels)]
        sources = sorted(set(same["source"]))
        who = f"{sources[0]} gives" if len(sources) == 1 else f"{', '.join(sources[:3])} give"
        raise UserError(f"{who} {metric}{labels} different values at the same time ({ts:.3f})",
                        "import each server's scrapes once; scrapes of two servers go to two runs")
    samples = samples.drop_duplicates(subset=["ts_s", "metric", "labels_json"]).reset_index(drop=True)
    settings, conflicts = info_settings(samples)
    config = {"source": [p.name for p in files][:50], "files": len(files), "scrapes": scrape_count,
              "series": int(samples.groupby(["metric", "labels_json"]).ngroups),
              "skipped_non_finite": skipped, "counter_resets": counter_resets(samples),
              "settings_from_info": sorted(set(settings["setting"])) if settings is not None else [],
              "info_conflicts": conflicts}
    notes, summary = scrape_notes(samples, attached=run_id is not None)
    if server := unmodelled_settings(samples):
        config["server_config"] = server
        notes += unmodelled_notes(server)
    if run_id is None and summary:
        config["histograms"] = summary  # all a run without per-request rows can say of its requests
    if run_id is not None:
        return Batch(run_id=run_id, kind=KIND, name=name or files[0].name, samples=samples, config=config,
                     settings=settings, attach=True, notes=notes)
    # t0 stays the first sample; a setting in force since the process started begins before it (start_ns < 0).
    return Batch(run_id=f"{KIND}-{fingerprint(files)}", kind=KIND, name=name or files[0].name,
                 t0_s=float(samples["ts_s"].min()), config=config, samples=samples, settings=settings, notes=notes)


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

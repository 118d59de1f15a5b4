"""Bring your own telemetry: importers that turn production request logs into schema rows.

Two formats:

* a generic per-request CSV or Parquet file (:func:`import_requests_file`), and
* the per-request result JSON that vLLM's serving benchmark saves with ``--save-result``
  (:func:`import_vllm_bench`).

Each import becomes one ``runs`` row. Everything is validated before anything is written, and the writes
happen in one transaction, so a bad file never leaves a half-written import behind. Importing the same
file twice is refused (the run id is derived from the file's content).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from causalsre.errors import UserError
from causalsre.telemetry.frames import requests_frame_from_latencies, write_import

REQUIRED_COLUMNS = ("arrival_time", "ttft_s", "e2e_s", "prompt_tokens", "output_tokens", "status")
NUMERIC_COLUMNS = ("ttft_s", "e2e_s", "prompt_tokens", "output_tokens", "tpot_s")
# Optional columns that map onto typed `requests` columns rather than the attributes JSON.
TYPED_OPTIONAL = ("tpot_s", "tenant", "priority", "request_id")


def file_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise UserError(f"file {path} does not exist", "check the path")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot read {path} ({first})", "give a well-formed CSV or Parquet file") from None
    raise UserError(f"unsupported file type {suffix or '(none)'} for {path}", "give a .csv or .parquet file")


MAX_EPOCH_S = 7_258_118_400  # 2200-01-01: later "epoch seconds" are a unit mistake (ms or ns)


def parse_arrival_times(values: pd.Series) -> pd.Series:
    """ISO 8601 strings or epoch seconds -> timezone-naive UTC timestamps; UserError naming the bad row."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numeric = values.astype("float64").to_numpy()
        bad = ~np.isfinite(numeric) | (numeric < 0) | (numeric > MAX_EPOCH_S)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise UserError(f"column arrival_time row {row + 1}: {values.iloc[row]!r} is not epoch seconds "
                            "between 1970 and 2200", "give ISO 8601 times or epoch seconds in every row")
        return pd.to_datetime(pd.Series(numeric), unit="s", utc=True).dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values, utc=True)
    else:
        text = values.astype("string")
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        # Epoch seconds stored as strings are fine too.
        as_number = pd.to_numeric(text, errors="coerce")
        as_number = as_number.where((as_number >= 0) & (as_number <= MAX_EPOCH_S))
        parsed = parsed.where(parsed.notna() | as_number.isna(),
                              pd.to_datetime(as_number, unit="s", utc=True, errors="coerce"))
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise UserError(f"column arrival_time row {row + 1}: cannot parse {values.iloc[row]!r} as a time",
                        "use ISO 8601 (2026-01-31T12:00:00Z) or epoch seconds")
    return parsed.dt.tz_localize(None)


def _numeric(df: pd.DataFrame, column: str) -> pd.Series:
    converted = pd.to_numeric(df[column], errors="coerce")
    bad = converted.isna() & df[column].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(f"column {column} row {row + 1}: {df[column].iloc[row]!r} is not a number",
                        f"make {column} numeric")
    if (converted < 0).any():
        row = int(np.flatnonzero((converted < 0).to_numpy())[0])
        raise UserError(f"column {column} row {row + 1}: negative value {converted.iloc[row]}",
                        f"{column} must be >= 0")
    return converted


def import_requests_file(con: duckdb.DuckDBPyConnection, path: str | Path, *, name: str | None = None) -> str:
    """Import a generic per-request CSV/Parquet file as one run; returns the new run id."""
    path = Path(path)
    df = _read_table(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path.name} lacks required column(s) {', '.join(missing)}",
                        f"the file needs columns {', '.join(REQUIRED_COLUMNS)}")
    if df.empty:
        raise UserError(f"{path.name} has no rows", "give a file with at least one request")
    arrivals = parse_arrival_times(df["arrival_time"])
    values = {c: _numeric(df, c) for c in NUMERIC_COLUMNS if c in df.columns}
    for column in ("prompt_tokens", "output_tokens"):
        if values[column].isna().any():
            raise UserError(f"column {column} has missing values", f"give {column} for every request")
    status_text = df["status"].astype("string").fillna("error").str.strip()
    extra = [c for c in df.columns if c not in REQUIRED_COLUMNS and c not in TYPED_OPTIONAL]
    attributes = None
    if extra:
        attributes = [json.dumps({k: _jsonable(v) for k, v in row.items()}) for row in df[extra].to_dict("records")]
    frame, started_at = requests_frame_from_latencies(
        arrivals=arrivals,
        ttft_s=values["ttft_s"],
        e2e_s=values["e2e_s"],
        tpot_s=values.get("tpot_s"),
        prompt_tokens=values["prompt_tokens"],
        output_tokens=values["output_tokens"],
        status=status_text,
        tenant=df["tenant"].astype("string") if "tenant" in df.columns else None,
        priority=pd.to_numeric(df["priority"], errors="coerce") if "priority" in df.columns else None,
        attributes=attributes,
    )
    config = {"source": str(path.name), "columns": [str(c) for c in df.columns], "factors": extra}
    return write_import(con, kind="import-requests", name=name or path.name, fingerprint=file_fingerprint(path),
                        started_at=started_at, requests=frame, config=config)


def _jsonable(value: object) -> object:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    return value


VLLM_REQUIRED = ("ttfts", "itls", "input_lens", "output_lens", "errors")


def import_vllm_bench(con: duckdb.DuckDBPyConnection, path: str | Path, *, name: str | None = None) -> str:
    """Import the JSON saved by vLLM's serving benchmark (``--save-result``); returns the run id.

    Per-request arrival times come from ``request_submit_times`` when the file has them (newer vLLM);
    older files have none, so requests are spread evenly over ``duration`` from the file's ``date`` and the
    run's config records ``arrivals: "approximate"``. E2E latency is TTFT plus the request's inter-token
    latencies; a request with a non-empty error is a failed request (status error).
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"file {path} does not exist", "check the path")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path.name} is not valid JSON ({exc})", "give the file vLLM's benchmark saved") from None
    if not isinstance(doc, dict):
        raise UserError(f"{path.name} is not a JSON object", "give the file saved by `vllm bench serve --save-result`")
    missing = [k for k in VLLM_REQUIRED if k not in doc]
    if missing:
        raise UserError(f"{path.name} lacks key(s) {', '.join(missing)}",
                        "save the benchmark with --save-result (and --save-detailed on newer vLLM)")
    n = len(doc["ttfts"])
    if n == 0:
        raise UserError(f"{path.name} holds no requests", "give a benchmark result with at least one request")
    for key in VLLM_REQUIRED:
        if not isinstance(doc[key], list) or len(doc[key]) != n:
            raise UserError(f"{path.name}: {key} must be a list of {n} entries like ttfts",
                            "give an unmodified vLLM benchmark result")
    errors = ["" if e is None else str(e) for e in doc["errors"]]
    failed = np.array([bool(e) for e in errors])
    try:
        ttft = np.array([float(v or 0.0) for v in doc["ttfts"]])
        gaps = [np.asarray(v or [], dtype=float) for v in doc["itls"]]
        prompt = np.array([int(v or 0) for v in doc["input_lens"]])
        output = np.array([int(v or 0) for v in doc["output_lens"]])
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path.name}: a per-request value is not a number ({exc})",
                        "give an unmodified vLLM benchmark result") from None
    e2e = ttft + np.array([g.sum() for g in gaps])
    arrivals, approximate = _vllm_arrivals(doc, n, path)
    frame, started_at = requests_frame_from_latencies(
        arrivals=arrivals,
        ttft_s=pd.Series(np.where(failed, np.nan, ttft)),
        e2e_s=pd.Series(np.where(failed, np.nan, e2e)),
        tpot_s=None,
        prompt_tokens=pd.Series(prompt),
        output_tokens=pd.Series(output),
        status=pd.Series(np.where(failed, "error", "ok")),
        finish_reasons=pd.Series([e[:200] if e else "length" for e in errors]),
    )
    config = {key: doc[key] for key in ("backend", "model_id", "request_rate", "burstiness", "max_concurrency",
                                        "num_prompts", "duration", "date") if key in doc}
    config["source"] = path.name
    config["arrivals"] = "approximate" if approximate else "request_submit_times"
    return write_import(con, kind="import-vllm-bench", name=name or path.name, fingerprint=file_fingerprint(path),
                        started_at=started_at, requests=frame, config=config,
                        arrival_rate=doc.get("request_rate") if isinstance(doc.get("request_rate"), (int, float)) else None,
                        burstiness=doc.get("burstiness") if isinstance(doc.get("burstiness"), (int, float)) else None)


def _vllm_arrivals(doc: dict, n: int, path: Path) -> tuple[pd.Series, bool]:
    submits = doc.get("request_submit_times")
    if isinstance(submits, list) and len(submits) == n and all(isinstance(v, (int, float)) for v in submits):
        return pd.to_datetime(pd.Series(submits, dtype="float64"), unit="s"), False
    start = datetime.now(timezone.utc).replace(tzinfo=None)
    if isinstance(doc.get("date"), str):
        try:
            start = datetime.strptime(doc["date"], "%Y%m%d-%H%M%S")
        except ValueError:
            raise UserError(f"{path.name}: date {doc['date']!r} is not YYYYMMDD-HHMMSS",
                            "give an unmodified vLLM benchmark result") from None
    duration = float(doc.get("duration") or 0.0)
    offsets = np.linspace(0.0, max(duration, 0.0), num=n, endpoint=False)
    return pd.Series(pd.Timestamp(start) + pd.to_timedelta(offsets, unit="s")), True

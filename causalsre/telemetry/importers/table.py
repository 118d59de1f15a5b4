"""Any per-request CSV/Parquet file, with a column mapping and units: ``db import table FILE --map COL=FIELD``.

``db import requests`` wants the schema's own column names in seconds; a gateway log or a load-test export
has its own names and often milliseconds. This importer renames the file's columns to the fields below
(``--map latency_ms=e2e_s``), converts the units it is told (``--unit e2e_s=ms``), and then imports exactly
as ``db import requests`` does (:func:`causalsre.telemetry.imports.import_requests_file`'s rules: strict
cells, one transaction, every unmapped column kept as a request attribute, usable as a factor).

A bad mapping (a column the file lacks, an unknown field, a field given twice, a unit for a field that has
none) is one :class:`UserError` before the file's rows are read into the database: nothing is written.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pandas as pd

from causalsre.errors import UserError
from causalsre.telemetry import columns
from causalsre.telemetry.attributes import attribute_json
from causalsre.telemetry.frames import requests_frame_from_latencies, write_import
from causalsre.telemetry.imports import REQUIRED_COLUMNS, TYPED_OPTIONAL, _read_table, file_fingerprint

# field -> what it holds; docs/importers/table.md renders the same table.
FIELDS = {
    "arrival_time": "when the request arrived: ISO 8601, or epoch seconds (ms/us with --unit)",
    "ttft_s": "time to first token",
    "e2e_s": "arrival to last token",
    "tpot_s": "mean time per output token after the first (optional: derived from e2e and ttft)",
    "prompt_tokens": "prompt length in tokens",
    "output_tokens": "generated tokens",
    "status": "ok, or anything else for a failed request",
    "tenant": "who sent it (optional)",
    "priority": "scheduling priority, an integer (optional)",
    "request_id": "unique integer id (optional)",
    "target_output_tokens": "max_tokens asked for (optional)",
    "finish_reason": "stop, length, ... (optional)",
    "num_preemptions": "times the server preempted it (optional)",
}
TIME_FIELDS = ("ttft_s", "e2e_s", "tpot_s")  # durations: --unit s|ms|us
UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
MAX_ITEMS = 64  # --map/--unit pairs: far more than the fields there are


def parse_pairs(pairs: tuple[str, ...] | list[str], option: str) -> dict[str, str]:
    """``KEY=VALUE`` strings -> dict; UserError on a malformed pair or a key given twice."""
    if len(pairs) > MAX_ITEMS:
        raise UserError(f"{len(pairs)} {option} options", f"give at most {MAX_ITEMS}")
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise UserError(f"bad {option} {pair!r}", f"use {option} {'COLUMN=FIELD' if option == '--map' else 'FIELD=ms'}")
        if key in out:
            raise UserError(f"{option} gives {key!r} twice", "give each once")
        out[key] = value
    return out


def check_mapping(mapping: dict[str, str], units: dict[str, str], columns_in_file: list[str],
                  file_name: str) -> dict[str, float]:
    """Validate ``--map`` against the file and the fields, and ``--unit``; returns field -> factor to seconds."""
    for column, field in mapping.items():
        if column not in columns_in_file:
            raise UserError(f"--map {column}={field}: {file_name} has no column {column!r}",
                            f"its columns are {', '.join(columns_in_file[:12])}")
        if field not in FIELDS:
            raise UserError(f"--map {column}={field}: unknown field {field!r}",
                            f"map to one of {', '.join(FIELDS)}")
    targets = list(mapping.values())
    twice = sorted({f for f in targets if targets.count(f) > 1})
    if twice:
        raise UserError(f"--map maps two columns to {twice[0]}", "map one column to each field")
    # A column already named like a field, and another column mapped to that field, would collide.
    clash = sorted(f for f in targets if f in columns_in_file and f not in mapping)
    if clash:
        raise UserError(f"--map maps a column to {clash[0]}, but {file_name} already has a column {clash[0]!r}",
                        f"map only one of them to {clash[0]}: drop that --map, or rename the column")
    factors = {}
    for field, unit in units.items():
        if field not in TIME_FIELDS + ("arrival_time",):
            raise UserError(f"--unit {field}={unit}: {field!r} has no unit",
                            f"give units for {', '.join(TIME_FIELDS)} or arrival_time")
        if unit not in UNITS:
            raise UserError(f"--unit {field}={unit}: unknown unit {unit!r}", f"use one of {', '.join(UNITS)}")
        factors[field] = UNITS[unit]
    return factors


def _scaled(values: pd.Series, field: str, factor: float) -> pd.Series:
    """A duration or epoch column in another unit -> seconds (cells checked by the same strict rules)."""
    if field == "arrival_time":
        numbers = columns.reals(values, field, high=columns.MAX_EPOCH_S / factor)
    else:
        numbers = columns.reals(values, field, high=columns.MAX_LATENCY_S / factor)
    return numbers * factor


def import_table(con: duckdb.DuckDBPyConnection, path: str | Path, *, mapping: dict[str, str],
                 units: dict[str, str], name: str | None = None) -> str:
    """Import one CSV/Parquet file with ``mapping`` (column -> field) and ``units`` (field -> s|ms|us)."""
    path = Path(path)
    df, is_text = _read_table(path)
    factors = check_mapping(mapping, units, list(df.columns), path.name)
    df = df.rename(columns=mapping)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path.name} has no column for {', '.join(missing)}",
                        f"map them, e.g. --map COLUMN={missing[0]} (fields: docs/importers/table.md)")
    for field in factors:
        if field not in df.columns:
            raise UserError(f"--unit {field}=...: no column is {field}", f"map a column to {field}, or drop the --unit")
    if df.empty:
        raise UserError(f"{path.name} has no rows", "give a file with at least one request")
    for field, factor in factors.items():
        if factor != 1.0 or field == "arrival_time":
            df[field] = _scaled(df[field], field, factor)
    optional = {c: df[c] for c in TYPED_OPTIONAL if c in df.columns}
    extra = [c for c in df.columns if c not in REQUIRED_COLUMNS and c not in TYPED_OPTIONAL]
    frame, started_at = requests_frame_from_latencies(
        arrivals=df["arrival_time"], ttft_s=df["ttft_s"], e2e_s=df["e2e_s"], tpot_s=optional.get("tpot_s"),
        prompt_tokens=df["prompt_tokens"], output_tokens=df["output_tokens"],
        status=columns.texts(df["status"], "status").fillna("error").str.strip(),
        tenant=optional.get("tenant"), priority=optional.get("priority"),
        attributes=attribute_json(df, extra, text_file=is_text), finish_reasons=optional.get("finish_reason"),
        request_ids=optional.get("request_id"), target_output_tokens=optional.get("target_output_tokens"),
        num_preemptions=optional.get("num_preemptions"))
    # The same file under another mapping is another import; the same file and mapping twice is refused.
    spec = repr(sorted(mapping.items())) + repr(sorted(units.items()))
    fingerprint = hashlib.sha256((file_fingerprint(path) + spec).encode()).hexdigest()[:16]
    config = {"source": path.name, "columns": [str(c) for c in df.columns], "factors": extra,
              "map": mapping, "units": units}
    return write_import(con, kind="import-table", name=name or path.name, fingerprint=fingerprint,
                        started_at=started_at, requests=frame, config=config)

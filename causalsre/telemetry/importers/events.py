"""Operator events CSV (``time,key,value[,kind]``) -> ``operator_events``, and config changes -> ``run_settings``.

``time`` is ISO 8601 (UTC when no offset) or epoch seconds; ``key`` names what changed (a setting such as
``max_num_seqs``, or ``deploy``, ``replicas``...); ``value`` is the new value as written; ``kind`` is one of
KINDS (empty: ``other``). A ``config`` row is also a setting change: its value goes to ``run_settings``
(``value`` when it is a number, which must be finite and non-negative; ``value_text`` otherwise), so the
postmortem's "what changed" sees it exactly like a harness config push.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pandas as pd

from causalsre.errors import UserError
from causalsre.safeio import decode_table
from causalsre.times import MIXED_FIX, mixed_offsets
from causalsre.telemetry.importers.checks import parse_time
from causalsre.telemetry.importers.files import existing_file, fingerprint, read_bytes
from causalsre.telemetry.importers.writer import Batch

KIND = "import-events"
KINDS = ("deploy", "config", "scale", "other")
COLUMNS = ("time", "key", "value", "kind")
MAX_TEXT = 200


def parse(paths: list[str | Path], *, run_id: str | None = None, name: str | None = None) -> Batch:
    """Every file's rows as one batch: events for ``run_id``, or a new run starting at the first event."""
    files = [existing_file(p) for p in paths]
    rows = []
    for path in files:
        rows.extend(_rows(path))
    if not rows:
        raise UserError(f"{', '.join(p.name for p in files)} hold no events", "give at least one row after the header")
    events = pd.DataFrame(rows, columns=["ts_s", "key", "value", "kind", "source"])
    config_rows = events[events["kind"] == "config"]
    dup = config_rows.duplicated(subset=["key", "ts_s"])
    if dup.any():
        row = config_rows[dup].iloc[0]
        raise UserError(f"config change {row['key']!r} appears twice at the same time in {row['source']}",
                        "keep one row per setting and time")
    settings = pd.DataFrame({
        "setting": config_rows["key"].to_numpy(),
        "ts_s": config_rows["ts_s"].to_numpy(dtype=float),
        "value": [_setting_number(v) for v in config_rows["value"]],
        "value_text": [None if _setting_number(v) is not None else v for v in config_rows["value"]],
    })
    config = {"source": [p.name for p in files], "kinds": sorted(set(events["kind"]))}
    if run_id is not None:
        return Batch(run_id=run_id, kind=KIND, name=name or files[0].name, events=events, settings=settings,
                     config=config, attach=True)
    return Batch(run_id=f"{KIND}-{fingerprint(files)}", kind=KIND, name=name or files[0].name,
                 t0_s=float(events["ts_s"].min()), config=config, events=events, settings=settings)


def _rows(path: Path) -> list[tuple]:
    # through read_bytes, like every other importer (gzip is read, the size cap applies), and the one CSV
    # decoder: a UTF-8 BOM dropped, UTF-16 (Excel's "Unicode text") and NUL bytes refused by name
    text = decode_table(read_bytes(path), name=path.name)
    reader = csv.reader(io.StringIO(text))
    try:
        table = [row for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise UserError(f"{path.name} is not a well-formed CSV ({exc})", "give columns time,key,value[,kind]") from None
    if not table:
        raise UserError(f"{path.name} is empty", "give a header time,key,value[,kind] and one row per event")
    header = [cell.strip().lower() for cell in table[0]]
    missing = [c for c in COLUMNS[:3] if c not in header]
    if missing:
        raise UserError(f"{path.name} lacks column(s) {', '.join(missing)}",
                        "the first line must be a header: time,key,value[,kind]")
    index = {c: header.index(c) for c in COLUMNS if c in header}
    rows, times = [], []
    for number, row in enumerate(table[1:], start=2):
        where = f"{path.name} line {number}"
        if len(row) != len(header):
            raise UserError(f"{where}: {len(row)} fields for {len(header)} columns", "quote values that hold commas")
        cell = {c: row[i].strip() for c, i in index.items()}
        key = cell["key"]
        if not key or len(key) > MAX_TEXT or any(ord(ch) < 32 for ch in key):
            raise UserError(f"{where}: key {key!r} is empty, too long or holds control characters",
                            f"give a name of at most {MAX_TEXT} characters")
        kind = (cell.get("kind") or "other").lower()
        if kind not in KINDS:
            raise UserError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}", "use one of those kinds")
        value = cell["value"][:MAX_TEXT]
        if kind == "config":
            _check_setting(value, where)
        rows.append((parse_time(cell["time"], f"{where}: time"), key, value, kind, path.name))
        times.append(None if _setting_number(cell["time"]) is not None else cell["time"])  # epoch: absolute
    mixed = mixed_offsets(times)
    if mixed is not None:
        (aware, naive) = mixed
        raise UserError(f"{path.name} mixes times with a UTC offset (line {aware + 2}: {times[aware]!r}) and times "
                        f"without one (line {naive + 2}: {times[naive]!r})", MIXED_FIX)
    return rows


def _setting_number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _check_setting(value: str, where: str) -> None:
    if not value:
        raise UserError(f"{where}: a config change needs a value", "give the setting's new value")
    number = _setting_number(value)
    if number is not None and (not math.isfinite(number) or number < 0):
        raise UserError(f"{where}: config value {value!r} is not a finite non-negative number",
                        "give the setting's new value as it was configured")

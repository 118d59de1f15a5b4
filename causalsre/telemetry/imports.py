"""Bring your own telemetry: importers that turn production request logs into schema rows.

Two formats:

* a generic per-request CSV or Parquet file (:func:`import_requests_file`), and
* the per-request result JSON that vLLM's serving benchmark saves with ``--save-result``
  (:func:`import_vllm_bench`, now in :mod:`causalsre.telemetry.importers.vllm_bench`).

Each import becomes one ``runs`` row. Everything is validated before anything is written, and the writes
happen in one transaction, so a bad file never leaves a half-written import behind. Importing the same
file twice is refused (the run id is derived from the file's content).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from causalsre.errors import UserError
from causalsre.safeio import brief, decode_table, is_gzip, regular_file, table_suffix
from causalsre.telemetry import columns
from causalsre.telemetry.attributes import attribute_json
from causalsre.telemetry.frames import requests_frame_from_latencies, write_import
from causalsre.telemetry.importers.files import read_bytes

REQUIRED_COLUMNS = ("arrival_time", "ttft_s", "e2e_s", "prompt_tokens", "output_tokens", "status")
# Optional columns the schema has a typed place for: kept there (never renumbered, never moved to attributes).
TYPED_OPTIONAL = ("tpot_s", "tenant", "priority", "request_id", "target_output_tokens", "finish_reason",
                  "num_preemptions")
MAX_EPOCH_S = columns.MAX_EPOCH_S


def file_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _read_table(path: Path) -> tuple[pd.DataFrame, bool]:
    """The file's columns: every cell text for CSV, as stored for Parquet; returns (frame, is_text)."""
    if not path.exists():
        raise UserError(f"file {path} does not exist", "check the path")
    regular_file(path, what="file")  # a FIFO or /dev/zero would block the read forever
    suffix = table_suffix(path)  # x.csv.gz reads as a CSV, like the other importers read gzip
    if suffix not in (".parquet", ".csv", ".txt", ".tsv"):
        raise UserError(f"unsupported file type {suffix or '(none)'} for {path}", "give a .csv or .parquet file")
    try:
        if suffix == ".parquet":
            frame, is_text = _read_parquet(path), False
        else:
            frame, is_text = _read_csv(path, sep="\t" if suffix == ".tsv" else ","), True
    except UserError:  # already one line with its own fix (a NUL byte, not UTF-8, the size cap, damaged gzip)
        raise
    except (ValueError, OSError, pa.ArrowException, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot read {path} ({first})", "give a well-formed CSV or Parquet file") from None
    names = [str(c) for c in frame.columns]
    if is_text and len(names) == 1 and suffix != ".tsv":
        _one_column(path, names[0])
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"{path.name} has the column(s) {', '.join(repeated)} more than once",
                        "give every column its own name")
    frame.columns = names
    return frame, is_text


def _read_csv(path: Path, *, sep: str) -> pd.DataFrame:
    # gunzipped when gzip, refused over the import size cap; UTF-16, NUL bytes and other encodings refused
    text = decode_table(read_bytes(path), name=path.name)
    # Every cell as text and no missing-value guessing: tenants named NA, None or null stay names, and each
    # column is parsed by its own rules (causalsre.telemetry.columns); only an empty cell is missing.
    options = dict(sep=sep, dtype=str, keep_default_na=False, na_filter=False)
    frame = pd.read_csv(io.StringIO(text), **options)
    # pandas renames a repeated header (x, x.1); read the header as written so a repeat is refused.
    header = pd.read_csv(io.StringIO(text), header=None, nrows=1, **options)
    if len(header.columns) == len(frame.columns):
        frame.columns = [str(v) for v in header.iloc[0]]
    return _nameless_columns(frame, path)


def _near_names(missing: list[str], columns: list[str]) -> str:
    """Columns that are a missing name but for case or surrounding spaces (' ttft_s ', 'TTFT_S'), for the
    message: the file has the column, written otherwise."""
    found = [repr(c) for c in columns if c.strip().lower() in missing and c not in missing]
    return f"; it has {', '.join(found[:6])}, which differ only in case or spaces" if found else ""


def _nameless_columns(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """A column with no header name: dropped when every cell is empty (a separator at the end of each line, as
    spreadsheets export), refused when it holds data (it became an attribute named "")."""
    nameless = [i for i, name in enumerate(frame.columns) if not str(name).strip()]
    holding = [i for i in nameless if (frame.iloc[:, i].str.strip() != "").any()]
    if holding:
        raise UserError(f"{path.name} column {holding[0] + 1} has no name in the header but holds data",
                        "name the column in the header line, or remove its cells")
    return frame.drop(columns=frame.columns[nameless]) if nameless else frame


def _read_parquet(path: Path) -> pd.DataFrame:
    # Timestamps keep their stored unit: a year-3000 microsecond timestamp must not wrap around in nanoseconds.
    source = io.BytesIO(read_bytes(path)) if is_gzip(path) else path  # a gzipped Parquet file reads too
    frame = pq.read_table(source).to_pandas(coerce_temporal_nanoseconds=False)
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):  # dictionary-encoded text
            frame[name] = frame[name].astype(object)
    return frame


def _one_column(path: Path, header: str) -> None:
    """A CSV read as one column whose name holds another separator: a European spreadsheet's export (;) or a
    tab-separated file named .csv. It said "lacks required column(s) arrival_time, ..." of a file that has them."""
    for mark, name, fix in ((";", "semicolons", "save it comma-separated, e.g. as a spreadsheet's 'CSV UTF-8' "
                                                "format, or replace the semicolons with commas if no value holds one"),
                            ("\t", "tabs", "name it .tsv, which is read tab-separated")):
        if mark in header:
            raise UserError(f"{path.name} is separated by {name}, not commas: its header reads as one column "
                            f"{brief(header)}", fix)


def parse_arrival_times(values: pd.Series) -> pd.Series:
    """ISO 8601 strings, timestamps or epoch seconds -> naive UTC timestamps; UserError naming the bad row."""
    return columns.times(values)


def import_requests_file(con: duckdb.DuckDBPyConnection, path: str | Path, *, name: str | None = None) -> str:
    """Import a generic per-request CSV/Parquet file as one run; returns the new run id.

    Columns the schema has (request_id, tenant, priority, target_output_tokens, finish_reason,
    num_preemptions, tpot_s) are kept in their typed columns; any other column becomes a request attribute.
    """
    path = Path(path)
    df, is_text = _read_table(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        near = _near_names(missing, [str(c) for c in df.columns])
        raise UserError(f"{path.name} lacks required column(s) {', '.join(missing)}{near}",
                        f"the file needs columns {', '.join(REQUIRED_COLUMNS)}")
    if df.empty:
        raise UserError(f"{path.name} has no rows", "give a file with at least one request")
    optional = {c: df[c] for c in TYPED_OPTIONAL if c in df.columns}
    status_text = columns.texts(df["status"], "status").fillna("error").str.strip()
    extra = [c for c in df.columns if c not in REQUIRED_COLUMNS and c not in TYPED_OPTIONAL]
    frame, started_at = requests_frame_from_latencies(
        arrivals=df["arrival_time"],
        ttft_s=df["ttft_s"],
        e2e_s=df["e2e_s"],
        tpot_s=optional.get("tpot_s"),
        prompt_tokens=df["prompt_tokens"],
        output_tokens=df["output_tokens"],
        status=status_text,
        tenant=optional.get("tenant"),
        priority=optional.get("priority"),
        attributes=attribute_json(df, extra, text_file=is_text),
        finish_reasons=optional.get("finish_reason"),
        request_ids=optional.get("request_id"),
        target_output_tokens=optional.get("target_output_tokens"),
        num_preemptions=optional.get("num_preemptions"),
    )
    config = {"source": str(path.name), "columns": [str(c) for c in df.columns], "factors": extra}
    return write_import(con, kind="import-requests", name=name or path.name, fingerprint=file_fingerprint(path),
                        started_at=started_at, requests=frame, config=config)


def import_vllm_bench(con: duckdb.DuckDBPyConnection, path: str | Path, *, name: str | None = None) -> str:
    """Import one vLLM benchmark result JSON; returns the run id (moved to importers/vllm_bench.py)."""
    from causalsre.telemetry.importers import vllm_bench
    from causalsre.telemetry.importers.common import write_batches

    batches = vllm_bench.parse([path], name=name)
    write_batches(con, batches)
    return batches[0].run_id

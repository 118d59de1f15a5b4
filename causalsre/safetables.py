"""Bounds on user tables (CSV/TSV/Parquet, gzip or not) before a parser sees them; see :mod:`causalsre.safeio`.

A gzip file (recognised by its magic bytes, as the importers do) is checked on its decompressed text, as
a stream: no more than one block is ever held, and the scan stops after :data:`GZIP_SCAN_BYTES` (the readers
refuse a file that decompresses past their own cap anyway).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

from causalsre.errors import UserError
from causalsre.safefiles import MAX_LINE_BYTES, regular_file, utf16

GZIP_MAGIC = b"\x1f\x8b"
GZIP_SCAN_BYTES = 1 << 30
DEFAULT_MAX_MB = 512  # the most text one input table may hold (env CAUSALSRE_IMPORT_MAX_MB), after gunzip


def is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def table_suffix(path: str | Path) -> str:
    """The suffix that says the format: ``.csv`` for ``x.csv.gz`` (the ``.gz`` says only how it is packed)."""
    path = Path(path)
    suffix = path.suffix.lower()
    return Path(path.stem).suffix.lower() if suffix == ".gz" else suffix


def check_table(path: str | Path, *, what: str, max_columns: int) -> Path:
    """``path`` if it is a regular file whose lines and column count are within bounds; else one line.

    Parquet: the column count from its footer. Text (CSV/TSV): the longest line, scanned in 8 MiB blocks
    (no line is ever held whole), and the header's fields counted with the csv module.
    """
    path = regular_file(path, what=what)
    suffix = table_suffix(path)
    if suffix in (".parquet", ".pq"):
        return _check_parquet_columns(path, what=what, max_columns=max_columns)
    packed = is_gzip(path)
    try:
        with (gzip.open(path, "rb") if packed else path.open("rb")) as handle:
            header = handle.readline(MAX_LINE_BYTES + 1)  # bounded: a file of one huge line is never read whole
            handle.seek(0)
            line_no = _first_long_line(handle, limit=GZIP_SCAN_BYTES if packed else None)
    except (EOFError, OSError, zlib.error):  # a damaged archive: the reader says so in its own words
        return path
    if line_no is not None:
        raise UserError(f"{what} {path} has a line over {MAX_LINE_BYTES // 2**20} MiB (line {line_no})",
                        "a table has one record per line; check that this is the right file")
    delimiter = b"\t" if suffix == ".tsv" else b","
    columns = header.count(delimiter) + 1  # an upper bound: a quoted name may hold the delimiter
    if columns > max_columns:
        columns = _header_fields(header, delimiter.decode(), columns)
    if columns > max_columns:
        raise UserError(f"{what} {path} has {columns} columns, over the limit of {max_columns}",
                        "keep the columns the analysis needs")
    return path


def _header_fields(header: bytes, delimiter: str, upper: int) -> int:
    import csv

    try:
        rows = list(csv.reader([header.decode("utf-8-sig", errors="replace")], delimiter=delimiter))
    except csv.Error:  # a field over the csv module's own limit: keep the upper bound
        return upper
    return max((len(row) for row in rows), default=0)


def _first_long_line(handle, limit: int | None = None) -> int | None:
    """The number of the first line over MAX_LINE_BYTES, or None; blocks are split in C (fast on 10M rows).
    ``limit``: stop after that many bytes (a gzip stream, which could decompress without end)."""
    line, run, seen = 1, 0, 0  # run: bytes of the current line read so far (it may span blocks)
    while (limit is None or seen < limit) and (block := handle.read(MAX_LINE_BYTES)):
        seen += len(block)
        pieces = block.split(b"\n")
        if len(pieces) == 1:
            run += len(block)
        else:
            if run + len(pieces[0]) > MAX_LINE_BYTES:
                return line
            # Lines wholly inside a block are shorter than the block: only the ends need checking.
            line, run = line + len(pieces) - 1, len(pieces[-1])
        if run > MAX_LINE_BYTES:
            return line
    return None


def _check_parquet_columns(path: Path, *, what: str, max_columns: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        columns = pq.read_metadata(path).num_columns
    except (OSError, pa.ArrowException):
        return path  # not a Parquet file after all: the reader says so in its own words
    if columns > max_columns:
        raise UserError(f"{what} {path} has {columns} columns, over the limit of {max_columns}",
                        "keep the columns the analysis needs")
    return path


# Reading a table's text: one reader for every CSV input (imports, events, attribute tables and edge lists,
# traces), so each refuses the same files in the same words. Before round 5 only `db import requests|table`
# knew UTF-16; the events and attribute readers said "not UTF-8" or "a NUL byte" of a file Excel saved.

def max_bytes() -> int:
    """The most bytes of text one file may hold (env ``CAUSALSRE_IMPORT_MAX_MB``, default 512)."""
    raw = os.environ.get("CAUSALSRE_IMPORT_MAX_MB", "")
    try:
        megabytes = float(raw) if raw.strip() else DEFAULT_MAX_MB
    except ValueError:
        raise UserError(f"CAUSALSRE_IMPORT_MAX_MB={raw!r} is not a number", "set it to a size in MB, e.g. 2048") from None
    if not megabytes == megabytes:  # NaN compares false with everything and would lift the cap
        raise UserError(f"CAUSALSRE_IMPORT_MAX_MB={raw!r} is not a number", "set it to a size in MB, e.g. 2048")
    return int(min(max(megabytes, 0.001), 1 << 40) * 1024 * 1024)


def read_table_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip (by its magic bytes, not its name), refused over the cap."""
    limit = max_bytes()
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(2)
        if head != GZIP_MAGIC:
            if size > limit:
                raise UserError(f"{path.name} is {size / 2**20:.0f} MB, over the import limit of "
                                f"{limit / 2**20:.0f} MB", "split it, or raise CAUSALSRE_IMPORT_MAX_MB")
            return head + handle.read()
    try:
        with gzip.open(path, "rb") as packed:
            data = packed.read(limit + 1)  # a gzip bomb stops here, not when memory runs out
    except EOFError:
        raise UserError(f"{path.name} is a truncated gzip file", "copy the whole file again") from None
    except (OSError, zlib.error) as exc:
        raise UserError(f"{path.name} is a damaged gzip file ({exc})", "copy the file again") from None
    if len(data) > limit:
        raise UserError(f"{path.name} decompresses to more than {limit / 2**20:.0f} MB (the import limit)",
                        "split it, or raise CAUSALSRE_IMPORT_MAX_MB")
    return data


def decode_table(raw: bytes, *, name: str) -> str:
    """A CSV/TSV file's bytes as text: UTF-8 (a leading byte-order mark dropped); UTF-16, a NUL byte and other
    encodings refused in one line naming the file (and the line)."""
    if utf16(raw):  # Excel's "Unicode text" and PowerShell's default encoding
        raise UserError(f"{name} is UTF-16 text, not UTF-8", "save the file as UTF-8 (in Excel: CSV UTF-8)")
    if b"\x00" in raw:  # a CSV reader would end the cell there (or make it NULL): refuse instead
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise UserError(f"{name} line {line} contains a NUL byte", "remove it: a CSV file holds text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UserError(f"{name} line {line} is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                        "save the file as UTF-8") from None


def table_text(path: str | Path, *, what: str) -> str:
    """A CSV/TSV file (gzip or not) as text, through :func:`read_table_bytes` and :func:`decode_table`."""
    path = regular_file(path, what=what)
    return decode_table(read_table_bytes(path), name=path.name)

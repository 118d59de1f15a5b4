"""Bounds on user tables (CSV/TSV/Parquet, gzip or not) before a parser sees them; see :mod:`causalsre.safeio`.

A gzip file (recognised by its magic bytes, as the importers do) is checked on its decompressed text, as
a stream: no more than one block is ever held, and the scan stops after :data:`GZIP_SCAN_BYTES` (the readers
refuse a file that decompresses past their own cap anyway).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from causalsre.errors import UserError
from causalsre.safefiles import MAX_LINE_BYTES, regular_file

GZIP_MAGIC = b"\x1f\x8b"
GZIP_SCAN_BYTES = 1 << 30


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

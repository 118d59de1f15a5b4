"""Telling a user why a database could not be opened or written, in one line naming the file and the fix."""

from __future__ import annotations

import errno
import re
from pathlib import Path

import duckdb

from causalsre.errors import UserError

# DuckDB reports a held file as 'Could not set lock on file ... Conflicting lock is held'. Matching the bare
# word "lock" also matched "block" in the errors of a damaged file, which then read as "locked".
_LOCK_MESSAGE = re.compile(r"could not set lock|conflicting lock|lock is held", re.IGNORECASE)
# Messages (DuckDB's and the OS's) that mean the storage under a file failed, not the file's content.
_STORAGE_MESSAGE = re.compile(r"no space left on device|disk quota exceeded|read-only file system|"
                              r"input/output error|file too large", re.IGNORECASE)


_HOLDER = re.compile(r"lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")
_DENIED_MESSAGE = re.compile(r"permission denied|operation not permitted", re.IGNORECASE)


def _denied(path: str | Path) -> UserError:
    return UserError(f"cannot open {path}: permission denied",
                     "make the file (and, for a new file, its folder) writable by you, or give another path")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# Files people give as --db that are not DuckDB's, by their first bytes. A SQLite file matters most: DuckDB
# opens one through its sqlite extension, which it tries to download from the internet on first use.
_IMPORT_FIX = ("causalsre reads DuckDB files: import the data with `causalsre db import requests|table FILE "
               "--db NEW.duckdb`")
_UNPACK_FIX = "unpack it first and give the .duckdb file inside"
_OTHER_FORMATS = ((b"SQLite format 3\x00", "a SQLite database", _IMPORT_FIX),
                  (b"PAR1", "a Parquet file", _IMPORT_FIX),
                  (b"\x1f\x8b", "a gzip file", _UNPACK_FIX), (b"PK\x03\x04", "a zip archive", _UNPACK_FIX),
                  (b"\x89HDF\r\n\x1a\n", "an HDF5/NetCDF file (a saved fit?)", "give the telemetry database"),
                  (b"CDF\x01", "a NetCDF file (a saved fit?)", "give the telemetry database"))


def not_duckdb(path: str | Path) -> UserError | None:
    """A UserError when the regular file ``path`` is plainly not a DuckDB database (empty, or another known
    format), checked before DuckDB sees it; None when it may be one (DuckDB's own open then decides)."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if not head:
        return UserError(f"cannot open {path}: not a readable DuckDB database (an empty file, 0 bytes)",
                         "delete it and run again to start a new database, or restore it from a copy")
    for signature, kind, fix in _OTHER_FORMATS:
        if head.startswith(signature):
            return UserError(f"cannot open {path}: not a readable DuckDB database (it is {kind})", fix)
    if head[8:12] != b"DUCK" and _is_text(head):
        # A CSV given as --db: DuckDB said "Cannot launch in-memory database in read-only mode!" (it reads a
        # .csv name as a file to query), other text "exists, but it is not a valid DuckDB database file".
        return UserError(f"cannot open {path}: not a readable DuckDB database (it is a text file, starting "
                         f"{head.decode('utf-8', 'replace')[:12]!r})", _IMPORT_FIX)
    return None


def _is_text(head: bytes) -> bool:
    """Whether a file's first bytes are text (a DuckDB file starts with a binary checksum, then DUCK)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\t\r\n" for c in text)


def open_error(path: Path, exc: Exception) -> UserError:
    text = _first_line(exc)
    if _LOCK_MESSAGE.search(text):
        # DuckDB names the holder: "Conflicting lock is held in /usr/bin/python3.11 (PID 31490)".
        holder = _HOLDER.search(text)
        who = f": in use by {Path(holder['program']).name} (PID {holder['pid']})" if holder else f" ({text})"
        return UserError(
            f"database {path} is locked by another process{who}",
            "wait for the writer to finish, or copy the file and analyse the copy",
        )
    if "replaying WAL" in text or "WAL does not match" in text:
        # A write-ahead log left beside the file (a writer killed mid-run) that is not this file's, or is cut.
        problem = "belongs to another database" if "does not match" in text else "cannot be replayed"
        return UserError(f"database {path}: the write-ahead log {path}.wal left beside it {problem} ({text})",
                         f"move {path}.wal aside to read the last checkpoint (losing what the log held), "
                         "or restore the file and its .wal together from a copy")
    if "different configuration" in text:
        return UserError(f"database {path} is already open in this process with other settings ({text})",
                         "close the other connection first")
    if _DENIED_MESSAGE.search(text):  # a mode or a folder, not damage: the file itself is fine
        return _denied(path)
    unplaceable = _unplaceable(Path(path), text)
    if unplaceable is not None:
        return unplaceable
    storage = storage_error(path, exc)
    if storage is not None:
        return storage
    return UserError(f"cannot open {path}: not a readable DuckDB database ({text})",
                     "check the path; a truncated or damaged file must be restored from a copy")


IN_A_FOLDER = "give a path inside an existing folder"


def file_in_the_way(path: Path) -> Path | None:
    """The file that stands where a folder of ``path`` should be (``notes.txt`` of ``notes.txt/run.duckdb``)."""
    return next((p for p in path.parents if p.exists() and not p.is_dir()), None)


def _unplaceable(path: Path, text: str) -> UserError | None:
    """A path where no database can be: a folder on the way is a file (``notes.txt/run.duckdb``), or a folder
    that takes no new files (``/proc``). DuckDB's "Not a directory" / "No such file" read as a damaged file
    ("restore it from a copy"), which there is none of."""
    if "not a directory" in text.lower():
        blocker = file_in_the_way(path)
        if blocker is not None:
            return UserError(f"cannot open {path}: {blocker} is a file, not a folder", IN_A_FOLDER)
    if "no such file or directory" in text.lower() and not path.exists() and path.parent.is_dir():
        return UserError(f"cannot create {path}: its folder {path.parent} takes no new files ({text})",
                         "give a path in a folder you can write to")
    return None


def storage_error(path: str | Path, exc: BaseException) -> UserError | None:
    """A UserError naming ``path`` when ``exc`` is a full disk or another I/O failure, else None."""
    match = _STORAGE_MESSAGE.search(str(exc))
    if match is None and not isinstance(exc, OSError):
        return None
    if (match is None and exc.errno in (errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR)
            and exc.filename is not None and str(exc.filename) != str(path)):
        return None  # another path (the file being read) cannot be used: the CLI names that one, not the DB
    if isinstance(exc, PermissionError) or (match is None and _DENIED_MESSAGE.search(str(exc))):
        return _denied(path)
    reason = match.group(0).lower() if match else _first_line(exc)
    return UserError(f"cannot write {path}: {reason}",
                     "free space on that filesystem, or write somewhere else, and run the command again")


def rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back after a failed statement without hiding why it failed.

    DuckDB ends the transaction itself when a COMMIT fails ("cannot rollback - no transaction is active")
    and invalidates the whole database after a fatal write error; either way the first error is the one
    to report, so a failing ROLLBACK is ignored here.
    """
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass

"""Numbered migrations, the schema version, and opening databases safely.

Writers (the harness, importers) call :func:`connect_writable`, which first classifies the file without
writing to it (refusing another application's database, a newer schema and, when asked, an older one) and
then migrates a new or older database forward. Readers (every analysis command) call :func:`connect_readonly`, which opens the file read-only and
refuses a database whose schema is older or newer than this package understands.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from causalsre.errors import UserError
from causalsre.safeio import regular_file
from causalsre.telemetry.failures import not_duckdb
from causalsre.telemetry.failures import open_error as _open_error
from causalsre.telemetry.failures import storage_error
# The migrations and the classification of a file live in two smaller modules; every name stays importable
# from here (the harness and the importers import this module only).
from causalsre.telemetry.migrations import (  # noqa: F401
    MIGRATIONS, MIGRATIONS_TABLE, REQUIRED_TABLES, REQUIRED_VIEWS, SCHEMA_VERSION, Migration, _newer_schema_error,
    load_migrations, migrate, schema_version,
)
from causalsre.telemetry.dbstate import (  # noqa: F401
    DatabaseState, check_writable, database_state, inspect_database, missing_objects, schema_damage,
)


def connect_writable(path: str | Path, *, create: bool = True, upgrade: bool = True) -> duckdb.DuckDBPyConnection:
    """Open (or create) a telemetry database for writing and migrate it to the current schema.

    The file is classified read-only first: one of another application (tables but no causalsre
    ``schema_migrations``), one of a newer schema, and, with ``upgrade=False``, one of an older schema are
    refused before a byte is written. A file this call created is removed again if migrating it fails.
    """
    path = Path(path)
    if not create and not path.exists():
        raise UserError(f"database {path} does not exist", "create it with `causalsre db init --db PATH`")
    if path.exists() and path.is_dir():
        raise UserError(f"{path} is a directory, not a database file", "give the path of a .duckdb file")
    if not path.parent.exists():
        raise UserError(f"folder {path.parent} does not exist", "create it first or choose another path")
    state = inspect_database(path)
    check_writable(path, state, upgrade=upgrade)
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise _open_error(path, exc) from None
    try:
        migrate(con)
    except Exception as exc:
        con.close()
        if state is None:
            remove_database(path)
        failure = storage_error(path, exc)
        if failure is not None:
            raise failure from None
        raise
    return con


def remove_database(path: str | Path) -> None:
    """Delete a database file and its WAL (only ever called on a file the caller itself created)."""
    for leftover in (Path(path), Path(f"{path}.wal")):
        leftover.unlink(missing_ok=True)


def first_row(result) -> tuple | None:
    """The first row of an executed query, or None; the result is read to its end.

    DuckDB 2 keeps a result that ``fetchone()`` left unfinished open on the connection and then refuses
    ``register()`` and ``sql()`` on it ("connection has an unfinished result"), so a lookup must not leave one.
    """
    rows = result.fetchall()
    return rows[0] if rows else None


def connect_readonly(path: str | Path, *, check_version: bool = True) -> duckdb.DuckDBPyConnection:
    """Open a telemetry database read-only, checking that its schema version is the one we read."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"database {path} does not exist", "check the path, or build one with `causalsre demo`")
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a database file", "give the path of a .duckdb file")
    regular_file(path, what="database")  # a FIFO would block DuckDB's open forever
    refused = not_duckdb(path)  # a SQLite file made DuckDB fetch its sqlite extension from the internet
    if refused is not None:
        raise refused
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise _open_error(path, exc) from None
    if check_version:
        try:
            state = database_state(con)
        except duckdb.Error as exc:
            con.close()
            raise _open_error(path, exc) from None
        found = state.version
        if state.foreign_reason is not None or found == 0:
            con.close()
            raise UserError(
                f"{path} is not a causalsre telemetry database ({state.foreign_reason or f'no {MIGRATIONS_TABLE} table'})",
                "create one with `causalsre db init --db PATH` or import data with `causalsre db import`",
            )
        if found > SCHEMA_VERSION:
            con.close()
            raise _newer_schema_error(found)
        if found < SCHEMA_VERSION:
            con.close()
            raise UserError(
                f"database schema version {found} is older than this causalsre reads ({SCHEMA_VERSION})",
                f"run `causalsre db migrate --db {path}` first",
            )
        missing = missing_objects(con)
        if missing:
            con.close()
            raise UserError(
                f"database {path} is damaged: missing table or view {', '.join(missing)}",
                "restore it from a copy, or rebuild it from the original telemetry",
            )
        wrong = schema_damage(con)  # a table of the right name re-created by hand with other columns
        if wrong:
            con.close()
            raise UserError(f"database {path} is damaged: {'; '.join(wrong[:5])}",
                            "restore it from a copy, or rebuild it from the original telemetry")
    return con

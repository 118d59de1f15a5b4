"""What a database file holds, found without writing to it: another tool's file, a newer or older schema, or
missing tables and columns of the wrong type (a table re-created by hand).

Part of :mod:`causalsre.telemetry.schema`, which re-exports every name here; import from there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import duckdb

from causalsre.errors import UserError
from causalsre.safeio import regular_file
from causalsre.telemetry.failures import not_duckdb
from causalsre.telemetry.failures import open_error as _open_error
from causalsre.telemetry.migrations import (
    MIGRATIONS, MIGRATIONS_TABLE, REQUIRED_TABLES, REQUIRED_VIEWS, SCHEMA_VERSION, _newer_schema_error, migrate,
)


@dataclass(frozen=True, slots=True)
class DatabaseState:
    """What a database file holds, found without writing to it."""

    version: int                 # highest causalsre migration applied; 0 when none
    other_objects: tuple[str, ...]  # tables and views that are not schema_migrations
    foreign_reason: str | None   # why the file is not a causalsre database, or None
    damage: tuple[str, ...] = ()  # at the current version: missing tables/views, columns of the wrong type


def inspect_database(path: str | Path) -> DatabaseState | None:
    """Classify an existing database file read-only; None when there is no file yet."""
    path = Path(path)
    if not path.exists():
        return None
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a database file", "give the path of a .duckdb file")
    regular_file(path, what="database")  # a FIFO would block DuckDB's open forever
    refused = not_duckdb(path)  # a SQLite file made DuckDB fetch its sqlite extension from the internet
    if refused is not None:
        raise refused
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.ConnectionException:
        # This process already holds the file for writing (same database, other configuration): read the
        # state through a connection like the one it holds, which writes nothing either.
        con = duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise _open_error(path, exc) from None
    try:
        state = database_state(con)
        # Only writers ask (inspect_database): an import must not add rows to a damaged file.
        return replace(state, damage=tuple(schema_damage(con))) if state.version == SCHEMA_VERSION else state
    except duckdb.Error as exc:
        raise _open_error(path, exc) from None
    finally:
        con.close()


def database_state(con: duckdb.DuckDBPyConnection) -> DatabaseState:
    names = [row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema NOT IN "
        "('information_schema', 'pg_catalog') ORDER BY table_name").fetchall()]
    others = tuple(n for n in names if n != MIGRATIONS_TABLE)
    if MIGRATIONS_TABLE not in names:
        if not others:
            return DatabaseState(0, others, None)
        ours = sorted(set(others) & set(REQUIRED_TABLES + REQUIRED_VIEWS))
        clash = f"; its tables {', '.join(ours)} collide with causalsre's" if ours else ""
        return DatabaseState(0, others, f"it holds other tables ({_listed(others)}) and no "
                                        f"{MIGRATIONS_TABLE} table{clash}")
    columns = [row[0] for row in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main' "
        "ORDER BY ordinal_position", [MIGRATIONS_TABLE]).fetchall()]
    if columns != ["version", "name", "applied_at"]:
        return DatabaseState(0, others, f"its {MIGRATIONS_TABLE} table is another tool's "
                                        f"(columns {', '.join(columns)})")
    ours_by_version = {m.version: m.name for m in MIGRATIONS}
    rows = con.execute(f"SELECT version, name FROM {MIGRATIONS_TABLE} ORDER BY version").fetchall()
    for version, name in rows:
        if version in ours_by_version and name != ours_by_version[version]:
            return DatabaseState(0, others, f"its {MIGRATIONS_TABLE} records migration {version} as "
                                            f"{name!r}, not causalsre's {ours_by_version[version]!r}")
    version = max((int(r[0]) for r in rows), default=0)
    if version == 0 and others:  # e.g. left behind by a failed first migration of an older causalsre
        return DatabaseState(0, others, f"it holds other tables ({_listed(others)}) and no applied migration")
    return DatabaseState(version, others, None)


def _listed(names: tuple[str, ...]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def check_writable(path: Path, state: DatabaseState | None, *, upgrade: bool) -> None:
    """Refuse, before anything is written, a file we must not write into."""
    if state is None:
        return
    if state.foreign_reason is not None:
        raise UserError(f"{path} is not a causalsre telemetry database: {state.foreign_reason}",
                        "give a new path, or one made by causalsre (`causalsre db init --db NEW.duckdb`)")
    if state.version > SCHEMA_VERSION:
        raise _newer_schema_error(state.version)
    if state.damage:
        raise UserError(f"database {path} is damaged: {'; '.join(state.damage)}",
                        "restore it from a copy, or write into a new database")
    if 0 < state.version < SCHEMA_VERSION and not upgrade:
        raise UserError(
            f"database {path} is at schema version {state.version}, older than this causalsre writes "
            f"({SCHEMA_VERSION})",
            f"run `causalsre db migrate --db {path}` first (keep a copy if an older causalsre still reads it)")


@lru_cache(maxsize=1)
def _expected_columns() -> dict[str, dict[str, str]]:
    con = duckdb.connect(":memory:")
    migrate(con)
    try:
        return _columns(con)
    finally:
        con.close()


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    table: dict[str, dict[str, str]] = {}
    for name, column, kind in con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main'").fetchall():
        if name in REQUIRED_TABLES or name in REQUIRED_VIEWS:  # a view replaced by hand is damage too
            table.setdefault(name, {})[column] = kind
    return table


def schema_damage(con: duckdb.DuckDBPyConnection) -> list[str]:
    """What a database at the current version lacks or holds wrongly: missing tables and views, and required
    columns that are gone or of another type than the migrations make (a table re-created by hand)."""
    problems = [f"missing table or view {name}" for name in missing_objects(con)]
    found = _columns(con)
    for table, expected in _expected_columns().items():
        for column, kind in expected.items():
            actual = found.get(table, {}).get(column)
            if table in found and actual != kind:
                problems.append(f"{table}.{column} is {actual or 'missing'}, not {kind}")
    return problems


def missing_objects(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Required tables and views that the database lacks."""
    present = {row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
    return [name for name in REQUIRED_TABLES + REQUIRED_VIEWS if name not in present]

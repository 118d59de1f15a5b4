"""Numbered migrations, the schema version, and opening databases safely.

Writers (the harness, importers) call :func:`connect_writable`, which first classifies the file without
writing to it (refusing another application's database, a newer schema and, when asked, an older one) and
then migrates a new or older database forward. Readers (every analysis command) call :func:`connect_readonly`, which opens the file read-only and
refuses a database whose schema is older or newer than this package understands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

import duckdb

from causalsre.errors import UserError
from causalsre.safeio import regular_file
from causalsre.telemetry.failures import open_error as _open_error
from causalsre.telemetry.failures import rollback_quietly, storage_error

MIGRATIONS_TABLE = "schema_migrations"
REQUIRED_TABLES = ("runs", "requests", "tokens", "steps", "events", "faults", "phases", "run_settings",
                   "metric_samples", "operator_events", "control_actions")
REQUIRED_VIEWS = ("request_metrics", "inter_token_latency", "step_metrics", "settings_timeline")
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """All migrations shipped with the package, in version order."""
    found = []
    for entry in resources.files("causalsre.telemetry").joinpath("sql").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise RuntimeError(f"migrations are not numbered 1..N: found {migration.version} at {expected}")
    return found


MIGRATIONS = load_migrations()
SCHEMA_VERSION = MIGRATIONS[-1].version


def _has_migrations_table(con: duckdb.DuckDBPyConnection) -> bool:
    # fetchall, not fetchone: DuckDB 2 keeps a half-read result open, and the connection then refuses
    # register() (a caller of connect_writable that inserts a DataFrame into an existing database).
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'",
        [MIGRATIONS_TABLE],
    ).fetchall()
    return bool(rows and rows[0][0])


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest migration applied to this database; 0 for a database with none."""
    if not _has_migrations_table(con):
        return 0
    rows = con.execute(f"SELECT max(version) FROM {MIGRATIONS_TABLE}").fetchall()  # fetchall: see above
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def migrate(con: duckdb.DuckDBPyConnection, target: int = SCHEMA_VERSION) -> list[int]:
    """Apply the migrations after the database's version up to ``target``; returns those applied.

    Each migration runs in its own transaction together with its row in the migrations table (the first
    one also creates that table), so a failure leaves the database at the previous version, with no
    ``schema_migrations`` table left behind in a file the first migration could not be applied to.
    """
    current = schema_version(con)
    if current > SCHEMA_VERSION:
        raise _newer_schema_error(current)
    needs_table = not _has_migrations_table(con)
    applied = []
    for migration in MIGRATIONS:
        if current < migration.version <= target:
            con.execute("BEGIN TRANSACTION")
            try:
                if needs_table:
                    con.execute(
                        f"CREATE TABLE {MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                        "applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
                    )
                con.execute(migration.sql)
                con.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES (?, ?)",
                    [migration.version, migration.name],
                )
                con.execute("COMMIT")
            except Exception:
                rollback_quietly(con)
                raise
            needs_table = False
            applied.append(migration.version)
    return applied


def _newer_schema_error(found: int) -> UserError:
    return UserError(
        f"database schema version {found} is newer than this causalsre supports ({SCHEMA_VERSION})",
        "upgrade causalsre to read it",
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
    return con


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
        if name in REQUIRED_TABLES:
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

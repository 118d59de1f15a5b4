"""Numbered migrations, the schema version, and opening databases safely.

Writers (the harness, importers) call :func:`connect_writable`, which migrates a new or older database
forward. Readers (every analysis command) call :func:`connect_readonly`, which opens the file read-only and
refuses a database whose schema is older or newer than this package understands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb

from causalsre.errors import UserError

MIGRATIONS_TABLE = "schema_migrations"
REQUIRED_TABLES = ("runs", "requests", "tokens", "steps", "events", "faults", "phases", "run_settings",
                   "metric_samples", "operator_events")
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
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'",
        [MIGRATIONS_TABLE],
    ).fetchone()
    return bool(row and row[0])


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest migration applied to this database; 0 for a database with none."""
    if not _has_migrations_table(con):
        return 0
    row = con.execute(f"SELECT max(version) FROM {MIGRATIONS_TABLE}").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(con: duckdb.DuckDBPyConnection, target: int = SCHEMA_VERSION) -> list[int]:
    """Apply the migrations after the database's version up to ``target``; returns those applied.

    Each migration runs in its own transaction together with its row in the migrations table, so a
    failure leaves the database at the previous version.
    """
    current = schema_version(con)
    if current > SCHEMA_VERSION:
        raise _newer_schema_error(current)
    if current == 0 and not _has_migrations_table(con):
        con.execute(
            f"CREATE TABLE {MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
            "applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
        )
    applied = []
    for migration in MIGRATIONS:
        if current < migration.version <= target:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(migration.sql)
                con.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES (?, ?)",
                    [migration.version, migration.name],
                )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            applied.append(migration.version)
    return applied


def _newer_schema_error(found: int) -> UserError:
    return UserError(
        f"database schema version {found} is newer than this causalsre supports ({SCHEMA_VERSION})",
        "upgrade causalsre to read it",
    )


def _open_error(path: Path, exc: Exception) -> UserError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "lock" in text.lower():
        return UserError(
            f"database {path} is locked by another process ({text})",
            "wait for the writer to finish, or copy the file and analyse the copy",
        )
    return UserError(f"cannot open {path} as a DuckDB database ({text})", "check the path and file type")


def connect_writable(path: str | Path, *, create: bool = True) -> duckdb.DuckDBPyConnection:
    """Open (or create) a telemetry database for writing and migrate it to the current schema."""
    path = Path(path)
    if not create and not path.exists():
        raise UserError(f"database {path} does not exist", "create it with `causalsre db init PATH`")
    if path.exists() and path.is_dir():
        raise UserError(f"{path} is a directory, not a database file", "give the path of a .duckdb file")
    if not path.parent.exists():
        raise UserError(f"folder {path.parent} does not exist", "create it first or choose another path")
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise _open_error(path, exc) from None
    try:
        migrate(con)
    except Exception:
        con.close()
        raise
    return con


def connect_readonly(path: str | Path, *, check_version: bool = True) -> duckdb.DuckDBPyConnection:
    """Open a telemetry database read-only, checking that its schema version is the one we read."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"database {path} does not exist", "check the path, or build one with `causalsre demo`")
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a database file", "give the path of a .duckdb file")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise _open_error(path, exc) from None
    if check_version:
        try:
            found = schema_version(con)
        except duckdb.Error as exc:
            con.close()
            raise _open_error(path, exc) from None
        if found == 0:
            con.close()
            raise UserError(
                f"{path} is not a causalsre telemetry database (no {MIGRATIONS_TABLE} table)",
                "create one with `causalsre db init PATH` or import data with `causalsre db import`",
            )
        if found > SCHEMA_VERSION:
            con.close()
            raise _newer_schema_error(found)
        if found < SCHEMA_VERSION:
            con.close()
            raise UserError(
                f"database schema version {found} is older than this causalsre reads ({SCHEMA_VERSION})",
                f"run `causalsre db migrate {path}` first",
            )
        missing = missing_objects(con)
        if missing:
            con.close()
            raise UserError(
                f"database {path} is damaged: missing table or view {', '.join(missing)}",
                "restore it from a copy, or rebuild it from the original telemetry",
            )
    return con


def missing_objects(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Required tables and views that the database lacks."""
    present = {row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
    return [name for name in REQUIRED_TABLES + REQUIRED_VIEWS if name not in present]

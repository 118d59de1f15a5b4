"""The numbered migrations (``causalsre/telemetry/sql/NNNN_name.sql``), the schema version, and applying them.

Part of :mod:`causalsre.telemetry.schema`, which re-exports every name here; import from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import duckdb

from causalsre.errors import UserError
from causalsre.telemetry.failures import rollback_quietly

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

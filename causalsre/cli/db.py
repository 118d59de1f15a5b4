"""`causalsre db ...`: create, inspect, check, migrate, export and import telemetry databases."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from causalsre.cli import db_import
from causalsre.cli.options import INPUT_FILE, OutputFolder, db_option, echo_json, json_option, legacy_path, one_db
from causalsre.errors import UserError
from causalsre.telemetry import first_row

# `db *` takes the database as --db FILE like every command; the old positional PATH still works (hidden).
_DB = db_option(required=False, name="db_opt")


@click.group()
def db() -> None:
    """Create, inspect, check, migrate, export and import telemetry databases."""


@db.command("init")
@legacy_path()
@_DB
@json_option('Print {"db", "schema_version", "created"} as JSON.')
def init(path: str | None, db_opt: str | None, as_json: bool) -> None:
    """Create a telemetry database (or migrate an existing one) to the current schema.

    Example: causalsre db init --db telemetry.duckdb
    """
    from causalsre.telemetry import SCHEMA_VERSION, connect_writable

    path = one_db(db_opt, path, "db init")
    created = not Path(path).exists()
    connect_writable(path).close()
    if as_json:
        echo_json({"db": path, "schema_version": SCHEMA_VERSION, "created": created})
        return
    click.echo(f"{path}: schema version {SCHEMA_VERSION}")


@db.command("migrate")
@legacy_path()
@_DB
@json_option('Print {"db", "from_version", "schema_version", "migrated"} as JSON.')
def migrate_command(path: str | None, db_opt: str | None, as_json: bool) -> None:
    """Migrate an existing database forward to the current schema version.

    The only command that upgrades an older schema in place; another application's database is refused
    unchanged.

    Example: causalsre db migrate --db old.duckdb
    """
    from causalsre.telemetry.schema import SCHEMA_VERSION, connect_writable, inspect_database

    path = one_db(db_opt, path, "db migrate")
    if not Path(path).exists():
        raise UserError(f"database {path} does not exist", "create one with `causalsre db init --db FILE`")
    # Classified read-only first: another application's database (or one of a newer schema) is refused
    # before anything is written; this is the one command that upgrades an older schema in place.
    state = inspect_database(path)
    before = state.version if state is not None else 0
    connect_writable(path, create=False, upgrade=True).close()
    applied = before < SCHEMA_VERSION
    if as_json:
        echo_json({"db": path, "from_version": before, "schema_version": SCHEMA_VERSION, "migrated": applied})
    elif applied:
        click.echo(f"{path}: migrated from schema version {before} to {SCHEMA_VERSION}")
    else:
        click.echo(f"{path}: already at schema version {SCHEMA_VERSION}")


@db.command("info")
@legacy_path()
@_DB
@json_option()
def info(path: str | None, db_opt: str | None, as_json: bool) -> None:
    """Runs, requests, time span and schema version of the database.

    Example: causalsre db info --db telemetry.duckdb --json
    """
    from causalsre.telemetry import connect_readonly
    from causalsre.telemetry.inspect import database_info

    path = one_db(db_opt, path, "db info")
    con = connect_readonly(path)
    try:
        summary = _reading(path, database_info, con)
    finally:
        con.close()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{path}: schema version {summary['schema_version']}")
    click.echo(f"  runs {summary['runs']}, requests {summary['requests']}, tokens {summary['tokens']}, "
               f"steps {summary['steps']}, faults {summary['faults']}")
    click.echo(f"  arrivals from {summary['first_arrival']} to {summary['last_arrival']}")
    for run in summary["run_list"]:
        click.echo(f"  {run['run_id']}  {run['kind']:<18} {run['status']:<10} {run['requests']:>8} requests "
                   f"({run['failed']} failed)  {run['name'] or ''}")


@db.command("check")
@legacy_path()
@_DB
@json_option()
def check(path: str | None, db_opt: str | None, as_json: bool) -> None:
    """Check schema version, required tables and data invariants; exit 1 when a problem is found.

    Example: causalsre db check --db telemetry.duckdb
    """
    from causalsre.telemetry import connect_readonly
    from causalsre.telemetry.inspect import check_database

    path = one_db(db_opt, path, "db check")
    con = connect_readonly(path, check_version=False)
    try:
        result = _reading(path, check_database, con)
    finally:
        con.close()
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        for problem in result.problems:
            click.echo(f"problem: {problem}")
        for warning in result.warnings:
            click.echo(f"warning: {warning}")
        click.echo(f"{path}: {'ok' if result.ok else 'FAILED'} ({result.checks_run} checks)")
    if not result.ok:
        raise click.exceptions.Exit(1)


def _reading(path: str, read, con):
    """``read(con)``; a file whose header opens but whose blocks are cut off or damaged is one line, not a traceback."""
    import duckdb

    from causalsre.telemetry.failures import open_error

    try:
        return read(con)
    except duckdb.Error as exc:
        damage = _view_damage(con)
        if damage:  # a view re-created with other columns: name it, not "not a readable DuckDB database"
            raise UserError(f"database {path} is damaged: {'; '.join(damage[:5])}",
                            "restore it from a copy, or rebuild it from the original telemetry") from None
        raise open_error(Path(path), exc) from None


def _view_damage(con) -> list[str]:
    """Columns of the schema's views that the database's views lack (the readers' check names the tables'
    columns; a view replaced by hand, e.g. ``CREATE OR REPLACE VIEW request_metrics AS ...``, passed it)."""
    import duckdb

    from causalsre.telemetry.migrations import REQUIRED_VIEWS, migrate

    query = ("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main' "
             "AND list_contains(?, table_name)")
    fresh = duckdb.connect(":memory:")
    try:
        migrate(fresh)
        expected = fresh.execute(query, [list(REQUIRED_VIEWS)]).fetchall()
    finally:
        fresh.close()
    try:
        found = set(con.execute(query, [list(REQUIRED_VIEWS)]).fetchall())
    except duckdb.Error:
        return []
    lacking: dict[str, list[str]] = {}
    for view, column in expected:
        if (view, column) not in found:
            lacking.setdefault(view, []).append(column)
    return [f"view {view} has no column {', '.join(columns[:6])}" + (f" (and {len(columns) - 6} more)"
            if len(columns) > 6 else "") for view, columns in lacking.items()]


@db.command("export")
@legacy_path()
@_DB
@click.option("--parquet", "out_dir", required=True, type=OutputFolder(),
              help="Folder to write <table>/run_id=<id>/part-0.parquet into.")
@click.option("--overwrite", is_flag=True, help="Write into a non-empty folder.")
@json_option('Print {"db", "parquet", "rows": {table: count}} as JSON.')
def export(path: str | None, db_opt: str | None, out_dir: str, overwrite: bool, as_json: bool) -> None:
    """Export every table (and request_metrics) to Hive-partitioned Parquet for Spark, Trino or DuckDB.

    Example: causalsre db export --db telemetry.duckdb --parquet out/parquet
    """
    from causalsre.telemetry import connect_readonly
    from causalsre.telemetry.export import export_parquet
    from causalsre.telemetry.failures import storage_error

    path = one_db(db_opt, path, "db export")
    con = connect_readonly(path)
    created = not Path(out_dir).exists()
    try:
        written = export_parquet(con, out_dir, overwrite=overwrite)
    except BaseException as exc:  # also Ctrl-C: a partial export left behind reads as a whole one
        if created:  # the half-written folder is ours: remove it rather than leave a partial export
            shutil.rmtree(out_dir, ignore_errors=True)
        failure = storage_error(out_dir, exc) if isinstance(exc, Exception) else None
        if failure is None:
            raise
        raise failure from None
    finally:
        con.close()
    if as_json:
        echo_json({"db": path, "parquet": out_dir, "rows": dict(written)})
        return
    rows = ", ".join(f"{table} {count}" for table, count in written.items() if count)
    click.echo(f"wrote {out_dir}: {rows or 'no rows'}")


@db.group("import")
def import_group() -> None:
    """Import your own telemetry (each import becomes one run)."""


def _close_quietly(con) -> None:
    """Close a connection that a fatal write error may have invalidated (closing it then raises)."""
    import duckdb

    try:
        con.close()
    except duckdb.Error:
        pass


def _import(file: str, db_path: str, name: str | None, importer_name: str, as_json: bool = False) -> None:
    from causalsre.safeio import REQUEST_COLUMNS, check_table
    from causalsre.telemetry import connect_writable, imports
    from causalsre.telemetry.failures import storage_error
    from causalsre.telemetry.schema import remove_database

    importer = getattr(imports, importer_name)
    created = not Path(db_path).exists()
    # upgrade=False: an older database is refused (before any write), not migrated as a side effect.
    con = connect_writable(db_path, upgrade=False)
    try:
        if Path(file).exists():  # a missing file is the importer's one line (after the database's checks)
            check_table(file, what="file", max_columns=REQUEST_COLUMNS)  # 200,000 columns ran for minutes
        run_id = importer(con, file, name=name)
        count = first_row(con.execute("SELECT count(*) FROM requests WHERE run_id = ?", [run_id]))[0]
        kind = first_row(con.execute("SELECT kind FROM runs WHERE run_id = ?", [run_id]))[0]
    except Exception as exc:
        _close_quietly(con)
        if created:  # a failed import into a new path leaves no empty database behind
            remove_database(db_path)
        failure = storage_error(db_path, exc)  # a full disk: one line naming the file, not a traceback
        if failure is not None:
            raise failure from None
        raise
    _close_quietly(con)
    if as_json:  # the same shape as the other importers' --json
        echo_json({"db": db_path, "runs": [{"run_id": run_id, "kind": kind, "attached": False, "requests": count}]})
        return
    click.echo(f"imported {count} requests from {file} into {db_path} as run {run_id}")


@import_group.command("requests")
@click.argument("file", type=INPUT_FILE)
@db_option("Telemetry database (created if missing).")
@click.option("--name", default=None, help="Label for the run (default: the file name).")
@json_option("Print the new run id and row count as JSON.")
def import_requests(file: str, db_path: str, name: str | None, as_json: bool) -> None:
    """Import a per-request CSV or Parquet file.

    Columns: arrival_time (ISO 8601 or epoch seconds, 1970 to 2200), ttft_s, e2e_s, prompt_tokens,
    output_tokens, status (ok, or anything else = failed); optional request_id (kept as given: unique
    integers), tpot_s, tenant, priority, target_output_tokens, finish_reason, num_preemptions; any further
    column is kept as a request attribute (a factor such as model or gpu_type). CSV cells are text: only an
    empty cell is missing (NA or null stay text); counts must be whole numbers and latencies finite, 0 s to
    a week. A bad cell, another application's database or an older schema is refused, nothing written.

    Example: causalsre db import requests prod.csv --db telemetry.duckdb
    """
    _import(file, db_path, name, "import_requests_file", as_json)


# Importers for what a deployment has (causalsre/cli/db_import.py), one line each.
import_group.add_command(db_import.vllm_bench)
import_group.add_command(db_import.sglang_bench)
import_group.add_command(db_import.prometheus)
import_group.add_command(db_import.vllm_log)
import_group.add_command(db_import.otel)
import_group.add_command(db_import.guidellm)
import_group.add_command(db_import.events)
import_group.add_command(db_import.table)

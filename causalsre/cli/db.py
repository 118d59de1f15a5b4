"""`causalsre db ...`: create, inspect, check, export and import telemetry databases."""

from __future__ import annotations

import click


@click.group()
def db() -> None:
    """Create, inspect, check, migrate, export and import telemetry databases."""


@db.command("init")
@click.argument("path", type=click.Path(dir_okay=False))
def init(path: str) -> None:
    """Create a telemetry database at PATH (or migrate an existing one) to the current schema.

    Example: causalsre db init telemetry.duckdb
    """
    from causalsre.telemetry import SCHEMA_VERSION, connect_writable

    con = connect_writable(path)
    con.close()
    click.echo(f"{path}: schema version {SCHEMA_VERSION}")

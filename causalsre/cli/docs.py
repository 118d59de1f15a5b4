"""`causalsre docs ...`: print the generated reference pages (docs/cli.md, docs/telemetry.md)."""

from __future__ import annotations

import click


@click.group()
def docs() -> None:
    """Print generated reference pages (checked against docs/ by the tests)."""


@docs.command("cli")
def cli_reference() -> None:
    """Print the CLI reference (docs/cli.md) generated from every command's --help.

    Example: causalsre docs cli > docs/cli.md
    """
    from causalsre.cli.reference import render

    click.echo(render(), nl=False)


@docs.command("schema")
def schema_reference() -> None:
    """Print the telemetry schema reference (docs/telemetry.md) generated from the migrations.

    Example: causalsre docs schema > docs/telemetry.md
    """
    from causalsre.telemetry.schema_docs import render

    click.echo(render(), nl=False)

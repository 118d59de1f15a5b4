"""``causalsre postmortem``: why the error budget burned between a baseline and an incident window."""

from __future__ import annotations

import click


@click.command("postmortem")
def postmortem():
    """Attribute the change in the bad-event rate between two windows (being built)."""
    raise click.UsageError("postmortem is not available yet")

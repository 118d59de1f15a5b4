"""``causalsre graph``: check, learn and draw the causal graph."""

from __future__ import annotations

import click


@click.group("graph")
def graph() -> None:
    """Check the causal graph against data, learn one, or draw it."""

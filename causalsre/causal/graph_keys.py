"""The layout a graph spec may have: its keys (top level, per node, per edge) and its version.

Part of :mod:`causalsre.causal.graph`'s validation. Unknown keys were ignored, so a typo changed the graph
without a word: ``edge:`` for ``edges:`` loaded a graph with no edges, ``actionble: true`` a node that is not
actionable, ``{form: a, to: b}`` an edge from "None". Each is now refused naming the key meant.
"""

from __future__ import annotations

import difflib
from typing import Any

from causalsre.errors import UserError
from causalsre.safeio import brief

VERSION = 1
TOP_KEYS = ("version", "target", "nodes", "edges", "excluded")
NODE_KEYS = ("role", "family", "type", "actionable", "doc", "factor", "trailing")
EDGE_KEYS = ("from", "to", "why", "sign")
_LAYOUT = "see models/serving.yaml for the layout"


def check_layout(raw: dict[str, Any], source: str) -> None:
    """Top-level keys, ``version`` (absent or 1) and ``edges`` (absent, null or a list)."""
    _no_unknown_keys(raw, TOP_KEYS, f"graph spec {source}")
    version = raw.get("version", VERSION)
    if isinstance(version, bool) or version != VERSION:
        raise UserError(f"graph spec {source} has version {brief(version)}; this causalsre reads version {VERSION}",
                        f"write version: {VERSION}, or leave it out; {_LAYOUT}")
    edges = raw.get("edges")
    if edges is not None and not isinstance(edges, list):
        # A mapping or a string was walked key by key or letter by letter ("edge 'm' is not {from, to, why}").
        raise UserError(f"graph spec {source}: 'edges' is {brief(edges)}, not a list",
                        "write edges: [{from: CAUSE, to: EFFECT, why: ...}, ...]")


def check_node_keys(name: str, spec: dict[str, Any], source: str) -> None:
    _no_unknown_keys(spec, NODE_KEYS, f"graph spec {source}: node '{name}'")


def check_edge_keys(item: dict[str, Any], source: str) -> None:
    _no_unknown_keys(item, EDGE_KEYS, f"graph spec {source}: edge {brief(item.get('from'))} -> {brief(item.get('to'))}")


def _no_unknown_keys(mapping: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UserError(f"{where} has an unknown key {brief(key)}",
                            f"{hint}the keys are {', '.join(allowed)}")

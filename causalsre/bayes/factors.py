"""Which graph factors the burn model adjusts for, and how they are encoded.

For the *total* effect of an actionable knob on bad events the model must condition on the knob's
non-descendants (the backdoor set) and never on its descendants (mediators such as queue depth or KV
utilisation would block the very path the intervention acts through). So the factors are the graph nodes
present in the analysis table that are not descendants of any actionable node and are not outcomes.
Run, phase and tenant become pooled random intercepts instead of fixed factors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx
import pandas as pd

from causalsre.errors import UserError

OUTCOME = "is_bad"
GROUP_COLUMNS = ("run_id", "phase", "tenant")
_EXCLUDED_ROLES = {"mediator", "engine_state", "outcome"}
_IDENTIFIERS = {"run_id", "request_id", "arrival_ts", "phase", OUTCOME}


@dataclass(frozen=True, slots=True)
class NodeInfo:
    role: str
    actionable: bool
    type: str | None = None


@dataclass(frozen=True, slots=True)
class GraphView:
    """The parts of a causal graph the Bayesian and what-if code needs, whatever object it came from."""

    digraph: nx.DiGraph
    nodes: dict[str, NodeInfo]

    @property
    def actionable(self) -> list[str]:
        return [name for name, info in self.nodes.items() if info.actionable]


def graph_view(graph: Any) -> GraphView:
    """Accept a causal-package GraphSpec (``.nodes`` + ``.to_networkx()``) or a networkx DiGraph whose nodes
    carry ``role`` / ``actionable`` / ``type`` attributes."""
    if isinstance(graph, nx.DiGraph):
        digraph = graph
        nodes = {
            name: NodeInfo(str(data.get("role", "")), bool(data.get("actionable", False)), data.get("type"))
            for name, data in graph.nodes(data=True)
        }
        return GraphView(digraph, nodes)
    # The what-if models take each cause by its own node: a node that only measures another factor (the offered
    # rate, the recent prompts' mean length; ``Node.factor``) would enter their additive predictors twice.
    aliases = [name for name, node in graph.nodes.items() if getattr(node, "factor", "") not in ("", name)]
    if aliases and hasattr(graph, "restricted_to"):
        graph = graph.restricted_to([name for name in graph.nodes if name not in aliases])
    digraph = graph.to_networkx()
    nodes = {}
    for name, node in graph.nodes.items():
        nodes[name] = NodeInfo(
            str(getattr(node, "role", "") or ""), bool(getattr(node, "actionable", False)), getattr(node, "type", None)
        )
    return GraphView(digraph, nodes)


def adjustment_factors(view: GraphView, table: pd.DataFrame) -> list[str]:
    """Graph factors in ``table`` to put in the burn model: non-descendants of every actionable node."""
    present = [n for n in view.nodes if n in table.columns and n not in _IDENTIFIERS]
    descendants: set[str] = set()
    for knob in view.actionable:
        if knob in view.digraph:
            descendants |= nx.descendants(view.digraph, knob)
    factors = [
        n for n in present
        if n not in descendants and view.nodes[n].role not in _EXCLUDED_ROLES and n not in GROUP_COLUMNS
    ]
    if not factors:
        raise UserError(
            "no graph factor (knob, hardware or workload node) is present in the analysis table",
            "check that the graph's node names match the telemetry columns",
        )
    return factors


def actionable_in_table(view: GraphView, table: pd.DataFrame) -> list[str]:
    return [n for n in view.actionable if n in table.columns]


def _varies(series: pd.Series) -> bool:
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    return bool(numeric and series.dropna().nunique() >= 2)


def interaction_pairs(view: GraphView, factors: list[str], table: pd.DataFrame) -> list[list[str]]:
    """(knob, factor) pairs whose effects may interact, read off the graph, not chosen per data set.

    A pair qualifies when the knob is actionable, the other factor is not, both are numeric and vary in
    ``table``, and they are co-parents: some node has both as direct causes (queue depth is caused by
    max_num_seqs *and* arrival_rate, so how much max_num_seqs matters depends on the arrival rate). The
    model's linear logit cannot express that otherwise, which is what made a knob that only breaks the
    service under some load look harmless or harmful everywhere."""
    actionable = set(view.actionable)
    pairs = []
    for knob in factors:
        if knob not in actionable or knob not in view.digraph or not _varies(table[knob]):
            continue
        children = set(view.digraph.successors(knob))
        for other in factors:
            if other in actionable or other not in view.digraph or not _varies(table[other]):
                continue
            if children & set(view.digraph.successors(other)):
                pairs.append([knob, other])
    return pairs

"""The causal graph spec (``models/serving.yaml``): loading, validation and conversion to networkx.

A spec lists nodes (role, family, type, actionable) and edges (cause, effect, why). The loader rejects
unknown roles/families/types, edges naming unknown nodes, cycles, and edges that break the tier rule (knobs,
hardware and workload are never caused by engine state or outcomes; engine state is never caused by
outcomes), each with a :class:`~causalsre.errors.UserError` that names the offending item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import yaml

from causalsre.causal.graph_keys import check_edge_keys, check_layout, check_node_keys
from causalsre.errors import UserError
from causalsre.resources import GRAPH

ROLES = ("knob", "hardware", "workload", "engine_state", "outcome")
FAMILIES = ("batching", "hardware", "workload", "outcome")
TYPES = ("continuous", "discrete", "categorical", "binary")
# Causes must sit in the same or an earlier tier than their effects.
TIER = {"knob": 0, "hardware": 0, "workload": 0, "engine_state": 1, "outcome": 2}
DEFAULT_GRAPH = GRAPH  # models/serving.yaml, shipped as package data


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    role: str
    family: str
    type: str
    actionable: bool = False
    doc: str = ""
    # The cause this node is evidence of, when several nodes measure one cause (the offered and the measured
    # arrival rate; a request's own prompt length and the recent prompts' mean length). Attribution treats
    # the nodes of one factor as one player and reports them under this name. Empty: the node's own name.
    factor: str = ""
    # A trailing-window aggregate over other requests (the measured arrival rate, recent prompt lengths): its
    # per-request values are autocorrelated in time, so a per-request two-sample test overstates how surely it
    # changed, and a window's values can mark the window itself. It is never a change on its own evidence.
    trailing: bool = False

    @property
    def cause(self) -> str:
        return self.factor or self.name


@dataclass(frozen=True, slots=True)
class Edge:
    cause: str
    effect: str
    why: str = ""
    # +1: more of the cause never means less of the effect (all else equal); -1 the opposite; 0 unknown.
    # Mechanisms are fitted monotone in each signed parent, which keeps a parent that merely marks the
    # incident window (a trailing aggregate that happens to differ) from carrying the incident's effect.
    sign: int = 0


@dataclass(slots=True)
class GraphSpec:
    """A validated causal graph. ``nodes`` maps name -> :class:`Node`."""

    nodes: dict[str, Node]
    edges: list[Edge]
    target: str = "is_bad"
    source: str = "<memory>"
    # Recorded settings deliberately left out of the graph: name -> reason (the spec's ``excluded:`` map).
    excluded: dict[str, str] = field(default_factory=dict)
    _graph: nx.DiGraph | None = field(default=None, repr=False)

    def to_networkx(self) -> nx.DiGraph:
        """A fresh DiGraph with node attributes role/family/type/actionable and edge attribute why."""
        graph = nx.DiGraph()
        for node in self.nodes.values():
            graph.add_node(node.name, role=node.role, family=node.family, type=node.type,
                           actionable=node.actionable)
        for edge in self.edges:
            graph.add_edge(edge.cause, edge.effect, why=edge.why, sign=edge.sign)
        return graph

    def parents(self, name: str) -> list[str]:
        return sorted(e.cause for e in self.edges if e.effect == name)

    def sign(self, cause: str, effect: str) -> int:
        return next((e.sign for e in self.edges if e.cause == cause and e.effect == effect), 0)

    def family_of(self, name: str) -> str:
        return self.nodes[name].family

    def factor_of(self, name: str) -> str:
        return self.nodes[name].cause

    def restricted_to(self, names: set[str] | list[str]) -> GraphSpec:
        """The subgraph on ``names``; a dropped node's causes become causes of its effects (latent projection
        keeps ancestors connected, so a missing mediator does not cut a knob off from the outcome)."""
        keep = set(names)
        graph = self.to_networkx()
        for name in [n for n in nx.topological_sort(graph) if n not in keep]:
            for cause in graph.predecessors(name):
                for effect in graph.successors(name):
                    # The path's sign is the product of its edges' signs; paths that disagree cancel to 0.
                    sign = graph.edges[cause, name].get("sign", 0) * graph.edges[name, effect].get("sign", 0)
                    if not graph.has_edge(cause, effect):
                        graph.add_edge(cause, effect, why=f"through unmeasured {name}", sign=sign)
                    elif graph.edges[cause, effect].get("sign", 0) != sign:
                        graph.edges[cause, effect]["sign"] = 0
            graph.remove_node(name)
        edges = [Edge(c, e, d.get("why", ""), d.get("sign", 0)) for c, e, d in graph.edges(data=True)]
        nodes = {n: self.nodes[n] for n in self.nodes if n in keep}
        return GraphSpec(nodes=nodes, edges=edges, target=self.target, source=self.source, excluded=self.excluded)

    def check_recorded_settings(self, con, baseline, incident) -> None:
        """See :func:`check_recorded_settings`: refuse when a setting changed between the windows is missing."""
        check_recorded_settings(con, self, baseline, incident)

    def topological_order(self) -> list[str]:
        return list(nx.lexicographical_topological_sort(self.to_networkx()))


def load_graph(path: str | Path = DEFAULT_GRAPH) -> GraphSpec:
    """Load and validate a graph spec from YAML."""
    from causalsre.safeio import load_yaml, regular_file  # bounded size, UTF-8, nesting and alias limits

    path = Path(path)
    regular_file(path, what="graph spec", missing_fix="pass a YAML file such as models/serving.yaml")
    return graph_from_dict(load_yaml(path, what="graph spec"), source=str(path))


def graph_from_dict(raw: Any, source: str = "<memory>") -> GraphSpec:
    """Validate a parsed spec (the YAML layout) and build a :class:`GraphSpec`."""
    if not isinstance(raw, dict) or not isinstance(raw.get("nodes"), dict):
        raise UserError(f"graph spec {source} has no 'nodes' mapping", "see models/serving.yaml for the layout")
    check_layout(raw, source)
    nodes = {_node_name(name, source): _parse_node(str(name), spec, source) for name, spec in raw["nodes"].items()}
    _check_node_meaning(nodes, source)
    edges = [_parse_edge(item, nodes, source) for item in raw.get("edges") or []]
    seen: set[tuple[str, str]] = set()
    for edge in edges:
        if (edge.cause, edge.effect) in seen:
            raise UserError(f"graph spec {source}: edge {edge.cause} -> {edge.effect} is listed twice",
                            "keep one entry per edge")
        seen.add((edge.cause, edge.effect))
    target = str(raw.get("target", "is_bad"))
    if target not in nodes:
        raise UserError(f"graph spec {source}: target '{target}' is not a node", "add it under nodes")
    spec = GraphSpec(nodes=nodes, edges=edges, target=target, source=source,
                     excluded=_parse_excluded(raw.get("excluded"), nodes, source))
    _check_acyclic(spec)
    return spec


def _node_name(name: Any, source: str) -> str:
    """Node names are text: YAML reads a key 1, 2.5, null or yes as a number, None or a boolean, and the edges
    naming it then could not find it (an int 1 is not the node "1")."""
    from causalsre.safeio import printable_name

    if not isinstance(name, str) or not name:
        raise UserError(f"graph spec {source}: node name {name!r} is not text",
                        f"quote it (\"{name}\": {{...}}) and quote it in the edges too")
    return printable_name(name, f"graph spec {source}: node name")


def _flag(spec: dict, key: str, name: str, source: str) -> bool:
    """actionable / trailing: a real boolean. bool("false") is True, so a quoted "false" made a node actionable."""
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise UserError(f"graph spec {source}: node '{name}' has {key} {value!r}, not true or false",
                        f"write {key}: true or {key}: false, unquoted")
    return value


def _parse_node(name: str, spec: Any, source: str) -> Node:
    if not isinstance(spec, dict):
        raise UserError(f"graph spec {source}: node '{name}' must be a mapping with role, family and type",
                        "write it as NAME: {role: ..., family: ..., type: ...} (see models/serving.yaml)")
    check_node_keys(name, spec, source)
    for key, allowed in (("role", ROLES), ("family", FAMILIES), ("type", TYPES)):
        if spec.get(key) not in allowed:
            raise UserError(f"graph spec {source}: node '{name}' has {key} {spec.get(key)!r}",
                            f"use one of {', '.join(allowed)}")
    return Node(name=name, role=spec["role"], family=spec["family"], type=spec["type"],
                actionable=_flag(spec, "actionable", name, source), doc=str(spec.get("doc", "")),
                factor=str(spec.get("factor") or ""), trailing=_flag(spec, "trailing", name, source))


def _check_node_meaning(nodes: dict[str, Node], source: str) -> None:
    """A factor names another node (it was any text: a misspelt one made a second player of one cause), and only
    settings are actionable (an actionable engine state or outcome was offered as a setting to change)."""
    for node in nodes.values():
        if node.factor and node.factor not in nodes:
            raise UserError(f"graph spec {source}: node '{node.name}' has factor '{node.factor[:60]}', which is not a node",
                            "name the node whose cause it measures (e.g. factor: arrival_rate), or leave it out")
        if node.actionable and node.role in ("engine_state", "outcome"):
            raise UserError(f"graph spec {source}: node '{node.name}' is an {node.role} marked actionable",
                            "only knobs and hardware are set by an operator: write actionable: false")


def _parse_edge(item: Any, nodes: dict[str, Node], source: str) -> Edge:
    sign = 0
    if isinstance(item, dict):
        check_edge_keys(item, source)
        cause, effect, why, sign = item.get("from"), item.get("to"), item.get("why", ""), item.get("sign", 0)
    elif isinstance(item, (list, tuple)) and len(item) in (2, 3):
        cause, effect, why = item[0], item[1], item[2] if len(item) == 3 else ""
    else:
        raise UserError(f"graph spec {source}: edge {item!r} is not {{from, to, why}}",
                        "write each edge as {from: CAUSE, to: EFFECT, why: ...} or [CAUSE, EFFECT]")
    for end in (cause, effect):
        # Node names are strings; a list or mapping here (from: [a]) is not hashable, so test the type first.
        if not isinstance(end, str) or end not in nodes:
            raise UserError(f"graph spec {source}: edge {cause} -> {effect} names unknown node '{end}'",
                            "declare it under nodes or fix the spelling")
    if cause == effect:
        raise UserError(f"graph spec {source}: edge {cause} -> {effect} is a self-loop",
                        "remove it: a node cannot cause itself in an acyclic graph")
    cause_role, effect_role = nodes[cause].role, nodes[effect].role
    if TIER[cause_role] > TIER[effect_role]:
        raise UserError(f"graph spec {source}: edge {cause} -> {effect} has a {cause_role} causing a {effect_role}",
                        "knobs, hardware and workload cannot be caused by engine state or outcomes")
    if isinstance(sign, bool) or sign not in (-1, 0, 1):
        raise UserError(f"graph spec {source}: edge {cause} -> {effect} has sign {sign!r}",
                        "use +1 (more cause, more effect), -1 (more cause, less effect) or leave it out")
    return Edge(str(cause), str(effect), str(why or ""), int(sign))


def _check_acyclic(spec: GraphSpec) -> None:
    graph = spec.to_networkx()
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    path = " -> ".join([cycle[0][0]] + [effect for _, effect in cycle])
    raise UserError(f"graph spec {spec.source} has a cycle: {path}", "a causal graph must be acyclic")


def _parse_excluded(raw: Any, nodes: dict[str, Node], source: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                            for k, v in raw.items()):
        raise UserError(f"graph spec {source}: 'excluded' must map setting names to reasons",
                        "write e.g. excluded: {seed: randomness, not a setting}")
    both = sorted(set(raw) & set(nodes))
    if both:
        raise UserError(f"graph spec {source}: {', '.join(both)} is both a node and excluded", "keep one of the two")
    return dict(raw)


def recorded_settings(con, window) -> dict[str, set]:
    """Every recorded setting's values in force at the window's arrivals: ``run_settings`` timelines, and the
    ``runs`` columns of runs that have no timeline for that setting. Values are (number, text) pairs."""
    from harness.settings import RUNS_COLUMN_SETTING  # the settings table: which runs column is which setting

    condition, params = window.where()
    values: dict[str, set] = {}
    timelines: set[tuple[str, str]] = set()
    run_ids = [row[0] for row in con.execute(
        f"SELECT DISTINCT run_id FROM request_metrics WHERE {condition} ORDER BY run_id", params).fetchall()]
    for run_id, name, value, text in _values_in_force(con, condition, params, run_ids):
        values.setdefault(name, set()).add((value, text))
        timelines.add((run_id, name))
    runs = con.execute("SELECT * FROM runs WHERE list_contains(?, run_id)", [run_ids]).df()
    for row in runs.to_dict("records"):
        for column, name in RUNS_COLUMN_SETTING.items():
            if column in row and (row["run_id"], name) not in timelines and row[column] is not None:
                value = row[column]
                if value != value:  # NaN: not recorded
                    continue
                values.setdefault(name, set()).add((None, value) if isinstance(value, str) else (float(value), None))
    return values


# A timeline value holds from its start_ns to the next change of that setting (lead), and is in force at the
# window when an arrival falls in between: the ASOF join finds each value's first arrival at or after its
# start, so the work is one sort of the window's arrivals inside DuckDB, and nothing per request reaches
# Python (pulling 5M arrivals into pandas, four times a postmortem, was an eighth of a 10M-request one).
_IN_FORCE_SQL = """
WITH w AS (SELECT run_id, arrival_ns FROM request_metrics WHERE {condition}),
s AS (SELECT run_id, setting, start_ns, value, value_text,
             lead(start_ns) OVER (PARTITION BY run_id, setting ORDER BY start_ns) AS end_ns
      FROM run_settings WHERE list_contains(?, run_id))
SELECT DISTINCT s.run_id, s.setting, s.value, s.value_text
FROM s ASOF JOIN w ON s.run_id = w.run_id AND s.start_ns <= w.arrival_ns
WHERE s.end_ns IS NULL OR w.arrival_ns < s.end_ns
ORDER BY s.run_id, s.setting
"""


def _values_in_force(con, condition: str, params: list, run_ids: list[str]):
    """(run_id, setting, value, value_text) of every timeline value in force at one arrival at least of the
    window ``condition`` selects, for its runs ``run_ids``."""
    if not run_ids:
        return []
    return con.execute(_IN_FORCE_SQL.format(condition=condition), params + [run_ids]).fetchall()


def check_recorded_settings(con, graph: GraphSpec, baseline, incident) -> None:
    """Refuse a graph that omits a setting whose recorded value differs between the two windows: attribution
    could not name it and would blame something else with confidence. A setting is covered when it is a node,
    listed under the spec's ``excluded``, or excluded by the harness's settings table (seed, model)."""
    from harness.settings import EXCLUDED, GRAPH_NODE

    before, after = recorded_settings(con, baseline), recorded_settings(con, incident)
    missing = []
    for name in sorted(set(before) & set(after)):
        if before[name] == after[name]:
            continue
        node = GRAPH_NODE.get(name) or name
        if node in graph.nodes or name in graph.nodes or name in graph.excluded or name in EXCLUDED:
            continue
        missing.append(f"{name} ({_show(before[name])} -> {_show(after[name])})")
    if missing:
        raise UserError(f"graph {graph.source} has no node for the recorded setting(s) that changed between the "
                        f"windows: {'; '.join(missing)}",
                        "add it to the graph or to excluded (with a reason) in the graph spec")


def _show(values: set) -> str:
    shown = sorted(text if text is not None else (f"{number:g}" if number is not None else "none")
                   for number, text in values)
    return ", ".join(shown[:3]) + (", ..." if len(shown) > 3 else "")

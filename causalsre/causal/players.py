"""Shapley players: detected changes grouped into the causes they are evidence of.

A player is a *factor*: the set of changed nodes that measure one cause (``Node.factor`` in the graph spec:
the offered and the measured arrival rate, a request's own and the recent arrivals' prompt length). They move
together in every coalition, so the Shapley value is the cause's, not split between its measurements.

A factor's role says what kind of answer it is: a knob, hardware or workload factor is a *cause*; a
mechanism change of engine state or an outcome (a queue that grew, latencies that rose, with none of their
measured causes explaining it) is *unexplained*: how the burn showed, or a cause the graph does not measure,
never the root cause itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from causalsre.causal.changes import window_seconds
from causalsre.causal.graph import GraphSpec
from causalsre.causal.mechanisms import MAX_PLAYERS, Change

CAUSE_ROLES = ("knob", "hardware", "workload")
RATE_FACTOR, TENANT_FACTOR = "arrival_rate", "tenant"
MIX_ALPHA = 0.01  # a tenant mix that moves less than this test detects is no tenant flood


@dataclass(frozen=True, slots=True)
class Player:
    factor: str
    nodes: tuple[str, ...]
    kind: str  # "distribution" when any member is a root whose values moved, else "mechanism"
    role: str  # "cause" or "unexplained"
    effect: float  # the largest member's effect size


def group_players(changes: list[Change], graph: GraphSpec, limit: int = MAX_PLAYERS,
                  moved: set[str] | None = None) -> list[Player]:
    """Changes grouped by factor, strongest group first, at most ``limit`` groups. A factor's trailing
    aggregates (``Node.trailing``) join its group: they move with it but are no evidence of a change alone."""
    groups: dict[str, list[Change]] = {}
    for change in sorted(changes, key=lambda c: (-c.effect, c.p_value, c.node)):
        groups.setdefault(graph.factor_of(change.node), []).append(change)
    players = []
    for factor, members in groups.items():
        kind = "distribution" if any(c.kind == "distribution" for c in members) else "mechanism"
        role_node = factor if factor in graph.nodes else members[0].node
        role = "cause" if graph.nodes[role_node].role in CAUSE_ROLES else "unexplained"
        nodes = [c.node for c in members]
        nodes += [n for n, spec in graph.nodes.items() if spec.trailing and spec.cause == factor and n not in nodes]
        players.append(Player(factor, tuple(nodes), kind, role, max(c.effect for c in members)))
    return _adopt_trailing(players[:limit], graph, moved)


def _adopt_trailing(players: list[Player], graph: GraphSpec, moved: set[str] | None) -> list[Player]:
    """A trailing aggregate whose own factor is no player (the recent arrivals' output length, when the outputs
    changed only because a new tenant asks for longer ones) joins the player that moved that factor: the
    strongest player among the factor's ancestors. Left out, it would keep its baseline values in every
    coalition, and the mechanisms, which read it as the mark of the incident window, would rebuild even the
    full coalition as a baseline (a tenant flood plus a KV shrink attributed nothing: 78 points in "other").
    Only a factor that did move (``moved``: the window-level tests of "what changed"; None: no test) lends its
    aggregate: one that did not is the same in both windows, and adopting it hands its chance differences, the
    marks of the window, to whichever player is upstream (a chance shift of the tenant mix beside a rate surge
    took the surge's place)."""
    import networkx as nx

    taken = {n for p in players for n in p.nodes}
    nx_graph = graph.to_networkx()
    out = list(players)
    for name, spec in graph.nodes.items():
        if not spec.trailing or name in taken or spec.cause not in nx_graph:
            continue
        if moved is not None and spec.cause not in moved:
            continue
        upstream = nx.ancestors(nx_graph, spec.cause)
        owner = next((k for k, p in enumerate(out) if p.role == "cause" and set(p.nodes) & upstream), None)
        if owner is not None:
            p = out[owner]
            out[owner] = Player(p.factor, p.nodes + (name,), p.kind, p.role, p.effect)
            taken.add(name)
    return out


def grouped(evaluate, players: list[Player]):
    """``evaluate`` over node coalitions, seen as a function of factor coalitions (for ``shapley_per_pair``)."""
    members = {p.factor: p.nodes for p in players}

    def by_factor(coalitions: list[frozenset]) -> dict[frozenset, np.ndarray]:
        nodes = [frozenset(n for f in c for n in members[f]) for c in coalitions]
        values = evaluate(nodes)
        return {c: values[n] for c, n in zip(coalitions, nodes)}

    return by_factor


def tenant_shares(base: pd.DataFrame, inc: pd.DataFrame) -> dict[str, float]:
    """How much of each workload factor's change came from a change of who sends the traffic, in [0, 1].

    Workload aggregates are sums over tenants, so their change splits into a *composition* part (the tenant
    mix moved) and a *within* part (each tenant's own traffic moved): a shift-share (Kitagawa)
    decomposition, averaged over the two orders (the two-player Shapley value). For the arrival rate, the
    composition part is how far the growth's split over tenants is from the baseline's split (total
    variation): 0 for a uniform surge, 1 for a new tenant that brings all the new traffic. For mean prompt and
    output lengths it is the change the mix alone makes, as a share of the whole change. Every share is 0
    unless the tenant mix moved significantly (chi-square at ``MIX_ALPHA``).
    """
    if "tenant" not in base.columns or "tenant" not in inc.columns:
        return {}
    b, i = base["tenant"].astype(str), inc["tenant"].astype(str)
    names = sorted(set(b) | set(i))
    if len(names) < 2:
        return {}
    counts = np.array([[int((b == n).sum()) for n in names], [int((i == n).sum()) for n in names]], dtype=float)
    if stats.chi2_contingency(counts)[1] >= MIX_ALPHA:
        return {}
    shares = counts / counts.sum(axis=1, keepdims=True)
    out = {RATE_FACTOR: _rate_composition(counts, shares[0], window_seconds(base), window_seconds(inc))}
    for factor in ("prompt_tokens", "output_tokens"):
        if factor in base.columns and factor in inc.columns:
            out[factor] = _mean_composition(base, inc, factor, names, shares)
    return out


def _rate_composition(counts: np.ndarray, base_share: np.ndarray, span_b: float, span_i: float) -> float:
    growth = counts[1] / span_i - counts[0] / span_b
    total = growth.sum()
    if total <= 0:
        return 0.0
    return float(np.clip(np.maximum(growth / total - base_share, 0.0).sum(), 0.0, 1.0))


def _mean_composition(base, inc, column, names, shares) -> float:
    means_i = inc.groupby(inc["tenant"].astype(str))[column].mean().reindex(names)
    means_b = base.groupby(base["tenant"].astype(str))[column].mean().reindex(names)
    means_b, means_i = means_b.fillna(means_i), means_i.fillna(means_b)  # a tenant of one window only
    mb, mi = means_b.to_numpy(float), means_i.to_numpy(float)
    change = float(inc[column].mean() - base[column].mean())
    composition = float(((shares[1] - shares[0]) * (mb + mi) / 2).sum())
    if change == 0 or not np.isfinite(composition) or np.sign(composition) != np.sign(change):
        return 0.0
    return float(np.clip(composition / change, 0.0, 1.0))


def move_to_tenant(phi: np.ndarray, players: list[Player], shares: dict[str, float]) -> tuple[np.ndarray, list[Player]]:
    """Move each workload factor's composition share of its per-pair values to the tenant player."""
    factors = [p.factor for p in players]
    moving = {f: s for f, s in shares.items() if s > 0 and f in factors}
    if not moving:
        return phi, players
    if TENANT_FACTOR not in factors:
        players = players + [Player(TENANT_FACTOR, (), "distribution", "cause", 0.0)]
        phi = np.vstack([phi, np.zeros((1, phi.shape[1]))])
        factors.append(TENANT_FACTOR)
    phi = phi.copy()
    tenant = factors.index(TENANT_FACTOR)
    for factor, share in moving.items():
        moved = share * phi[factors.index(factor)]
        phi[tenant] += moved
        phi[factors.index(factor)] -= moved
    return phi, players


def window_constant(player: Player, baseline: pd.DataFrame, incident: pd.DataFrame, graph: GraphSpec) -> bool:
    """Whether every (non-trailing) node of the player holds one value per window, different between them."""
    own = [n for n in player.nodes if not graph.nodes[n].trailing]
    if not own:
        return False
    for node in own:
        b, i = baseline[node].dropna(), incident[node].dropna()
        if b.nunique() != 1 or i.nunique() != 1 or b.iloc[0] == i.iloc[0]:
            return False
    return True


def merge_collinear(players: list[Player], baseline, incident, graph: GraphSpec) -> tuple[list[Player], list[Player]]:
    """Players that each hold one value per window and all changed at the boundary are collinear with the
    window itself: with two windows no model can tell their effects apart. They become one joint player
    (returned second: the originals) whose value :func:`split_joint` shares equally, flagged as confounded."""
    constant = [p for p in players if window_constant(p, baseline, incident, graph)]
    if len(constant) < 2:
        return players, []
    joint = Player("+".join(p.factor for p in constant), tuple(n for p in constant for n in p.nodes),
                   "distribution", "cause", max(p.effect for p in constant))
    rest = [p for p in players if p not in constant]
    return [joint] + rest, constant


def split_joint(phi: np.ndarray, players: list[Player], originals: list[Player]) -> tuple[np.ndarray, list[Player]]:
    """Replace the joint player's row by equal shares for each of its original players."""
    if not originals:
        return phi, players
    share = phi[0] / len(originals)
    return np.vstack([np.tile(share, (len(originals), 1)), phi[1:]]), originals + players[1:]

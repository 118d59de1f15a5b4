"""The load mode of a comparison decides what the measured arrival rate is: a cause, or the server's speed.

In an open loop (a rate, a trace, a ramp) requests arrive whatever the server does, so the measured arrival
rate is a workload root: more arrivals build a queue. In a closed loop (``vllm bench serve --request-rate inf
--max-concurrency N``, ``sglang.bench_serving`` likewise, the harness's ``closed`` workload) each of N clients
sends its next request when its last one is answered: the rate is *set by* the server's speed and the
clients' number. A server restarted with ``--max-num-seqs 1`` answers slower, so fewer requests arrive a
second; read as a root, that fall is a "cause" the postmortem may rank, though it is the fault's effect.

So for a closed-loop comparison the graph changes in one place, not the ranking: ``arrival_rate`` becomes a
mediator (role ``engine_state``), caused by ``max_concurrency`` (the closed loop's workload setting, recorded
by the importers) and by everything that sets the server's speed, i.e. every knob and hardware node with a
path to the request's latency, and by the recent work (longer recent prompts and replies, slower answers).
A mediator is never a root cause: when a recorded cause moved, the rate's change is carried to it through the
mechanisms; when none did, its change is no player at all, and the burn stays with the engine state or
outcomes it showed in (a cause the graph does not measure, as with an unrecorded server flag). What changed
still lists the rate, marked as the server's effect (:mod:`causalsre.causal.changes`).
"""

from __future__ import annotations

from dataclasses import replace

import networkx as nx

from causalsre.causal.graph import Edge, GraphSpec

RATE = "arrival_rate"
CLIENTS = "max_concurrency"
QUEUE = "queue_depth_at_arrival"
LATENCY = "e2e_s"
# Trailing aggregates of the recent arrivals' work: more work in flight, slower answers, fewer sends a second.
RECENT_WORK = ("recent_prompt_tokens", "recent_output_tokens")
SERVER_ROLES = ("knob", "hardware")


def closed_loop_graph(graph: GraphSpec) -> GraphSpec:
    """``graph`` for a closed-loop comparison: the measured arrival rate a mediator of the server's speed."""
    if RATE not in graph.nodes or graph.nodes[RATE].role == "engine_state":
        return graph
    nodes = dict(graph.nodes)
    nodes[RATE] = replace(nodes[RATE], role="engine_state",
                          doc=nodes[RATE].doc + " (closed loop: the server's speed times its clients)")
    nx_graph = graph.to_networkx()
    edges = list(graph.edges)
    have = {(e.cause, e.effect) for e in edges}
    sink = LATENCY if LATENCY in nx_graph else graph.target

    def add(cause: str, sign: int, why: str) -> None:
        if cause in nodes and (cause, RATE) not in have and not nx.has_path(nx_graph, RATE, cause):
            edges.append(Edge(cause, RATE, why, sign))
            have.add((cause, RATE))

    add(CLIENTS, +1, "each client sends again when it is answered: more clients, more sends a second")
    for name, node in graph.nodes.items():
        if node.role in SERVER_ROLES and nx.has_path(nx_graph, name, sink):
            # A setting that leaves more requests waiting answers slower: its sign to the rate is the opposite.
            sign = -graph.sign(name, QUEUE) if (name, QUEUE) in {(e.cause, e.effect) for e in graph.edges} else 0
            add(name, sign, "closed loop: the server's speed sets how soon each client sends again")
    for name in RECENT_WORK:
        add(name, -1, "closed loop: longer work in flight answers slower, so the clients send less a second")
    return GraphSpec(nodes=nodes, edges=edges, target=graph.target, source=graph.source, excluded=graph.excluded)


def is_cause(graph: GraphSpec, name: str) -> bool:
    """Whether ``name`` is a root-cause kind of node in this graph (its role a knob, hardware or workload)."""
    return name in graph.nodes and graph.nodes[name].role in ("knob", "hardware", "workload")

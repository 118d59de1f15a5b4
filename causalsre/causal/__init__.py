"""The causal graph of the serving system, the per-request analysis table, and attribution.

Public API: :func:`load_graph`, :class:`GraphSpec`, :func:`build_analysis_table`.
"""

from causalsre.causal.graph import DEFAULT_GRAPH, Edge, GraphSpec, Node, graph_from_dict, load_graph
from causalsre.causal.table import build_analysis_table

__all__ = ["DEFAULT_GRAPH", "Edge", "GraphSpec", "Node", "build_analysis_table", "graph_from_dict", "load_graph"]

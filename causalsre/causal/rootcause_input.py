"""What ``attribute`` reads, checked where it enters: the edge list, the two wide tables and the thresholds.

Limits (docs/reliability.md): a graph of at most :data:`MAX_GRAPH_NODES` nodes and :data:`MAX_GRAPH_EDGES`
edges (a 10,000-node chain ranks in seconds; the ranking is near-linear in the graph's size); every column
that names a graph node holds numbers (an empty cell is a missing value, text or an infinity is an error
naming the column); thresholds are positive finite z-scores.
"""

from __future__ import annotations

import io
import math

import networkx as nx
import numpy as np
import pandas as pd

from causalsre.errors import UserError
from causalsre.safeio import brief, regular_file, table_text

MAX_GRAPH_NODES = 20_000
MAX_GRAPH_EDGES = 200_000


def check_threshold(value: float, what: str = "--threshold") -> float:
    """A robust z-score gate: finite and positive (nan would pass nothing, a negative one everything)."""
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an integer of hundreds of digits
        number = math.inf
    if not math.isfinite(number) or number <= 0:
        raise UserError(f"{what} {brief(value)} is not a positive finite number", "use a robust z-score such as 4")
    return number


def check_graph_size(nodes: int, edges: int, what: str) -> None:
    if nodes > MAX_GRAPH_NODES or edges > MAX_GRAPH_EDGES:
        raise UserError(f"{what} has {nodes} nodes and {edges} edges, over the limit of {MAX_GRAPH_NODES} nodes "
                        f"and {MAX_GRAPH_EDGES} edges", "aggregate the metrics (e.g. per service) first")


def numeric_matrix(frame: pd.DataFrame, columns: list[str], name: str) -> np.ndarray:
    """``frame[columns]`` as one (rows, columns) float matrix, NaN for missing cells.

    Numeric columns are taken as they are; any other column must convert to numbers cell by cell, or the
    error names the column, the row and the value. Infinities are refused (they would make every robust
    scale infinite and every z-score NaN).
    """
    converted = {}
    table = frame[columns]
    for column, dtype in table.dtypes.items():  # dtypes, not frame[column]: that is slow for wide tables
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            continue
        values = table[column]
        numbers = pd.Series([_to_float(v) for v in values], index=values.index, dtype=float)
        bad = numbers.isna().to_numpy() & values.notna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise UserError(f"column {column!r} of the {name} data holds {brief(values.iloc[row])} (row {row + 1}), "
                            "which is not a number", "every column named in the graph must be numeric")
        converted[column] = numbers
    table = table.assign(**converted) if converted else table
    matrix = table.to_numpy(dtype=float, na_value=np.nan)
    infinite = np.isinf(matrix).any(axis=0)
    if infinite.any():
        raise UserError(f"column {columns[int(np.flatnonzero(infinite)[0])]!r} of the {name} data holds an "
                        "infinite value", "leave the cell empty for a missing value")
    return matrix


def _to_float(value: object) -> float:
    """One cell of a column that is not numeric as a whole: NaN when it is not a number (reported by the
    caller), inf when it is too large for a float (refused as infinite), else its value."""
    if isinstance(value, (bool, np.bool_, int, float, np.number)):
        try:
            return float(value)
        except OverflowError:  # an integer of hundreds of digits
            return math.inf
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


def read_table(path) -> pd.DataFrame:
    """A wide table (one column per node) from CSV or Parquet."""
    # regular_file, not is_file(): a FIFO or a folder is named as such, not said not to exist.
    path = regular_file(path, what="table", missing_fix="pass a CSV or Parquet file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        text = table_text(path, what="table")  # the one CSV decoder: UTF-16, NUL bytes, a BOM, gzip
        return pd.read_csv(io.StringIO(text))
    except UserError:
        raise
    except Exception as exc:  # pandas raises many types for malformed files
        raise UserError(f"cannot read {path} as a table ({str(exc).splitlines()[0]})",
                        "give a CSV file with a header line, or a Parquet file") from None


def read_edges(path) -> nx.DiGraph:
    """A ``cause,effect`` CSV edge list (a header row is optional) as a DAG. Names are text as written:
    a node called ``NA`` or ``null`` stays one."""
    path = regular_file(path, what="edge list", missing_fix="pass a cause,effect CSV file")
    try:
        text = table_text(path, what="edge list")
        frame = pd.read_csv(io.StringIO(text), header=None, dtype=str, skipinitialspace=True, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"edge list {path} is not a cause,effect CSV ({str(exc).splitlines()[0]})",
                        "write one cause,effect pair per line") from None
    if frame.shape[1] != 2:
        raise UserError(f"edge list {path} has {frame.shape[1]} columns", "write two columns: cause,effect")
    if tuple(frame.iloc[0].str.lower()) == ("cause", "effect"):
        frame = frame.iloc[1:]
    empty = (frame == "").any(axis=1).to_numpy()
    if empty.any():
        raise UserError(f"edge list {path}: pair {int(np.flatnonzero(empty)[0]) + 1} has an empty end",
                        "write one cause,effect pair per line")
    check_graph_size(len(pd.unique(frame.to_numpy().ravel())), len(frame), f"edge list {path}")
    graph = nx.DiGraph()
    graph.add_edges_from(frame.itertuples(index=False, name=None))
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " -> ".join(edge[0] for edge in nx.find_cycle(graph))
        raise UserError(f"edge list {path} has a cycle through {cycle}", "a causal graph must be acyclic")
    return graph


def project_graph(graph: nx.DiGraph, keep: set[str]) -> nx.DiGraph:
    """Drop nodes without data, connecting their causes to their effects (ancestry is preserved)."""
    projected = graph.copy()
    for node in [n for n in nx.topological_sort(graph) if n not in keep]:
        for cause in projected.predecessors(node):
            for effect in projected.successors(node):
                projected.add_edge(cause, effect)
        projected.remove_node(node)
        # Dropping a hub without data connects all its causes to all its effects: bound that too.
        check_graph_size(projected.number_of_nodes(), projected.number_of_edges(), "the graph without empty columns")
    return projected


def node_bits(nodes, index: dict[str, int]) -> int:
    value = 0
    for node in nodes:
        value |= 1 << index[node]
    return value


def descendant_bits(graph: nx.DiGraph, order: list[str]) -> dict[str, int]:
    """node -> its descendants as a bitset over ``order`` (one pass in reverse topological order; a set
    of descendants per node would be quadratic in time and memory)."""
    index = {n: i for i, n in enumerate(order)}
    below: dict[str, int] = {}
    for node in reversed(order):
        bits = 0
        for child in graph.successors(node):
            bits |= below[child] | (1 << index[child])
        below[node] = bits
    return below

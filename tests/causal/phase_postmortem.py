"""Write generated tables to a real DuckDB file and run the postmortem of its baseline phase against its
incident phase, the way the CLI does (a writable connection to load, a read-only one to analyse)."""

from __future__ import annotations

from causalsre.causal import load_graph
from causalsre.causal.postmortem import postmortem
from causalsre.causal.synthetic import write_tables
from causalsre.telemetry import connect_readonly, connect_writable
from causalsre.windows import parse_window


def postmortem_of_phases(path, tables, *, n_pairs: int = 1000, n_boot: int = 100) -> dict:
    con = connect_writable(path)
    try:
        write_tables(con, tables)
    finally:
        con.close()
    con = connect_readonly(path)
    try:
        return postmortem(con, None, parse_window("phase:baseline", con), parse_window("phase:incident", con),
                          load_graph(), seed=0, n_pairs=n_pairs, n_boot=n_boot, top_requests=0)
    finally:
        con.close()

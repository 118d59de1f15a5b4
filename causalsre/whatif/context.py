"""Everything a what-if command opens: database, SLO, graph, and analysis tables of windows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from causalsre.errors import UserError

if TYPE_CHECKING:
    from causalsre.bayes.factors import GraphView
    from causalsre.windows import Window


def pick_slo(path: str | Path, name: str | None):
    """The SLO named ``name`` in the spec file (the first when None): the one SLO selection of every command.

    Imports no Bayesian code, so that commands that only need an SLO (postmortem, graph check) stay light.
    """
    from causalsre.slo import load_slos

    slos = load_slos(path)
    if name is None:
        return slos[0]
    for slo in slos:
        if slo.name == name:
            return slo
    raise UserError(f"{path} has no SLO named {name!r}", f"choose one of {', '.join(s.name for s in slos)}")


@dataclass
class Context:
    db_path: Path
    con: Any
    slo: Any
    graph: Any
    view: GraphView
    fingerprint: str
    _tables: dict = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, db_path: str | Path, slo_path: str | Path, slo_name: str | None = None,
             graph_path: str | Path | None = None) -> Context:
        from causalsre.bayes.factors import graph_view
        from causalsre.bayes.store import database_fingerprint
        from causalsre.causal import DEFAULT_GRAPH, load_graph
        from causalsre.telemetry import connect_readonly

        slo = pick_slo(slo_path, slo_name)
        graph = load_graph(graph_path or DEFAULT_GRAPH)
        con = connect_readonly(db_path)
        return cls(Path(db_path), con, slo, graph, graph_view(graph), database_fingerprint(con))

    @property
    def objective(self) -> float:
        return float(self.slo.objective)

    def window(self, text: str | Window | None):
        """A window parsed against this database (a :class:`Window` parsed already is kept as it is)."""
        from causalsre.windows import Window, parse_window

        if isinstance(text, Window):
            return text
        return Window(label="all") if text is None else parse_window(text, self.con)

    def table(self, text: str | Window | None = None) -> pd.DataFrame:
        """The analysis table of a window (``None``: the whole database; text or a parsed :class:`Window`)."""
        if text not in self._tables:
            from causalsre.causal import build_analysis_table

            self._tables[text] = build_analysis_table(self.con, self.slo, window=self.window(text), graph=self.graph)
        return self._tables[text]

    def close(self) -> None:
        self.con.close()


def parse_settings(items: tuple[str, ...] | list[str], view: GraphView, table: pd.DataFrame) -> dict:
    """``KNOB=VALUE`` pairs -> {knob: value}; the knob must be actionable and measured, the value typed like it."""
    if not items:
        raise UserError("no intervention given", "add --set KNOB=VALUE, e.g. --set max_num_seqs=8")
    settings = {}
    actionable = [n for n in view.actionable if n in table.columns]
    for item in items:
        knob, sep, text = item.partition("=")
        knob, text = knob.strip(), text.strip()
        if not sep or not knob or not text:
            raise UserError(f"--set {item!r} is not KNOB=VALUE", "write e.g. --set max_num_seqs=8")
        if knob not in actionable:
            raise UserError(f"{knob} is not an actionable knob of the graph measured in this database",
                            f"choose one of {', '.join(actionable)}")
        column = table[knob]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            try:
                settings[knob] = float(text)
            except ValueError:
                raise UserError(f"--set {knob} needs a number, not {text!r}", f"write --set {knob}=NUMBER") from None
        else:
            settings[knob] = text
        from causalsre.whatif.verify import check_intervention  # bounds from the settings table
        check_intervention(knob, settings[knob])
    return settings

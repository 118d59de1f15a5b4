"""Result objects of the notebook API: one per question, each wrapping the JSON-ready dict the CLI prints.

Every result has ``.data`` (that dict, or list for the SLO report), ``.to_json()`` (the exact text the
matching command prints with ``--json``), ``.to_frame()`` (the main table as a DataFrame), ``.plot()`` (a
``matplotlib.figure.Figure``; nothing is shown and no backend is touched) and ``_repr_html_`` (a compact
table, so a result displays itself in Jupyter).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

_FLOAT = "{:.4g}".format


@dataclass(repr=False)
class Result:
    data: Any
    # json.dumps options of the command's --json (they differ: `whatif` has no default=str, `attribute` no indent).
    _json_options: dict = field(default_factory=lambda: {"indent": 2, "default": str}, repr=False)

    def to_json(self) -> str:
        """The text ``causalsre <command> --json`` prints for the same inputs."""
        return json.dumps(self.data, **self._json_options)

    def to_frame(self) -> pd.DataFrame:
        raise NotImplementedError

    def plot(self):
        raise NotImplementedError

    def summary(self) -> str:
        return ""

    def _repr_html_(self) -> str:
        table = self.to_frame().to_html(index=False, float_format=_FLOAT, border=0, max_rows=20)
        text = self.summary()
        return (f"<p>{html.escape(text)}</p>" if text else "") + table

    def __repr__(self) -> str:
        text = self.summary()
        return f"<{type(self).__name__}: {text[:300] + ('...' if len(text) > 300 else '')}>"

    def __getitem__(self, key):
        """``result["attributions"]``: the JSON's fields, as in the CLI's output."""
        return self.data[key]


class SloReport(Result):
    """``cs.slo_report``: error budget, burn rate and alerts per SLO (``causalsre slo report``)."""

    def __init__(self, data: list[dict], timelines: list | None, alert_windows: Any = None):
        super().__init__(data)
        # (slo, burn-rate timeline) pairs (None: not computed) and the alert windows used: what the plots draw.
        self.timelines, self.alert_windows = timelines, alert_windows

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for item in self.data:
            for group in [None, *item.get("groups", [])]:
                row = group or item
                rows.append({"slo": item["name"], "group": _group_label(group), "objective": row["objective"],
                             "events": row["events"], "bad_events": row["bad_events"], "sli": row["sli"],
                             "budget_consumed": row["budget_consumed"], "budget_remaining": row["budget_remaining"],
                             "burn_rate": row["burn_rate"],
                             "firing": ", ".join(f"{a['severity']} {a['threshold']:.3g}x" for a in row["alerts"]
                                                 if a["firing"])})
        return pd.DataFrame(rows)

    def alerts(self) -> pd.DataFrame:
        return pd.DataFrame([{"slo": item["name"], **a} for item in self.data for a in item["alerts"]])

    def plot(self):
        from causalsre.report.figures import slo_timelines_figure

        if self.timelines is None:
            from causalsre.errors import UserError

            raise UserError("this report has no burn-rate timeline", "call cs.slo_report(..., timeline=True)")
        return slo_timelines_figure(self.timelines, self.alert_windows)

    def summary(self) -> str:
        from causalsre.report.builders import slo_summary

        return " ".join(slo_summary(r) for r in self.data)


class Postmortem(Result):
    """``cs.postmortem``: what changed and why the budget burned (``causalsre postmortem``)."""

    def __init__(self, data: dict, graph: Any = None):
        super().__init__(data)
        self.graph = graph  # the causal graph attributed over (the report's graph section draws it)

    def to_frame(self) -> pd.DataFrame:
        columns = ["factor", "family", "kind", "role", "contribution", "ci_low", "ci_high"]
        frame = pd.DataFrame(self.data.get("attributions", []))
        return frame[[c for c in columns if c in frame.columns]] if len(frame) else pd.DataFrame(columns=columns)

    def changes(self) -> pd.DataFrame:
        return pd.DataFrame(self.data.get("changes", []))

    def bayes_frame(self) -> pd.DataFrame | None:
        bayes = self.data.get("bayes_attribution")
        return pd.DataFrame(bayes["rows"]) if bayes else None

    @property
    def top(self) -> dict | None:
        """The largest named cause (or None when there is nothing to attribute)."""
        return next(iter(self.data.get("attributions", [])), None)

    def plot(self):
        from causalsre.report.plots import attribution_figure

        rows = self.data.get("attributions", [])
        shown = [a for a in rows if a["family"] != "other" and abs(a["contribution"]) > 1e-9]
        return attribution_figure(shown or rows)

    def summary(self) -> str:
        from causalsre.report.builders import postmortem_summary

        return postmortem_summary(self.data)


class WhatIf(Result):
    """``cs.whatif``: the burn of a window under an intervention, per method (``causalsre whatif``)."""

    def to_frame(self) -> pd.DataFrame:
        rows = [{"method": "observed", "burn_rate": self.data["observed"], "low": None, "high": None,
                 "bad_rate": self.data["observed_bad_rate"]}]
        rows += [{"method": name, "burn_rate": p["burn_rate"], "low": p.get("low"), "high": p.get("high"),
                  "bad_rate": p.get("bad_rate")} for name, p in self.data["predicted"].items()]
        if self.data.get("verified"):
            rows.append({"method": "verified", "low": None, "high": None, **self.data["verified"]})
        return pd.DataFrame(rows)

    def plot(self):
        from causalsre.report.figures import whatif_figure

        return whatif_figure(self.data)

    def summary(self) -> str:
        from causalsre.report.builders import whatif_summary

        return whatif_summary(self.data)


class Attribution(Result):
    """``cs.attribute``: root-cause candidates of a target's anomaly (``causalsre attribute``)."""

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.data["root_causes"], columns=["node", "score", "marginal_z", "residual_z"])

    def plot(self):
        from causalsre.report.figures import root_cause_figure

        return root_cause_figure(self.data)

    def summary(self) -> str:
        causes = self.data["root_causes"]
        if not causes:
            return f"nothing anomalous: {self.data['target']} is within its normal range"
        return f"root-cause candidates for {self.data['target']}, best first: {causes[0]['node']} leads"


def _group_label(group: dict | None) -> str:
    return "" if group is None else ", ".join(f"{k}={v}" for k, v in group["group"].items())

"""Encode graph factors as model inputs and aggregate requests into binomial cells.

Numeric factors are log-transformed when their positive range is wide (knob effects are multiplicative:
doubling max_num_seqs matters the same at 4 and at 64), then centred and scaled. Actionable numeric knobs
with three or more observed values also get a quadratic term, because queueing makes knob effects
U-shaped. Interaction terms (products of two standardised factors) let a knob's effect depend on load:
``max_num_seqs:arrival_rate`` says how much more fewer sequences hurt when more requests arrive. Continuous
factors with many distinct values are binned only for cell aggregation (each bin is represented by its
mean), so the model fits a few hundred cells instead of 100k requests.

Pooling groups: ``window`` (one run's phase: the conditions of that stretch of time that the factors do
not explain, run-to-run differences included) and ``tenant``. The phase label itself is not a group: "incident" is not a cause,
and as a shared intercept it absorbed the effect of whatever changed during the incidents (a knob pushed
only during an incident then looked harmless in a baseline phase).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from causalsre.bayes.factors import OUTCOME

WINDOW = "window"   # derived group: run_id/phase


@dataclass
class FactorCode:
    name: str
    numeric: bool
    actionable: bool
    log: bool = False
    center: float = 0.0
    scale: float = 1.0
    quadratic: bool = False
    bin_edges: list[float] | None = None
    observed: list = field(default_factory=list)   # distinct values (knobs) or [min, max] (continuous)
    levels: list[str] = field(default_factory=list)

    def transform(self, values: pd.Series) -> np.ndarray:
        x = values.to_numpy(dtype=float)
        if self.log:
            x = np.log(np.clip(x, 1e-12, None))
        # A missing value (e.g. the measured arrival rate before its trailing window fills) counts as average.
        return np.nan_to_num((x - self.center) / self.scale, nan=0.0)

    def columns(self, values: pd.Series) -> tuple[list[str], list[np.ndarray]]:
        if not self.numeric:
            text = values.astype(str).to_numpy()
            names = [f"{self.name}[{level}]" for level in self.levels[1:]]
            return names, [(text == level).astype(float) for level in self.levels[1:]]
        z = self.transform(values)
        if self.quadratic:
            return [self.name, f"{self.name}^2"], [z, z * z]
        return [self.name], [z]


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def group_columns(table: pd.DataFrame, factors: list[str]) -> list[str]:
    """Pooling groups present in ``table``: window (run x phase) or else run or phase, and tenant.

    With windows there is no separate run intercept: each window is one run's phase, so a run intercept
    is only identified through the sum of its two or three windows, and its scale then forms a funnel with
    them (43 divergences on the 100k-request benchmark with runs, phases and windows). The windows'
    single spread carries the run-to-run variation as well."""
    groups = []
    has_run = "run_id" in table.columns and "run_id" not in factors
    has_phase = "phase" in table.columns and "phase" not in factors
    if has_run and has_phase:
        groups.append(WINDOW)
    elif has_run:
        groups.append("run_id")
    elif has_phase:
        groups.append("phase")
    if "tenant" in table.columns and "tenant" not in factors:
        groups.append("tenant")
    return groups


def with_groups(frame: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    """``frame`` with the derived ``window`` column when the encoding pools by window."""
    if WINDOW in groups and WINDOW not in frame.columns:
        frame = frame.assign(**{WINDOW: frame["run_id"].astype(str) + "/" + frame["phase"].astype(str)})
    return frame


@dataclass
class FactorEncoding:
    factors: list[FactorCode]
    groups: list[str]
    interactions: list[list[str]] = field(default_factory=list)   # [knob, factor] pairs, both numeric

    @classmethod
    def fit(cls, table: pd.DataFrame, factors: list[str], actionable: list[str], *, max_levels: int = 8,
            bins: int = 6, interactions: list | None = None) -> FactorEncoding:
        codes = []
        for name in factors:
            series = table[name]
            if not _is_numeric(series):
                levels = sorted(series.dropna().astype(str).unique().tolist())
                codes.append(FactorCode(name, False, name in actionable, levels=levels, observed=levels))
                continue
            x = series.dropna().to_numpy(dtype=float)
            distinct = np.unique(x)
            log = bool(distinct.size > 1 and distinct.min() > 0 and distinct.max() / distinct.min() >= 4)
            t = np.log(x) if log else x
            center = float(t.mean()) if t.size else 0.0
            scale = float(t.std()) if t.size and t.std() > 1e-9 else 1.0
            code = FactorCode(name, True, name in actionable, log=log, center=center, scale=scale)
            code.quadratic = bool(code.actionable and distinct.size >= 3)
            if distinct.size > max_levels:
                edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
                code.bin_edges = edges.tolist()
                code.observed = [float(distinct.min()), float(distinct.max())]
            else:
                code.observed = distinct.tolist()
            codes.append(code)
        numeric = {c.name for c in codes if c.numeric}
        pairs = [list(p) for p in (interactions or []) if p[0] in numeric and p[1] in numeric]
        return cls(codes, group_columns(table, factors), pairs)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.factors]

    def code(self, name: str) -> FactorCode:
        for c in self.factors:
            if c.name == name:
                return c
        raise KeyError(name)

    def discretise(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Replace binned continuous factors by their bin's mean, so equal requests share a cell."""
        out = frame.copy()
        for c in self.factors:
            if c.numeric and c.bin_edges is not None:
                bin_index = np.searchsorted(c.bin_edges, out[c.name].to_numpy(dtype=float), side="right")
                out[c.name] = out[c.name].astype(float).groupby(bin_index).transform("mean").to_numpy()
        return out

    def design(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[str], list[str]]:
        """(matrix, column names, the factor each column belongs to)."""
        names, owners, cols = [], [], []
        for c in self.factors:
            col_names, col_values = c.columns(frame[c.name])
            names += col_names
            owners += [c.name] * len(col_names)
            cols += col_values
        for knob, other in self.interactions:
            names.append(f"{knob}:{other}")
            owners.append(knob)
            cols.append(self.code(knob).transform(frame[knob]) * self.code(other).transform(frame[other]))
        matrix = np.column_stack(cols) if cols else np.zeros((len(frame), 0))
        return matrix, names, owners

    def to_json(self) -> str:
        return json.dumps({"factors": [asdict(c) for c in self.factors], "groups": self.groups,
                           "interactions": self.interactions})

    @classmethod
    def from_json(cls, text: str) -> FactorEncoding:
        raw = json.loads(text)
        return cls([FactorCode(**c) for c in raw["factors"]], raw["groups"], raw.get("interactions", []))


def aggregate_cells(encoding: FactorEncoding, frame: pd.DataFrame) -> pd.DataFrame:
    """Group requests with equal (discretised) factors and pooling groups: one row per cell with n and bad."""
    keep = encoding.names + encoding.groups
    cells = encoding.discretise(with_groups(frame, encoding.groups)[keep + [OUTCOME]])
    for g in encoding.groups:
        cells[g] = cells[g].astype(str)
    for c in encoding.factors:
        if not c.numeric:
            cells[c.name] = cells[c.name].astype(str)
    cells["_bad"] = cells[OUTCOME].astype(bool).astype(int)
    grouped = cells.groupby(keep, dropna=False, sort=True, observed=True)["_bad"].agg(n="size", bad="sum")
    return grouped.reset_index()

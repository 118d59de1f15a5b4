"""Leave-one-out choice of ``attribute``'s settings: every threshold is chosen on other incidents than the
one it is scored on.

The grid is small and documented (:data:`GRID`, docs/evaluation.md). For each held-out case the settings
with the most top-1 hits on the other cases win, then (when given) the best secondary score such as the
specificity on normal data, then the most top-3 hits; among equals the current
defaults, else the one differing from the defaults in the fewest fields, else the first in grid order.
The held-out case is then scored with the winner. :func:`choose` on all cases gives the shipped defaults.
"""

from __future__ import annotations

import itertools
from dataclasses import astuple, dataclass, fields

import numpy as np

from causalsre.causal.rootcause import DEFAULT_TARGET_THRESHOLD, DEFAULT_THRESHOLD, MIN_SHARE, REACH, UNEXPLAINED


@dataclass(frozen=True, slots=True)
class Settings:
    """Every choice ``attribute`` makes: the gates, the minimum share, the footprint rule, and how many
    seconds after the incident's timestamp the abnormal window reaches (PetShop: 5-minute rows)."""

    threshold: float = DEFAULT_THRESHOLD
    target_threshold: float = DEFAULT_TARGET_THRESHOLD
    min_share: float = MIN_SHARE
    footprint: bool = True
    window_after_s: int = 600
    unexplained: float = UNEXPLAINED
    reach: bool = REACH

    def rank_options(self) -> dict:
        return {"threshold": self.threshold, "target_threshold": self.target_threshold,
                "min_share": self.min_share, "footprint": self.footprint, "unexplained": self.unexplained,
                "reach": self.reach}

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


DEFAULTS = Settings()
# 3 x 3 x 3 x 2 x 3 x 3 x 2 = 972 settings around the defaults (min_share 0: no share gate).
GRID_AXES = {"threshold": (3.0, 4.0, 5.0), "target_threshold": (2.0, 2.5, 3.0), "min_share": (0.0, 0.02, 0.1),
             "footprint": (True, False), "window_after_s": (300, 600, 900), "unexplained": (0.0, 0.3, 0.6),
             "reach": (False, True)}


def grid(axes: dict | None = None) -> list[Settings]:
    axes = GRID_AXES if axes is None else axes
    names = list(axes)
    return [Settings(**dict(zip(names, values))) for values in itertools.product(*axes.values())]


def _distance(a: Settings, b: Settings) -> int:
    return sum(x != y for x, y in zip(astuple(a), astuple(b)))


def choose(settings: list[Settings], hits1: np.ndarray, hits3: np.ndarray, cases: np.ndarray | None = None,
           default: Settings = DEFAULTS, secondary=None) -> int:
    """Index of the winning settings on ``cases`` (a boolean mask over columns; all when None).
    ``hits1``/``hits3`` are (settings, cases) booleans: case j's true root cause in the top 1 / top 3;
    ``secondary`` (one number per setting, higher is better, e.g. specificity) ranks after top-1 hits."""
    mask = np.ones(hits1.shape[1], bool) if cases is None else cases
    top1, top3 = hits1[:, mask].sum(axis=1), hits3[:, mask].sum(axis=1)
    second = np.zeros(len(settings)) if secondary is None else np.round(np.asarray(secondary, float), 9)
    key = [(-int(a), -float(c), -int(b), _distance(s, default), i)
           for i, (s, a, b, c) in enumerate(zip(settings, top1, top3, second))]
    return min(key)[4]


@dataclass(frozen=True, slots=True)
class Fold:
    held_out: int
    chosen: int
    hit1: bool
    hit3: bool


def leave_one_out(settings: list[Settings], hits1: np.ndarray, hits3: np.ndarray,
                  default: Settings = DEFAULTS, secondary=None) -> list[Fold]:
    """One fold per case: settings chosen on the other cases, the held-out case scored with them."""
    hits1, hits3 = np.asarray(hits1, bool), np.asarray(hits3, bool)
    if hits1.shape != hits3.shape or hits1.shape[0] != len(settings) or hits1.shape[1] < 2:
        raise ValueError("hits1 and hits3 must be (settings, cases) with at least two cases")
    folds = []
    for j in range(hits1.shape[1]):
        others = np.ones(hits1.shape[1], bool)
        others[j] = False
        i = choose(settings, hits1, hits3, others, default, secondary)
        folds.append(Fold(j, i, bool(hits1[i, j]), bool(hits3[i, j])))
    return folds

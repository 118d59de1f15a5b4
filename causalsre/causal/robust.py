"""Robust location and scale of normal-data columns, for the z-scores of ``attribute`` and the PetShop
generator: median and MAD, widened by the 1-99 % range for heavy-tailed columns."""

from __future__ import annotations

import numpy as np

_MAD_TO_SIGMA = 1.4826
_MEAN_ABS_TO_SIGMA = 1.2533
TAIL_QUANTILE = 0.01
_TAIL_TO_SIGMA = 2 * 2.326  # a normal distribution's 1-99 % range is 4.65 sigma


def robust_scale(values: np.ndarray, tails: bool = True) -> tuple[float, float]:
    """(location, scale) of one column; see :func:`robust_scales`."""
    locations, scales = robust_scales(np.asarray(values, dtype=float)[:, None], tails)
    return float(locations[0]), float(scales[0])


def robust_scales(matrix: np.ndarray, tails: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per column of a (rows, columns) matrix, (location, scale): median and MAD; mean absolute deviation
    when the MAD is 0 (mostly-constant columns); a tiny scale for a truly constant column, so any
    departure from it is extreme. All columns at once: one call per node would dominate a large graph."""
    location = np.median(matrix, axis=0)
    deviation = np.abs(matrix - location)
    low, high = np.quantile(matrix, [TAIL_QUANTILE, 1 - TAIL_QUANTILE], axis=0)
    # The tail term widens the scale of heavy-tailed columns (rare slow calls are normal there).
    scale = _MAD_TO_SIGMA * np.median(deviation, axis=0)
    if tails:
        scale = np.maximum(scale, (high - low) / _TAIL_TO_SIGMA)
    scale = np.where(scale > 0, scale, _MEAN_ABS_TO_SIGMA * np.mean(deviation, axis=0))
    scale = np.where(scale > 0, scale, 1e-6 * np.maximum(np.abs(location), 1.0))
    return location, scale

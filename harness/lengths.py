"""Token-length distributions: fixed, uniform, lognormal (parameterised by its mean) and empirical."""

from __future__ import annotations

import math

import numpy as np

from harness.config import LengthSpec


def sample_lengths(spec: LengthSpec, rng: np.random.Generator, size: int, scale: float = 1.0) -> np.ndarray:
    """``size`` integer lengths from ``spec``, multiplied by ``scale``, rounded and clipped to [min, max]."""
    if spec.dist == "fixed":
        raw = np.full(size, float(spec.value))
    elif spec.dist == "uniform":
        raw = rng.integers(spec.low, spec.high + 1, size=size).astype(float)
    elif spec.dist == "lognormal":
        # mu chosen so that E[length] = mean: E[exp(N(mu, s^2))] = exp(mu + s^2 / 2).
        mu = math.log(spec.mean) - spec.sigma**2 / 2
        raw = rng.lognormal(mu, spec.sigma, size=size)
    else:
        weights = np.asarray(spec.weights if spec.weights is not None else [1.0] * len(spec.values), float)
        raw = rng.choice(np.asarray(spec.values, float), size=size, p=weights / weights.sum())
    return np.clip(np.rint(raw * scale), spec.min, spec.max).astype(np.int64)


def mean_length(spec: LengthSpec, scale: float = 1.0) -> float:
    """The distribution's mean before clipping (what run_settings records as the offered length)."""
    if spec.dist == "fixed":
        mean = float(spec.value)
    elif spec.dist == "uniform":
        mean = (spec.low + spec.high) / 2
    elif spec.dist == "lognormal":
        mean = float(spec.mean)
    else:
        weights = np.asarray(spec.weights if spec.weights is not None else [1.0] * len(spec.values), float)
        mean = float(np.dot(spec.values, weights) / weights.sum())
    return min(max(mean * scale, spec.min), spec.max)

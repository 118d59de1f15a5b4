"""Fitting the modelled clock's step-cost model on real steps of this machine (least squares).

:func:`measure_steps` runs the run's engine on the wall clock on bursts of requests of several sizes (so the
number of decode sequences, the prefill tokens and the KV context all vary across steps) and records each
step's regressors (:class:`harness.engine.clock.StepFeatures`) with its measured duration (scheduling and
forward). :func:`fit_samples` fits ``seconds = a + b x prefill tokens + c x decode seqs + d x KV context
tokens`` by non-negative least squares, once more after dropping outliers (steps slowed by another process
on a shared machine: residuals beyond 4 robust standard deviations), and reports the fit quality.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.engine.clock import COEFFICIENTS, StepCostModel, StepFeatures
from harness.lengths import sample_lengths
from harness.sizing import engine_config, fit_to_model, max_position, vocab_size
from harness.workload import RequestSpec, prompt_token_ids

BURSTS = (1, 4, 8, 16, 32)   # requests submitted at once: decode batches from 1 to max_num_seqs
OUTLIER_SIGMAS = 4.0


def measure_steps(cfg, seed: int = 0, *, bursts=BURSTS, max_seconds: float = 60.0,
                  progress=None) -> list[tuple[StepFeatures, float]]:
    """(features, seconds) of every step of each burst, on the wall clock (the first step is a warm-up)."""
    import time

    from harness.engine import Engine

    engine = Engine(engine_config(cfg))
    rng = np.random.default_rng([seed, 7])
    vocab, limit = vocab_size(cfg), max_position(cfg)
    samples: list[tuple[StepFeatures, float]] = []
    started, rid, first = time.perf_counter(), 0, True
    for burst in bursts:
        count = min(burst, cfg.engine.max_queue_len)
        prompts = sample_lengths(cfg.workload.prompt, rng, count)
        outputs = sample_lengths(cfg.workload.output, rng, count)
        for i in range(count):
            spec = fit_to_model(RequestSpec(rid, 0, int(prompts[i]), int(outputs[i]), None, 0), limit)
            engine.add_request(rid, prompt_token_ids(seed, rid, spec.prompt_tokens, vocab), spec.output_tokens)
            rid += 1
        while engine.has_unfinished() and time.perf_counter() - started < max_seconds:
            record = engine.step()
            if record is None:
                continue
            if not first:
                samples.append((engine.last_step_features, (record.end_ns - record.start_ns) / 1e9))
            first = False
        if progress is not None:
            progress(f"step-cost fit: burst of {count} done, {len(samples)} steps measured")
    return samples


def _nnls(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    # Columns scaled to unit norm so the solver's tolerance treats a per-token and a per-step term alike.
    scale = np.linalg.norm(x, axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(x / scale, y)
    return coef / scale


def fit_samples(samples: list[tuple[StepFeatures, float]]) -> tuple[StepCostModel, dict[str, Any]]:
    """The step-cost model and its fit quality (R^2, RMSE, relative error of the total, steps used/dropped)."""
    if len(samples) < 2 * len(COEFFICIENTS):
        raise ValueError(f"{len(samples)} steps are too few to fit {len(COEFFICIENTS)} step-cost coefficients")
    x = np.array([f.as_row() for f, _ in samples], dtype=float)
    y = np.array([s for _, s in samples], dtype=float)
    coef = _nnls(x, y)
    resid = y - x @ coef
    mad = float(np.median(np.abs(resid - np.median(resid)))) * 1.4826
    keep = np.abs(resid) <= OUTLIER_SIGMAS * mad if mad > 0 else np.ones(len(y), bool)
    if keep.sum() >= 2 * len(COEFFICIENTS):
        coef = _nnls(x[keep], y[keep])
    model = StepCostModel(**{name: float(c) for name, c in zip(COEFFICIENTS, coef)})
    pred = x @ coef
    total = float(((y - y.mean()) ** 2).sum())
    r2_all = 1.0 - float(((y - pred) ** 2).sum()) / total if total > 0 else 1.0
    yk, pk = y[keep], pred[keep]
    total_k = float(((yk - yk.mean()) ** 2).sum())
    quality = {"steps": int(len(y)), "outliers_dropped": int((~keep).sum()),
               "r2": round(1.0 - float(((yk - pk) ** 2).sum()) / total_k, 4) if total_k > 0 else 1.0,
               "r2_all_steps": round(r2_all, 4),
               "rmse_ms": round(1e3 * float(np.sqrt(((yk - pk) ** 2).mean())), 3),
               "mean_step_ms": round(1e3 * float(y.mean()), 3),
               "total_ratio": round(float(pred.sum() / y.sum()), 4) if y.sum() > 0 else None,
               "feature_ranges": {name: [int(x[:, i].min()), int(x[:, i].max())] for i, name in
                                  enumerate(("const", "prefill_tokens", "decode_seqs", "kv_context_tokens")) if i}}
    return model, quality


def fit_step_cost(cfg, seed: int = 0, *, progress=None) -> tuple[StepCostModel, dict[str, Any]]:
    """Measure real steps of ``cfg``'s engine on this machine now and fit the model (see the module)."""
    return fit_samples(measure_steps(cfg, seed, progress=progress))

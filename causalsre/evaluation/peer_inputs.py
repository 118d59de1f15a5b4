"""What the peers of ``eval petshop`` need beyond their packages, so that they run on PetShop's data at all:
a fast linear mechanism for DoWhy gcm, and a full-rank column set for RCAEval's PC-based methods."""

from __future__ import annotations

import numpy as np
import pandas as pd


def least_squares():
    """A linear regressor in DoWhy's ``gcm.ml.PredictionModel`` interface (fit, predict, clone), fitted by
    numpy least squares: the same model as ``gcm.ml.create_linear_regressor()`` (ordinary least squares with
    an intercept) without scikit-learn's per-call input validation, which gcm pays for every node of every
    Shapley evaluation (a quarter of an incident's time in the profile)."""
    from dowhy.gcm.ml import PredictionModel

    class LeastSquares(PredictionModel):
        coefficients = None

        def fit(self, X, Y):
            X = np.column_stack([np.ones(len(X)), np.asarray(X, float).reshape(len(X), -1)])
            self.coefficients = np.linalg.lstsq(X, np.asarray(Y, float).reshape(len(X), -1), rcond=None)[0]

        def predict(self, X):
            X = np.asarray(X, float).reshape(len(X), -1)
            return (X @ self.coefficients[1:] + self.coefficients[0]).reshape(-1, 1)

        def clone(self):
            return LeastSquares()

    return LeastSquares()


def full_rank(data: pd.DataFrame, tolerance: float = 1e-6) -> tuple[list[str], dict[str, list[str]]]:
    """Columns of ``data`` (kept in their order) whose centred, scaled values are linearly independent, and
    for each kept column the dropped ones that are (within ``tolerance``) combinations of the kept, filed
    under the kept column they correlate with most. On PetShop's availability data (most services at 100 %
    but for two to four rows) a handful of sparse columns span the same few rows, so the correlation matrix
    is singular and the PC algorithm's Fisher-z test refuses it; a dropped column holds nothing the kept
    ones do not, so it is ranked right behind its closest kept column."""
    values = data.to_numpy(float)
    values = values - values.mean(axis=0)
    scale = np.linalg.norm(values, axis=0)
    kept_idx, basis, dropped = [], np.zeros((len(values), 0)), []
    for j in range(values.shape[1]):
        if scale[j] == 0:
            continue  # constant: RCAEval drops these itself
        column = values[:, j] / scale[j]
        residual = column - basis @ (basis.T @ column)
        if np.linalg.norm(residual) > tolerance:
            basis = np.column_stack([basis, residual / np.linalg.norm(residual)])
            kept_idx.append(j)
        else:
            dropped.append(j)
    names = list(data.columns)
    kept = [names[j] for j in kept_idx] + [names[j] for j in range(len(names)) if scale[j] == 0]
    twins: dict[str, list[str]] = {}
    for j in dropped:
        nearest = max(kept_idx, key=lambda k: abs(float(values[:, j] @ values[:, k])) / scale[k])
        twins.setdefault(names[nearest], []).append(names[j])
    return kept, twins

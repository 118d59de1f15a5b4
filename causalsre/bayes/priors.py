"""The burn model's priors and sampler settings, read from a TOML file under ``models/priors/``.

The file is plain text with a comment on each choice; this module only validates it (unknown keys and
impossible values are user errors) and hashes it, so a saved fit records exactly which priors it used.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from causalsre.errors import UserError
from causalsre.safeio import load_toml, regular_file
from causalsre.resources import BURN_PRIORS

DEFAULT_PRIORS = BURN_PRIORS  # models/priors/burn_logistic.toml, shipped as package data


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSection(_Strict):
    version: int = Field(ge=1)


class InterceptPrior(_Strict):
    mu: float = -3.0
    sigma: float = Field(2.0, gt=0)


class CoefficientPrior(_Strict):
    sigma: float = Field(1.0, gt=0)
    quadratic_sigma: float = Field(0.5, gt=0)
    interaction_sigma: float = Field(0.5, gt=0)
    interactions: bool = True


class PoolingPrior(_Strict):
    run_sigma: float = Field(1.0, gt=0)
    window_sigma: float = Field(1.0, gt=0)
    phase_sigma: float = Field(1.0, gt=0)
    tenant_sigma: float = Field(0.5, gt=0)
    min_levels: int = Field(3, ge=2)
    centred_min_requests: int = Field(2000, ge=1)


class NoisePrior(_Strict):
    sigma: float = Field(1.0, gt=0)


class DiscretiseSettings(_Strict):
    max_levels: int = Field(8, ge=2)
    bins: int = Field(6, ge=2)


class SamplerSettings(_Strict):
    draws: int = Field(500, ge=10)
    tune: int = Field(500, ge=10)
    chains: int = Field(2, ge=1)
    target_accept: float = Field(0.9, gt=0.5, lt=1.0)


class Priors(_Strict):
    model: ModelSection
    intercept: InterceptPrior = InterceptPrior()
    coefficients: CoefficientPrior = CoefficientPrior()
    pooling: PoolingPrior = PoolingPrior()
    noise: NoisePrior | None = None   # the latency model's residual scale; unused by the burn model
    discretise: DiscretiseSettings = DiscretiseSettings()
    sampler: SamplerSettings = SamplerSettings()

    def config_hash(self, *extra: Any) -> str:
        """A stable hash of these priors plus anything else that defines the model (factors, SLO)."""
        payload = json.dumps([self.model_dump(), *extra], sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_priors(path: str | Path | None = None) -> Priors:
    """Read and validate a priors file (the shipped ``burn_logistic.toml`` when ``path`` is None)."""
    path = Path(path) if path is not None else DEFAULT_PRIORS
    regular_file(path, what="priors file", missing_fix="give a TOML file like models/priors/burn_logistic.toml")
    raw = load_toml(path, what="priors file")  # bounded size, UTF-8, nesting: causalsre.safeio
    try:
        return Priors.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"priors file {path}: {where}: {first['msg']}", "see models/priors/burn_logistic.toml") from None

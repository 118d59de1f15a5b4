"""Convergence diagnostics every report shows: worst r_hat, smallest bulk/tail ESS, divergences."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import arviz as az
import numpy as np

R_HAT_LIMIT = 1.01     # Vehtari et al. (2021): above 1.01 the chains disagree
ESS_PER_CHAIN = 100    # below 100 per chain the tail quantiles (our 90 % intervals) are unreliable


@dataclass
class Diagnostics:
    sampler: str
    max_r_hat: float | None
    min_ess_bulk: float | None
    min_ess_tail: float | None
    divergences: int
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.warnings

    def to_dict(self) -> dict:
        return asdict(self)

    def one_line(self) -> str:
        if self.max_r_hat is None:
            return f"sampler {self.sampler}: prior draws only, no convergence diagnostics"
        return (f"sampler {self.sampler}: max r_hat {self.max_r_hat:.3f}, min ESS bulk {self.min_ess_bulk:.0f} / "
                f"tail {self.min_ess_tail:.0f}, divergences {self.divergences}")


def diagnose(idata: az.InferenceData) -> Diagnostics:
    """Diagnostics of a fit; prior-only fits have none (and say so instead of reporting fake numbers)."""
    posterior = idata.posterior
    sampler = str(posterior.attrs.get("sampler", "unknown"))
    if sampler == "prior":
        return Diagnostics(sampler, None, None, None, 0, ["prior draws only: the model was not fitted to data"])
    # Constants (the fixed sigma of a group with too few levels) have no r_hat or ESS to speak of.
    names = [n for n in posterior.data_vars if not n.startswith("effect_") and float(posterior[n].std()) > 0]
    chains = posterior.sizes["chain"]
    r_hat = az.rhat(posterior[names]) if chains > 1 else None
    ess_bulk = az.ess(posterior[names], method="bulk")
    ess_tail = az.ess(posterior[names], method="tail")

    def extreme(ds, fn) -> float:
        return float(fn([np.nanmax(v.values) if fn is max else np.nanmin(v.values) for v in ds.data_vars.values()]))

    max_r_hat = extreme(r_hat, max) if r_hat is not None else float("nan")
    min_bulk, min_tail = extreme(ess_bulk, min), extreme(ess_tail, min)
    divergences = 0
    if "sample_stats" in idata and "diverging" in idata.sample_stats:
        divergences = int(idata.sample_stats["diverging"].values.sum())
    warnings = []
    if chains < 2:
        warnings.append("one chain only: r_hat cannot be computed; run at least 2 chains")
    elif not max_r_hat <= R_HAT_LIMIT:
        warnings.append(f"max r_hat {max_r_hat:.3f} > {R_HAT_LIMIT}: chains have not converged; sample longer")
    if min(min_bulk, min_tail) < ESS_PER_CHAIN * chains:
        warnings.append(f"effective sample size {min(min_bulk, min_tail):.0f} < {ESS_PER_CHAIN * chains}: "
                        "interval ends are noisy; draw more samples")
    if divergences:
        warnings.append(f"{divergences} divergent transitions: estimates may be biased; raise target_accept")
    return Diagnostics(sampler, max_r_hat, min_bulk, min_tail, divergences, warnings)

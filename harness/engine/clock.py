"""The engine's modelled clock: a step-cost model instead of the wall clock, for evaluating policies.

On a shared machine the wall-clock time of a step moves with everything else the machine runs, so two
policies run a minute apart see different machines. Scheduler studies (Vidur, Sarathi-Serve's simulator)
evaluate policies on a clock driven by a cost model of each iteration instead; here the engine still runs
every real forward pass (the tokens are unchanged), but under ``clock = "modelled"`` its clock
(:meth:`harness.engine.engine.Engine.now_ns`) advances by

    cost_s = base_s + prefill_token_s x prefill tokens + decode_seq_s x decode sequences
             + kv_token_s x KV context tokens attended + the step-delay fault's seconds

per step, and by the gap to the next arrival when idle (the driver jumps there: nothing sleeps). The
coefficients are fitted once on real steps (:mod:`harness.clock_fit`). Pure Python: no torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from harness.engine.errors import UserError

CLOCKS = ("wall", "modelled")
COEFFICIENTS = ("base_s", "prefill_token_s", "decode_seq_s", "kv_token_s")


@dataclass(frozen=True, slots=True)
class StepFeatures:
    """What one step computed: the regressors of the cost model."""

    prefill_tokens: int      # prompt tokens in this step's prefill chunks
    decode_seqs: int         # sequences decoding one token
    kv_context_tokens: int   # tokens every chunk attends to (its cached context plus itself), summed

    def as_row(self) -> tuple[float, float, float, float]:
        return (1.0, float(self.prefill_tokens), float(self.decode_seqs), float(self.kv_context_tokens))


@dataclass(frozen=True, slots=True)
class StepCostModel:
    """Seconds per step, linear in :class:`StepFeatures`; every coefficient finite and >= 0."""

    base_s: float
    prefill_token_s: float
    decode_seq_s: float
    kv_token_s: float

    def __post_init__(self) -> None:
        for name in COEFFICIENTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0 or value > 10.0:
                raise UserError(f"step-cost coefficient {name} = {value!r} is not a number in [0, 10] seconds",
                                "fit the model with harness.clock_fit.fit_step_cost or give seconds >= 0")

    def cost_ns(self, features: StepFeatures) -> int:
        """Nanoseconds of one step (at least 1, so modelled time always moves forward)."""
        seconds = sum(c * x for c, x in zip(self.coefficients(), features.as_row()))
        return max(1, int(round(seconds * 1e9)))

    def coefficients(self) -> tuple[float, float, float, float]:
        return tuple(getattr(self, name) for name in COEFFICIENTS)  # type: ignore[return-value]

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> StepCostModel:
        if not isinstance(data, dict):
            raise UserError("a step-cost model must be a mapping of its coefficients",
                            f"give {', '.join(COEFFICIENTS)}")
        missing = [name for name in COEFFICIENTS if name not in data]
        if missing:
            raise UserError(f"the step-cost model lacks {', '.join(missing)}", f"give {', '.join(COEFFICIENTS)}")
        return cls(**{name: data[name] for name in COEFFICIENTS})

"""The documented ranges a generated scenario is drawn from (docs/evaluation.md, "Generated suites").

Every fault magnitude is a ``(mild, severe)`` pair and a *severity* u in [0, 1] picks a value between them
(geometrically for the multiplicative ones), so "magnitude up" on a re-draw is one rule for every kind: move
u halfway to 1. The fault kinds themselves come from the harness (``FAULT_FACTORS`` and ``PUSHABLE_KNOBS``),
so a kind or knob added there is drawn here too; a knob without its own range below gets the generic push
(numbers down to 10-40 % of the base value, a flag flipped, another choice of a categorical).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.config import PUSHABLE_KNOBS, EngineSection
from harness.engine.settings import TIERED_POLICIES
from harness.faults import FAULT_FACTORS

PUSH = "config_push"
PHASE_S = (10.0, 16.0)            # each of baseline and incident: a 20-32 s run
ONSET_DELAY_S = (0.0, 2.0)        # the fault starts this long after the incident window opens (an alert's lag)
LOAD_FRACTION = (0.2, 0.5)        # base offered load, as a fraction of the calibrated capacity
PROMPT_MEAN = (48.0, 160.0)       # lognormal prompt length: mean tokens...
PROMPT_SIGMA = (0.3, 0.8)         # ...and sigma of the log-length
OUTPUT_LOW = (8, 24)              # uniform output length: low end...
OUTPUT_SPAN = (8, 40)             # ...and high - low
TENANTS = (1, 3)                  # tenants in the base mix, weights 1-4, priorities 0-1
TENANT_NAMES = ("interactive", "batch", "api")
DRAIN_S = 4.0                     # after arrivals stop, in-flight requests get this long, then are aborted
MAX_REDRAWS = 3                   # per scenario: magnitude up, fresh draw, magnitude up (see generate.py)
FLOOD_OUTPUT = (32, 128)          # a flooding tenant's fixed output length
MIN_PHASE_REQUESTS = 5            # a scenario whose baseline or incident has fewer requests is re-drawn

# (mild, severe, scale): "log" interpolates geometrically, "lin" linearly; ints are rounded.
MAGNITUDES: dict[str, tuple[float, float, str]] = {
    "rate_surge": (1.5, 4.0, "log"),          # factor on the offered rate
    "burstier": (0.3, 0.02, "log"),           # gamma shape during the fault (1 = Poisson)
    "longer_prompts": (3.0, 12.0, "log"),     # factor on prompt lengths
    "longer_outputs": (2.0, 6.0, "log"),      # factor on output lengths
    "tenant_flood": (0.5, 1.5, "lin"),        # the new tenant's load, a fraction of capacity
    "step_delay": (0.005, 0.060, "log"),      # seconds added to every engine step
    # 2-core machine: fewer busy processes than cores barely contend, so the range starts at 2.
    "cpu_contention": (2, 6, "lin"),          # busy processes
    "kv_shrink": (0.40, 0.10, "lin"),         # share of the base KV blocks left
    "fewer_threads": (1, 1, "lin"),           # threads left (the base gets 2 for this kind only)
}
PUSH_MAGNITUDES: dict[str, tuple[float, float, str]] = {
    "max_num_seqs": (4, 1, "lin"),                  # from 16
    "max_num_batched_tokens": (64, 16, "log"),      # token budget per step, from 256
    "chunk_size": (8, 1, "log"),                    # prefill chunk, from 64
    "request_timeout_s": (1.0, 0.2, "log"),         # from 20 s: slower requests fail
    "max_queue_len": (4, 1, "lin"),                 # from 64: arrivals beyond it are rejected
    "num_kv_blocks": (0.40, 0.10, "lin"),           # share of the base blocks, as kv_shrink
}
GENERIC_SHARE = (0.40, 0.10)                        # numeric knob without its own range: share of its base value


def fault_kinds() -> list[str]:
    """Every kind a scenario may draw: the harness's fault kinds, and a config push of every pushable knob."""
    return sorted(FAULT_FACTORS) + [f"{PUSH}:{knob}" for knob in sorted(PUSHABLE_KNOBS)]


def factor_of(kind: str) -> str:
    """The ground-truth factor a kind changes (two kinds on one factor never share a scenario)."""
    return kind.split(":", 1)[1] if kind.startswith(f"{PUSH}:") else FAULT_FACTORS[kind][1]


def _between(mild: float, severe: float, scale: str, u: float) -> float:
    if scale == "log":
        return math.exp(math.log(mild) + u * (math.log(severe) - math.log(mild)))
    return mild + u * (severe - mild)


def _generic_push(knob: str, base: Any, u: float, rng: np.random.Generator) -> Any:
    if isinstance(base, bool):
        return not base
    if isinstance(base, (int, float)):
        value = base * _between(*GENERIC_SHARE, "lin", u)
        return max(1, round(value)) if isinstance(base, int) else value
    annotation = EngineSection.model_fields[knob].annotation
    choices = [c for c in getattr(annotation, "__args__", ()) if c != base]
    if knob == "policy":  # a generated scenario has no tiers, which edf and budget need
        choices = [c for c in choices if c not in TIERED_POLICIES]
    return str(rng.choice(choices)) if choices else base


def push_value(knob: str, base: Any, u: float, rng: np.random.Generator) -> Any:
    """The value a config push of ``knob`` sets, at severity ``u``, from the base value ``base``."""
    if knob not in PUSH_MAGNITUDES:
        return _generic_push(knob, base, u, rng)
    mild, severe, scale = PUSH_MAGNITUDES[knob]
    value = _between(mild, severe, scale, u)
    if knob == "num_kv_blocks":
        return max(1, round(base * value))
    return round(value) if isinstance(base, int) else round(value, 3)


@dataclass(frozen=True)
class FaultDraw:
    """One drawn cause: its kind, severity, and (for a flood) the new tenant's shape."""

    kind: str
    severity: float
    delay_s: float
    flood_output: int = 64
    flood_priority: int = 0

    def raised(self) -> "FaultDraw":
        """The same cause, halfway to its most severe value (a re-draw after a fault that did not burn)."""
        return FaultDraw(self.kind, (1.0 + self.severity) / 2, self.delay_s, self.flood_output, self.flood_priority)

    def has_magnitude(self) -> bool:
        """False for causes a higher severity cannot change (a flag, a choice, a thread count)."""
        if self.kind.startswith(f"{PUSH}:"):
            knob = self.kind.split(":", 1)[1]
            base = getattr(EngineSection(), knob)
            return knob in PUSH_MAGNITUDES or (isinstance(base, (int, float)) and not isinstance(base, bool))
        mild, severe, _ = MAGNITUDES[self.kind]
        return mild != severe

    def spec(self, onset_s: float, engine: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """The harness fault table (``[[faults]]`` entry) for this draw."""
        at = round(onset_s + self.delay_s, 2)
        if self.kind.startswith(f"{PUSH}:"):
            knob = self.kind.split(":", 1)[1]
            return {"kind": PUSH, "at_s": at, "knobs": {knob: push_value(knob, engine[knob], self.severity, rng)}}
        mild, severe, scale = MAGNITUDES[self.kind]
        value = _between(mild, severe, scale, self.severity)
        fault: dict[str, Any] = {"kind": self.kind, "at_s": at}
        if self.kind in ("rate_surge", "longer_prompts", "longer_outputs"):
            fault["factor"] = round(value, 3)
        elif self.kind == "burstier":
            fault["burstiness"] = round(value, 4)
        elif self.kind == "tenant_flood":
            fault.update(tenant="flood", load_fraction=round(value, 3), priority=self.flood_priority,
                         output={"dist": "fixed", "value": self.flood_output})
        elif self.kind == "step_delay":
            fault["delay_s"] = round(value, 4)
        elif self.kind == "cpu_contention":
            fault["workers"] = round(value)
        elif self.kind == "kv_shrink":
            fault["num_kv_blocks"] = max(1, round(engine["num_kv_blocks"] * value))
        elif self.kind == "fewer_threads":
            fault["num_threads"] = round(value)
        else:  # a fault kind the harness gained after this table: say so rather than guess its parameters
            from causalsre.errors import UserError

            raise UserError(f"the generator has no range for fault kind {self.kind!r}",
                            "add one to causalsre/evaluation/ranges.py MAGNITUDES")
        return fault


def ranges_table() -> dict[str, Any]:
    """Every range, JSON-ready, for the manifest (so a suite says what it was drawn from)."""
    return {"phase_s": PHASE_S, "onset_delay_s": ONSET_DELAY_S, "load_fraction": LOAD_FRACTION,
            "prompt_mean": PROMPT_MEAN, "prompt_sigma": PROMPT_SIGMA, "output_low": OUTPUT_LOW,
            "output_span": OUTPUT_SPAN, "tenants": TENANTS, "drain_s": DRAIN_S, "max_redraws": MAX_REDRAWS,
            "min_phase_requests": MIN_PHASE_REQUESTS,
            "flood_output": FLOOD_OUTPUT,
            "magnitudes": {k: {"mild": m, "severe": s, "scale": sc} for k, (m, s, sc) in MAGNITUDES.items()},
            "push_magnitudes": {k: {"mild": m, "severe": s, "scale": sc} for k, (m, s, sc) in PUSH_MAGNITUDES.items()},
            "generic_push_share": GENERIC_SHARE, "kinds": fault_kinds()}

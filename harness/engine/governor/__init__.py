"""The budget governor: error budgets as control variables of the engine (docs/methods/governor.md).

Pure Python, no torch: each component (online SLO counters, admission, ordering, batching depth, the
output-length predictor, the reliability buffer) is a small class tested alone; :class:`Governor` wires
them together and the scheduler calls it.
"""

from harness.engine.governor.config import DEFAULT_TIER, GovernorConfig, TierSpec

__all__ = ["DEFAULT_TIER", "GovernorConfig", "TierSpec"]

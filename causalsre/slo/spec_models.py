"""The parsed form of an OpenSLO objective: :class:`SLOSpec`, its good-event :class:`Condition` s and its
:class:`TimeWindow`. Part of :mod:`causalsre.slo.spec` (the parser), which re-exports every name here.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from causalsre.slo.durations import Duration
from causalsre.slo.windows import AlertWindows


# OpenSLO spells comparisons lt/lte/gt/gte; le/ge/eq/ne are accepted as well.
OPERATORS = {"lt": "<", "lte": "<=", "le": "<=", "gt": ">", "gte": ">=", "ge": ">=", "eq": "=", "ne": "<>"}
BudgetingMethod = Literal["Occurrences", "Timeslices", "RatioTimeslices"]


class Condition(BaseModel):
    """One good-event condition: ``metric op value`` over a request_metrics column."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    op: str
    value: float | bool | str

    @field_validator("op")
    @classmethod
    def _known_op(cls, op: str) -> str:
        if op not in OPERATORS:
            raise ValueError(f"unknown op {op!r}; use one of {', '.join(OPERATORS)}")
        return op

    @property
    def sql_operator(self) -> str:
        return OPERATORS[self.op]


class TimeWindow(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    duration: Duration
    is_rolling: bool = True
    calendar_start: datetime | None = None
    time_zone: str = "UTC"


class SLOSpec(BaseModel):
    """One SLO objective, ready to compute."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    objective: float = Field(gt=0.0, lt=1.0)
    conditions: tuple[Condition, ...] = ()
    window: TimeWindow
    budgeting_method: BudgetingMethod = "Occurrences"
    time_slice_target: float | None = None
    time_slice_window: Duration | None = None
    display_name: str | None = None
    service: str | None = None
    alert_windows: AlertWindows | None = None
    has_request_conditions: bool = True  # False when the metric source is not causalsre
    source: str = ""

    @property
    def error_budget(self) -> float:
        """1 - objective, computed in decimal so that 0.99 gives 0.01 rather than 0.010000000000000009."""
        return float(Decimal(1) - Decimal(repr(self.objective)))

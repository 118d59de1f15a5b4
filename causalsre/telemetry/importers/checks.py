"""Checking the numbers and times of an import file: one rule each, named in the error it raises."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pandas as pd

from causalsre.errors import UserError
from causalsre.times import iso_text, time_text_fix

NS = 1_000_000_000
# Wall-clock times outside [2000, 2200) are unit mistakes (ms or ns read as s) or corrupt files.
MIN_EPOCH_S = 946_684_800.0
MAX_EPOCH_S = 7_258_118_400.0
MAX_LATENCY_S = 7 * 24 * 3600.0  # a request that took longer than a week is a unit mistake
MAX_TOKENS = 100_000_000


def number(value: object, where: str, *, minimum: float | None = 0.0, maximum: float | None = None,
           allow_none: bool = False) -> float | None:
    """``value`` as a finite float in [minimum, maximum]; UserError naming ``where`` otherwise."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{where}: {value!r} is not a number", "give an unmodified file from the tool")
    result = float(value)
    if not math.isfinite(result):
        raise UserError(f"{where}: {value!r} is not a finite number", "give an unmodified file from the tool")
    if minimum is not None and result < minimum:
        raise UserError(f"{where}: {value!r} is below {minimum:g}", "values here cannot be negative")
    if maximum is not None and result > maximum:
        raise UserError(f"{where}: {value!r} is above {maximum:g}", "check the unit of the value")
    return result


def epoch_seconds(value: object, where: str) -> float:
    """A wall-clock time in seconds since 1970, refused outside the years 2000-2199."""
    seconds = number(value, where, minimum=None)
    if not MIN_EPOCH_S <= seconds < MAX_EPOCH_S:
        raise UserError(f"{where}: {value!r} is not a time between 2000 and 2200 (epoch seconds)",
                        "give times in seconds since 1970, not milliseconds or nanoseconds")
    return seconds


def parse_time(text: str, where: str) -> float:
    """ISO 8601 (UTC when no offset is given) or epoch seconds -> epoch seconds, range-checked."""
    text = str(text).strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        return epoch_seconds(seconds, where)
    known = time_text_fix(text)
    if known is not None:
        raise UserError(f"{where}: {text!r} {known[0]}", known[1])
    try:
        stamp = pd.Timestamp(iso_text(text))
    except (ValueError, TypeError, OverflowError):
        raise UserError(f"{where}: cannot parse {text!r} as a time",
                        "use ISO 8601 (2026-01-31T12:00:00Z) or epoch seconds") from None
    if stamp is pd.NaT:
        raise UserError(f"{where}: cannot parse {text!r} as a time", "use ISO 8601 or epoch seconds")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return epoch_seconds(stamp.timestamp(), where)


def to_datetime(epoch_s: float) -> datetime:
    """Naive UTC datetime (the schema's TIMESTAMP convention)."""
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).replace(tzinfo=None)

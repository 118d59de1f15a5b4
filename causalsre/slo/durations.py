"""OpenSLO durations (``30d``, ``2w``, ``1M``) and the period a time window covers at a given moment.

OpenSLO v1 writes a duration as a whole number and one unit letter: s, m (minutes), h, d, w, M (months),
Q (quarters), Y (years). ``m`` is minutes and ``M`` months; reading them the other way round is the classic
mistake, so :mod:`causalsre.slo.check` warns about periods that look like it. A duration is at most 100
years (``100Y``, ``1200M``, ``36500d``) and every instant lies in years 1970..2200 (:mod:`causalsre.times`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta

from causalsre.errors import UserError
from causalsre.times import MAX_DURATION_S, MAX_DURATION_YEARS, check_instant, parse_instant, to_utc_naive

__all__ = ["Duration", "calendar_period", "parse_duration", "parse_time", "to_utc_naive", "zone"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdwMQY])\s*$")
_FIXED_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Nominal lengths of the calendar units, used for rolling windows and alert-window arithmetic
# (Sloth and the SRE Workbook treat a month as 30 days).
_NOMINAL_SECONDS = {**_FIXED_SECONDS, "M": 30 * 86400, "Q": 90 * 86400, "Y": 365 * 86400}
_CALENDAR_MONTHS = {"M": 1, "Q": 3, "Y": 12}


@dataclass(frozen=True, slots=True)
class Duration:
    """A duration as written in a spec: ``count`` units of ``unit``."""

    count: int
    unit: str

    @property
    def seconds(self) -> float:
        """Nominal length in seconds (a month is 30 days, a quarter 90, a year 365)."""
        return float(self.count * _NOMINAL_SECONDS[self.unit])

    @property
    def timedelta(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    @property
    def is_calendar_unit(self) -> bool:
        return self.unit in _CALENDAR_MONTHS

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


def parse_duration(text: object, *, what: str = "duration") -> Duration:
    """Parse ``30d``/``5m``/``1M``; raises UserError naming ``what`` for anything else."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        shown = type(text).__name__ if isinstance(text, (list, dict)) else repr(text)
        raise UserError(f"{what} {shown} is not a duration", "write a number and a unit, e.g. 30d, 1h, 5m, 1M")
    match = _DURATION.match(str(text)) if len(str(text)) <= 32 else None
    if not match:
        shown = repr(text) if len(str(text)) <= 32 else f"{str(text)[:32]!r}..."
        raise UserError(
            f"{what} {shown} is not a duration",
            "write a whole number and one unit of s, m (minutes), h, d, w, M (months), Q, Y, e.g. 30d",
        )
    count = int(match.group(1))
    if count <= 0:
        raise UserError(f"{what} {text!r} must be longer than zero", "use a positive duration such as 30d")
    duration = Duration(count, match.group(2))
    if duration.seconds > MAX_DURATION_S:
        raise UserError(f"{what} {text!r} is longer than {MAX_DURATION_YEARS} years",
                        f"use a duration of at most {MAX_DURATION_YEARS}Y")
    return duration


def parse_time(text: str | datetime, *, what: str = "time") -> datetime:
    """An ISO-8601 time (naive means UTC) as a naive UTC datetime in years 1970..2200."""
    return parse_instant(text, what=what)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"unknown time zone {name!r}", "use an IANA name such as UTC or America/New_York") from None


def check_wall_clock(start: datetime, tz_name: str, *, what: str) -> None:
    """A naive ``start`` must name one instant in ``tz_name``: a wall-clock time skipped at a daylight-saving
    change (02:30 on the night clocks go from 02:00 to 03:00) or one that happens twice (the night they go
    back) was taken silently with one of the offsets, so the first period began an hour off."""
    if start.tzinfo is not None:
        return
    tz = zone(tz_name)
    first, second = start.replace(tzinfo=tz, fold=0), start.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return
    shown = start.isoformat(sep=" ")
    if first.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None) != start:
        later = (first.astimezone(timezone.utc).astimezone(tz)).replace(tzinfo=None).isoformat(sep=" ")
        raise UserError(f"{what} {shown} does not exist in {tz_name}: the clocks jump over it at a daylight-saving "
                        "change", f"write a time that exists, e.g. {later}, or give the UTC offset")
    raise UserError(f"{what} {shown} happens twice in {tz_name}: the clocks go back over it",
                    f"write it with its UTC offset: {start.isoformat()}{_offset(first)} for the first time, "
                    f"{start.isoformat()}{_offset(second)} for the second")


def _offset(moment: datetime) -> str:
    total = int(moment.utcoffset().total_seconds() // 60)
    sign, total = ("-" if total < 0 else "+"), abs(total)
    return f"{sign}{total // 60:02d}:{total % 60:02d}"


def calendar_period(duration: Duration, start: datetime, tz_name: str, at: datetime) -> tuple[datetime, datetime]:
    """The calendar period [begin, end) that contains ``at`` (naive UTC), as naive UTC datetimes.

    Periods repeat every ``duration`` from ``start`` (a wall-clock time in ``tz_name``); months, quarters
    and years step by calendar months so that "1M" means each real month, whatever its length.
    """
    tz = zone(tz_name)
    check_instant(to_utc_naive(start) if start.tzinfo else start, what="calendar.startTime")
    check_instant(at, what="the evaluation time")
    anchor = start.replace(tzinfo=tz) if start.tzinfo is None else start.astimezone(tz)
    at_local = at.replace(tzinfo=timezone.utc).astimezone(tz)

    def nth(k: int) -> datetime:
        if duration.is_calendar_unit:
            return anchor + relativedelta(months=k * duration.count * _CALENDAR_MONTHS[duration.unit])
        # Fixed units step in wall-clock time, so a daily period stays aligned across DST changes.
        return anchor + relativedelta(seconds=int(k * duration.seconds))

    # Estimate the index from the nominal length, then correct by stepping (at most a few steps).
    k = int((at_local - anchor).total_seconds() // duration.seconds)
    while nth(k) > at_local:
        k -= 1
    while nth(k + 1) <= at_local:
        k += 1
    return to_utc_naive(nth(k)), to_utc_naive(nth(k + 1))

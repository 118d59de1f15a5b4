"""The one parser for the instants and durations a user writes, with one documented range.

Instants (``--at``, analysis windows ``START/END``, an SLO calendar's ``startTime``, a vLLM file's ``date``)
must fall in years 1970..2200: telemetry is stored as naive UTC timestamps, pandas holds nanoseconds
(years 1677..2262) and Python's ``datetime`` overflows at years 1 and 9999 as soon as an offset is applied,
so anything outside that range is a typo or an attack, and it gets a one-line error here rather than an
``OverflowError`` or ``OutOfBoundsDatetime`` traceback later. Durations (SLO periods, alert windows, time
slices) must be positive and at most 100 years, so that ``at - period - lookback`` stays in range too.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, timezone

from causalsre.errors import UserError

FIRST_YEAR = 1970
LAST_YEAR = 2200
EARLIEST = datetime(FIRST_YEAR, 1, 1)
LATEST = datetime(LAST_YEAR, 12, 31, 23, 59, 59, 999999)
MAX_DURATION_YEARS = 100
MAX_DURATION_S = MAX_DURATION_YEARS * 365 * 86400
_RANGE = f"years {FIRST_YEAR}..{LAST_YEAR}"
_EXAMPLE = "write an ISO-8601 time such as 2026-11-28T00:00:00Z"


# A time of day followed by a UTC offset or zone letter: 2026-01-31T12:00:00+02:00, ...T12:00Z, ... 12:00 UTC.
# The time of day is required, so a bare date's "-31" is never read as an offset.
OFFSET_PATTERN = r"[Tt ]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)\s*$"
_OFFSET = re.compile(OFFSET_PATTERN)
MIXED_FIX = ("a time without an offset is read as UTC, which the times with offsets suggest it is not: give every "
             "time an offset (Z for UTC), or none")


def has_offset(text: str) -> bool:
    """Whether an ISO-8601 time names its offset (``Z``, ``+02:00``, ``UTC``): naive times are read as UTC."""
    return bool(_OFFSET.search(text))


def mixed_offsets(texts) -> tuple[int, int] | None:
    """(first with an offset, first without) among ISO-8601 time texts when both kinds occur, else None.

    One column (or one file's time column) mixing the two is refused by the importers: a naive time is read as
    UTC by the documented rule, and beside times that carry, say, ``-05:00`` it is most likely local time, so
    reading it as UTC would shift those rows by hours without a word. Epoch seconds are absolute: give None
    for them in ``texts`` (they count as neither kind).
    """
    aware = naive = None
    for index, text in enumerate(texts):
        if text is None:
            continue
        if has_offset(text):
            aware = index if aware is None else aware
        else:
            naive = index if naive is None else naive
        if aware is not None and naive is not None:
            return aware, naive
    return None


def to_utc_naive(moment: datetime) -> datetime:
    """Aware datetimes converted to UTC and made naive; naive ones are UTC already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def check_instant(moment: datetime, *, what: str = "time") -> datetime:
    """``moment`` (naive UTC) if it lies in the supported range, else a UserError naming ``what``."""
    if not EARLIEST <= moment <= LATEST:
        raise UserError(f"{what} {moment.isoformat()} is outside the supported range ({_RANGE})",
                        f"give a time between {FIRST_YEAR} and {LAST_YEAR}")
    return moment


def parse_instant(text: object, *, what: str = "time", keep_offset: bool = False) -> datetime:
    """An ISO-8601 instant (``Z`` or an offset; naive means UTC) as a naive UTC datetime in range.

    ``keep_offset`` returns the time as written (naive or with its offset), still range-checked in UTC:
    an SLO calendar's naive ``startTime`` is a wall-clock time in its own zone, not UTC.
    """
    if isinstance(text, datetime):
        moment = text
    elif isinstance(text, date):
        moment = datetime(text.year, text.month, text.day)
    elif isinstance(text, str) and len(text) <= 64:
        try:
            moment = datetime.fromisoformat(iso_text(text).replace("Z", "+00:00"))
        except ValueError as exc:
            raise _not_iso(text, what, str(exc)) from None
    else:
        shown = repr(text) if isinstance(text, (str, int, float)) and len(repr(text)) <= 80 else type(text).__name__
        raise UserError(f"{what} {shown} is not an ISO 8601 time", _EXAMPLE)
    try:
        # Converting 0001-01-01T00:00+01:00 or 9999-12-31T23:00-05:00 to UTC overflows datetime.
        utc = to_utc_naive(moment)
    except (OverflowError, ValueError):
        raise UserError(f"{what} {text!s} is outside the supported range ({_RANGE})",
                        f"give a time between {FIRST_YEAR} and {LAST_YEAR}") from None
    check_instant(utc, what=what)
    return moment if keep_offset else utc


# Midnight at the end of a day, as ISO 8601:2004 allowed and Python does not read: 2026-11-28T24:00[:00[.000]].
_MIDNIGHT_24 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ]24(?::00(?::00(?:[.,]0+)?)?)?(\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)$")
_EPOCH = re.compile(r"^\d{9,11}(?:\.\d*)?$")  # seconds since 1970 for years 1973..5138


# A leap second (23:59:60, which UTC had 27 times) and a zone written by name (Europe/Berlin, CEST): Python's
# and pandas' parsers read neither, and the error said "use ISO 8601" of a time that was ISO 8601.
_LEAP_SECOND = re.compile(r"[Tt ](\d{2}:\d{2}):60(?:[.,]\d+)?")
_ZONE_NAME = re.compile(r"\d\s*(?:\[?[A-Za-z]+/[A-Za-z_+-]+(?:/[A-Za-z_+-]+)?\]?|[A-Z]{3,4}(?<!UTC)(?<!GMT))$")


_UTC_WORD = re.compile(r"(\d)(\s*[+-]\d{2}:?\d{2})?\s*(?:UTC|GMT)$")
_LOWER_T = re.compile(r"^(\d{4}-\d{2}-\d{2})t")
_COMMA_FRACTION = re.compile(r"(:\d{2}),(\d+)")


def iso_text(text: str) -> str:
    """``text`` in the ISO 8601 spelling pandas reads, where it wrote the same instant another way: a zone word
    UTC/GMT at the end (``2026-01-31 12:00:00 UTC``, Go's ``... +0000 UTC``), a lower-case t or z, a comma
    before the fraction of a second (ISO 8601 allows both). It was "cannot parse ... (use ISO 8601)"."""
    clean = text.strip()
    clean = _UTC_WORD.sub(lambda m: m[1] + (m[2].strip() if m[2] else "Z"), clean)
    clean = _LOWER_T.sub(lambda m: m[1] + "T", clean)
    if clean.endswith("z"):
        clean = clean[:-1] + "Z"
    return _COMMA_FRACTION.sub(r"\1.\2", clean)


def time_text_fix(text: object) -> tuple[str, str] | None:
    """(the problem, the fix) for a time written in a form no parser here reads but that says what it means:
    a leap second or a zone name. None for anything else."""
    if not isinstance(text, str):
        return None
    clean = text.strip()
    leap = _LEAP_SECOND.search(clean)
    if leap:
        before = clean[:leap.start() + 1] + leap[1] + ":59.999999" + clean[leap.end():]
        return ("is a leap second (:60), which the telemetry's timestamps cannot hold",
                f"write the instant just before it: {before}")
    if _ZONE_NAME.search(clean):
        return ("names its time zone, which does not say the offset unambiguously (at a daylight-saving change "
                "a local time happens twice)", "write the UTC offset instead, e.g. 2026-03-29T01:30:00+01:00, "
                "or convert to UTC and write Z")
    return None


def _not_iso(text: str, what: str, reason: str) -> UserError:
    """Why ``text`` is not an instant, with the text to write instead where it can be worked out."""
    clean = text.strip()
    known = time_text_fix(clean)
    if known is not None:
        return UserError(f"{what} {text!r} {known[0]}", known[1])
    midnight = _MIDNIGHT_24.match(clean)
    if midnight:
        try:
            day = date.fromisoformat(midnight[1]) + timedelta(days=1)
        except (ValueError, OverflowError):
            pass
        else:
            return UserError(f"{what} {text!r} writes midnight as 24:00, which is not a time of day",
                             f"write the next day's 00:00: {day.isoformat()}T00:00:00{midnight[2].strip() or 'Z'}")
    if _EPOCH.match(clean):
        seconds = float(clean)
        if EARLIEST.replace(tzinfo=timezone.utc).timestamp() <= seconds <= LATEST.replace(tzinfo=timezone.utc).timestamp():
            iso = datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")
            return UserError(f"{what} {text!r} is a number, not an ISO 8601 time (epoch seconds are not read "
                             "here)", f"write it as {iso}Z")
    if "must be in" in reason or "out of range" in reason:  # 2026-13-01, 2026-02-30, T25:00, 10:61
        return UserError(f"{what} {text!r} is not an ISO 8601 time: {reason}",
                         "check the month (1..12), the day (within that month), the hour (0..23) and the minutes "
                         "and seconds (0..59), e.g. 2026-11-28T00:00:00Z")
    if reason.startswith("offset must be"):  # +25:00
        return UserError(f"{what} {text!r} has a UTC offset of 24 hours or more",
                         "write an offset between -23:59 and +23:59, e.g. +05:30, or Z for UTC")
    return UserError(f"{what} {text!r} is not an ISO 8601 time", _EXAMPLE)


def parse_formatted(text: object, fmt: str, *, what: str) -> datetime:
    """An instant written in a fixed ``strptime`` format (vLLM's ``date``: ``%Y%m%d-%H%M%S``), naive UTC."""
    if not isinstance(text, str) or len(text) > 64:
        raise UserError(f"{what} is not text in the form {fmt}", "give an unmodified file")
    try:
        moment = datetime.strptime(text, fmt)
    except ValueError:
        raise UserError(f"{what} {text!r} is not in the form {fmt}", "give an unmodified file") from None
    return check_instant(moment, what=what)


def check_seconds(seconds: float, *, what: str = "duration") -> float:
    """A positive, finite duration in seconds of at most :data:`MAX_DURATION_S` (100 years)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds <= 0:
        raise UserError(f"{what} {seconds!r} is not a positive number of seconds", "give e.g. 3600 for an hour")
    if seconds > MAX_DURATION_S:
        raise UserError(f"{what} is longer than {MAX_DURATION_YEARS} years",
                        f"give a duration of at most {MAX_DURATION_YEARS}Y")
    return float(seconds)

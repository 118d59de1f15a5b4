"""Strict parsing of imported columns: explicit types, bounds declared once, no guessing.

Every importer turns a file's column into a typed series here, and every refusal is a one-line
:class:`UserError` naming the column, the 1-based row and the value. The bounds are the documented ranges
(docs/telemetry.md, "Importing your own telemetry"):

* times between 1970-01-01 and 2200-01-01 (later "epoch seconds" are a unit mistake: ms or ns);
* latencies finite, >= 0 and at most a week (longer is a unit mistake; every ns offset fits a BIGINT);
* token counts and priorities whole numbers that fit the INTEGER columns, request ids that fit BIGINT.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalsre.errors import UserError
from causalsre.times import iso_text, time_text_fix

MIN_TIME = pd.Timestamp("1970-01-01")
MAX_TIME = pd.Timestamp("2200-01-01")
MAX_EPOCH_S = 7_258_118_400  # MAX_TIME as epoch seconds
MAX_LATENCY_S = 7 * 86_400.0  # a week, as in importers/common.py: a longer "latency" is a unit mistake
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
COUNT = (0, 2**31 - 1)  # token counts and preemptions: INTEGER columns, never negative
_EXACT_FLOAT = 2**53  # integers beyond this are not exact as doubles


def _refuse_mixed_offsets(strings: pd.Series, is_iso: pd.Series, values: pd.Series, column: str) -> None:
    """Refuse a column whose ISO times are partly naive, partly with an offset (``times.mixed_offsets``)."""
    from causalsre.times import MIXED_FIX, OFFSET_PATTERN

    iso = strings[is_iso.to_numpy(dtype=bool)]
    if iso.empty:
        return
    aware = iso.str.contains(OFFSET_PATTERN, regex=True).to_numpy(dtype=bool)
    if aware.all() or not aware.any():
        return
    rows = {kind: int(iso.index[np.flatnonzero(aware == want)[0]]) for kind, want in (("aware", True), ("naive", False))}
    position = {label: i for i, label in enumerate(values.index)}
    first, second = (position[rows["aware"]], position[rows["naive"]])
    raise UserError(f"column {column} mixes times with a UTC offset (row {first + 1}: {_shown(values.iloc[first])}) "
                    f"and times without one (row {second + 1}: {_shown(values.iloc[second])})", MIXED_FIX)


def _where(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _shown(value: object) -> str:
    """A cell as the user wrote it (numpy scalars as plain numbers)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _epoch_fix(number: float, fix: str) -> str:
    """The fix for a number that is not epoch seconds, naming the unit it is in when its size says so: 1.7e12
    is milliseconds since 1970 (a time in 2023), not seconds (the year 55,000)."""
    for unit, scale in (("milliseconds", 1_000), ("microseconds", 1_000_000), ("nanoseconds", 1_000_000_000)):
        if np.isfinite(number) and 315_532_800 <= number / scale < MAX_EPOCH_S:  # 1980..2200 in that unit
            return f"it looks like epoch {unit}: divide by {scale:,} to give epoch seconds, or use ISO 8601"
    return fix


def _fail(column: str, values: pd.Series, row: int, problem: str, fix: str) -> UserError:
    return UserError(f"column {column} row {row + 1}: {_shown(values.iloc[row])} {problem}", fix)


def _all_text(values: pd.Series) -> bool:
    """Every non-missing cell is a str (a CSV column): the vectorized string methods apply."""
    return values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")


def missing_mask(values: pd.Series) -> np.ndarray:
    """Empty cells: NULL in a typed file, an empty (or blank) string in a text file."""
    if _all_text(values):
        blank = values.str.strip().eq("").fillna(False)
    elif values.dtype == object:
        blank = values.map(lambda v: isinstance(v, str) and not v.strip())
    else:
        blank = False
    return (values.isna() | blank).to_numpy(dtype=bool)


def _as_numbers(values: pd.Series, column: str, missing: np.ndarray, kind: str) -> pd.Series:
    """Numbers from a numeric or text series; a cell that is not a number is refused, never made NULL."""
    if pd.api.types.is_bool_dtype(values):
        raise UserError(f"column {column} holds true/false values", f"give {column} as {kind}")
    if pd.api.types.is_numeric_dtype(values):
        return values
    text = _all_text(values)
    cleaned = (values.str.strip() if text else values.map(lambda v: v.strip() if isinstance(v, str) else v))
    cleaned = cleaned.where(~missing)
    numbers = pd.to_numeric(cleaned, errors="coerce")
    bad = numbers.isna().to_numpy() & ~missing
    if not text:  # a Python bool in an object column would otherwise read as 0 or 1
        bad |= cleaned.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
    if bad.any():
        raise _fail(column, values, _where(bad), "is not a number", f"give {column} as {kind} in every row")
    return numbers


def integers(values: pd.Series, column: str, bounds: tuple[int, int] = COUNT, *,
             required: bool = False) -> pd.Series:
    """Whole numbers within ``bounds`` as Int64 (missing cells NULL); ``2.7`` is refused, not truncated."""
    values = values.reset_index(drop=True)
    missing = missing_mask(values)
    kind = "a whole number"
    if required and missing.any():
        raise UserError(f"column {column} row {_where(missing) + 1} is empty", f"give {column} in every row")
    numbers = _as_numbers(values, column, missing, kind)
    present = ~missing
    if pd.api.types.is_integer_dtype(numbers):
        # Filled before leaving pandas, so a nullable column becomes a plain int64/uint64 array.
        ints = numbers.where(pd.Series(present), 0).to_numpy(dtype=numbers.dtype.numpy_dtype
                                                          if hasattr(numbers.dtype, "numpy_dtype") else None)
    else:
        floats = numbers.astype("float64").to_numpy()
        not_finite = present & ~np.isfinite(floats)
        if not_finite.any():
            raise _fail(column, values, _where(not_finite), "is not a finite number", f"give {column} as {kind}")
        fractional = present & (np.floor(floats) != floats)
        if fractional.any():
            raise _fail(column, values, _where(fractional), "is not a whole number",
                        f"{column} counts or names something: give {kind}")
        floats = np.where(present, floats, 0.0)
        if (np.abs(floats) >= _EXACT_FLOAT).any():  # rare: re-read those cells exactly, as Python ints
            raw = values.to_numpy(dtype=object)
            ints = np.array([int(f) if abs(f) < _EXACT_FLOAT else _exact_int(r, f) for r, f in zip(raw, floats)],
                            dtype=object)
        else:
            ints = floats.astype("int64")
    low, high = bounds
    if low == 0:
        negative = present & (ints < 0)
        if negative.any():
            row = _where(negative)
            raise UserError(f"column {column} row {row + 1}: negative value {int(ints[row])}",
                            f"{column} must be >= 0")
    out_of_range = present & ((ints < low) | (ints > high))
    if out_of_range.any():
        raise _fail(column, values, _where(out_of_range), f"is outside {low}..{high}",
                    f"give {column} between {low} and {high}")
    return pd.Series(pd.array(ints.astype("int64"), dtype="Int64")).mask(missing)


def _exact_int(raw: object, as_float: float) -> int:
    """The exact integer of a cell too large for a double (text cells re-parsed, not rounded)."""
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            pass
    return int(as_float)


def reals(values: pd.Series, column: str, *, high: float = MAX_LATENCY_S) -> pd.Series:
    """Durations in seconds as float64 (missing cells NaN): finite, >= 0 and at most ``high``."""
    values = values.reset_index(drop=True)
    missing = missing_mask(values)
    numbers = _as_numbers(values, column, missing, "seconds").astype("float64")
    floats = numbers.to_numpy()
    present = ~missing
    not_finite = present & ~np.isfinite(floats)
    if not_finite.any():
        raise _fail(column, values, _where(not_finite), "is not a finite number", f"give {column} in seconds")
    negative = present & (floats < 0)
    if negative.any():
        raise UserError(f"column {column} row {_where(negative) + 1}: negative value {floats[_where(negative)]}",
                        f"{column} must be >= 0")
    too_big = present & (floats > high)
    if too_big.any():
        raise _fail(column, values, _where(too_big), f"is more than {high:g} s",
                    f"give {column} in seconds (not ms or ns)")
    return pd.Series(np.where(present, floats, np.nan), dtype="float64")


def texts(values: pd.Series, column: str) -> pd.Series:
    """Text as pandas strings (empty cells NULL). Words like NA, None or null stay text."""
    values = values.reset_index(drop=True)
    missing = missing_mask(values)
    if _all_text(values):
        nul = values.str.contains("\x00", regex=False).fillna(False).to_numpy(dtype=bool)
        if nul.any():
            raise UserError(f"column {column} row {_where(nul) + 1} contains a NUL byte", f"remove it from {column}")
        return values.where(~missing).astype("string")
    out = []
    for row, (value, empty) in enumerate(zip(values, missing)):
        if empty:
            out.append(None)
            continue
        if isinstance(value, (bytes, bytearray, memoryview)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise UserError(f"column {column} row {row + 1} holds binary data that is not UTF-8 text",
                                f"give {column} as text") from None
        if isinstance(value, (list, tuple, dict, np.ndarray)):
            raise UserError(f"column {column} row {row + 1} holds a {type(value).__name__}, not text",
                            f"give {column} as text")
        text = value if isinstance(value, str) else str(value)
        if "\x00" in text:
            raise UserError(f"column {column} row {row + 1} contains a NUL byte", f"remove it from {column}")
        out.append(text)
    return pd.Series(out, dtype="string")


def _epoch_seconds(epoch: pd.Series) -> pd.Series:
    """Epoch seconds (NaN where missing) as datetime64[ns], NaT where missing.

    Only the finite values reach ``pd.to_datetime``: pandas 2.3 rounds a float array holding NaN through a
    scratch buffer it never fills, under ``np.errstate(over="raise")``, so whatever bytes that memory held
    could raise FloatingPointError ("overflow encountered in multiply") depending on what ran before.
    """
    out = pd.Series(pd.NaT, index=epoch.index, dtype="datetime64[ns]")
    known = epoch.notna().to_numpy()
    if known.any():
        out[known] = pd.to_datetime(epoch[known].to_numpy(dtype="float64"), unit="s")
    return out


def times(values: pd.Series, column: str = "arrival_time") -> pd.Series:
    """ISO 8601 text, timestamps or epoch seconds -> timezone-naive UTC datetime64[ns] in 1970..2200."""
    values = values.reset_index(drop=True)
    fix = "use ISO 8601 (2026-01-31T12:00:00Z) or epoch seconds, between 1970 and 2200"
    if pd.api.types.is_bool_dtype(values):
        raise UserError(f"column {column} holds true/false values", fix)
    if pd.api.types.is_numeric_dtype(values):
        numeric = values.astype("float64").to_numpy()
        bad = ~np.isfinite(numeric) | (numeric < 0) | (numeric >= MAX_EPOCH_S)
        if bad.any():
            row = _where(bad)
            raise _fail(column, values, row, "is not epoch seconds between 1970 and 2200", _epoch_fix(numeric[row], fix))
        return pd.Series(pd.to_datetime(numeric, unit="s"))
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    else:
        text = values.map(lambda v: iso_text(v) if isinstance(v, str) else v)
        parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")  # text parses to ns (or NaT)
        as_text = text.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        if as_text.any():
            strings = text[as_text].astype(str)
            iso = pd.to_datetime(strings, utc=True, errors="coerce", format="ISO8601").dt.tz_localize(None)
            epoch = pd.to_numeric(strings, errors="coerce")
            epoch = epoch.where((epoch >= 0) & (epoch < MAX_EPOCH_S))
            parsed[as_text] = iso.where(iso.notna(), _epoch_seconds(epoch))
            _refuse_mixed_offsets(strings, iso.notna() & epoch.isna(), values, column)
        others = ~as_text & text.notna().to_numpy()
        if others.any():  # dates and datetimes from a typed file
            parsed[others] = pd.to_datetime(text[others], utc=True, errors="coerce").dt.tz_localize(None)
    unparsed = parsed.isna().to_numpy()
    if unparsed.any():
        row = _where(unparsed)
        known = time_text_fix(values.iloc[row])
        if known is not None:
            raise _fail(column, values, row, *known)
        number = pd.to_numeric(pd.Series([values.iloc[row]]), errors="coerce").iloc[0]
        raise UserError(f"column {column} row {row + 1}: cannot parse {_shown(values.iloc[row])} as a time",
                        _epoch_fix(number, fix))
    out_of_range = ((parsed < MIN_TIME) | (parsed >= MAX_TIME)).to_numpy()
    if out_of_range.any():
        raise _fail(column, values, _where(out_of_range), "is outside 1970..2200", fix)
    return parsed.astype("datetime64[ns]")

"""Imported columns the schema has no column for, kept per request as JSON-safe attribute values.

Nothing is dropped silently: a value is converted to JSON losslessly where JSON can hold it (dates and
times as ISO 8601 text, durations as seconds, decimals as numbers when a double holds them exactly and
as their exact text otherwise, lists and structs recursively) and refused in one line where it cannot
(non-UTF-8 bytes, inf, objects of other types).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from decimal import Decimal

import numpy as np
import pandas as pd

from causalsre.errors import UserError

_INTEGER = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")
_DECIMAL = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")


class _Refused(Exception):
    def __init__(self, what: str):
        self.what = what


def jsonable(value: object) -> object:
    """``value`` as a JSON-safe Python object; raises _Refused(what) when it cannot be kept exactly."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise _Refused(f"the non-finite number {float(value)}")
        return float(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise _Refused("text with a NUL byte")
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return jsonable(bytes(value).decode("utf-8"))
        except UnicodeDecodeError:
            raise _Refused("binary data that is not UTF-8 text") from None
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, (pd.Timedelta, dt.timedelta, np.timedelta64)):
        seconds = pd.Timedelta(value).total_seconds()
        return None if math.isnan(seconds) else seconds
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    raise _Refused(f"a {type(value).__name__} value")


def _decimal(value: Decimal) -> object:
    if not value.is_finite():
        raise _Refused(f"the non-finite decimal {value}")
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else str(value)


def text_column_values(values: pd.Series) -> list[object]:
    """A CSV column's cells (all text): numbers when every non-empty cell is one, else the text as written.

    Empty cells are NULL; words such as NA, None or null stay text (no missing-value guessing), and a
    column with a leading-zero code such as 007 stays text.
    """
    cells = [v.strip() if isinstance(v, str) else v for v in values]
    present = [v for v in cells if isinstance(v, str) and v]
    if present and all(_INTEGER.match(v) for v in present):
        return [int(v) if isinstance(v, str) and v else None for v in cells]
    if present and all(_DECIMAL.match(v) for v in present) and not any(_leading_zero(v) for v in present):
        floats = [float(v) if isinstance(v, str) and v else None for v in cells]
        if all(f is None or math.isfinite(f) for f in floats):
            return floats
    return [v if isinstance(v, str) and v.strip() else None for v in values]


def _leading_zero(text: str) -> bool:
    digits = text.lstrip("+-")
    return len(digits) > 1 and digits[0] == "0" and digits[1].isdigit()


def attribute_json(frame: pd.DataFrame, columns: list[str], *, text_file: bool) -> list[str | None] | None:
    """One JSON object per row holding ``columns``; None when there are none. UserError names the cell."""
    if not columns:
        return None
    per_column = {}
    for column in columns:
        if text_file:
            per_column[column] = text_column_values(frame[column])
            continue
        converted = []
        for row, value in enumerate(frame[column].to_numpy(dtype=object)):
            try:
                converted.append(jsonable(value))
            except _Refused as refused:
                raise UserError(f"column {column} row {row + 1} holds {refused.what}, which an attribute "
                                "cannot keep", f"convert {column} to text or numbers, or drop it") from None
        per_column[column] = converted
    return [json.dumps({c: per_column[c][i] for c in columns}, allow_nan=False) for i in range(len(frame))]

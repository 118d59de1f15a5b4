"""The notebook API's argument checks: what a Jupyter user may pass where a CLI user types text.

A wrong type (an int for a window, a float seed, ``None`` where a list goes, a frame with a column twice, an
edge with an empty end) is a :class:`~causalsre.errors.UserError` naming the argument and a right value, at the
entry point, instead of an AttributeError or a numpy TypeError from deep inside. numpy integers count as
whole numbers (a value read from a frame is one).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from causalsre.errors import UserError
from causalsre.safeio import brief

MAX_SEED = 2**32 - 1  # numpy, scikit-learn and PyMC take seeds in 0..2**32-1 (as the CLI's --seed)


def whole(value: Any, name: str, low: int, high: int | None = None, example: int | None = None) -> int:
    """An int (or numpy integer, not a bool) in ``low..high``."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and low <= int(value) and (high is None or int(value) <= high):
        return int(value)
    span = f">= {low}" if high is None else f"in {low}..{high}"
    raise UserError(f"{name} must be a whole number {span}, not {brief(value)}",
                    f"pass e.g. {name}={low if example is None else example}")


def seed(value: Any) -> int:
    return whole(value, "seed", 0, MAX_SEED)


def flag(value: Any, name: str) -> bool:
    """True or False (a numpy bool too). A string was truthy: ``verify="no"`` ran the verification replays."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise UserError(f"{name} must be True or False, not {brief(value)}", f"pass e.g. {name}=True")


def is_bool(value: Any) -> bool:
    """Python's or numpy's bool: a number to ``isinstance(value, numbers.Real)``, never one a user meant."""
    return isinstance(value, (bool, np.bool_))


def text(value: Any, name: str, example: str, *, optional: bool = False) -> str | None:
    """A non-empty string (or None when ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, str) and value.strip():
        return value
    raise UserError(f"{name} must be {'None or ' if optional else ''}a non-empty string, not {brief(value)}",
                    f"pass e.g. {name}={example!r}")


def window(value: Any, name: str) -> str:
    """A window as the CLI writes it; a pd.Timestamp pair or a datetime is not one (say how to write it)."""
    return text(value, name, "phase:baseline" if name == "baseline" else "phase:incident")  # type: ignore[return-value]


def path(value: Any, name: str, *, optional: bool = True) -> str | None:
    """A file path as str or Path (None when ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, (str, Path)) and str(value):
        return str(value)
    raise UserError(f"{name} must be a file path (str or Path), not {type(value).__name__}",
                    f"pass the {name} file's path{', or leave it out' if optional else ''}")


def names(value: Any, name: str) -> tuple[str, ...]:
    """Column names: a list of strings (one string is one name, not its letters)."""
    if isinstance(value, str):
        return (value,)
    if value is None or not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise UserError(f"{name} must be a list of column names, not {type(value).__name__}",
                        f"pass e.g. {name}=['tenant']")
    items = tuple(value)
    bad = [item for item in items if not isinstance(item, str) or not item]
    if bad:
        raise UserError(f"{name} holds {brief(bad[0])}, not a column name", f"pass e.g. {name}=['tenant']")
    return items


def where(value: Any) -> dict | None:
    """``{column: value | [values] | None}`` (None: IS NULL) with text keys; NaN is not a value to match (it
    reached DuckDB as a DOUBLE compared with a text column), nor is a dict or another object."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise UserError("where must be a dict of column -> value", "pass e.g. where={'tenant': 'acme'}")
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise UserError(f"where has the key {brief(key)}, not a column name", "pass e.g. where={'tenant': 'acme'}")
        values = list(item) if isinstance(item, (list, tuple)) else [item]
        for one in values:
            nan = isinstance(one, float) and one != one
            if nan or not (one is None or isinstance(one, (str, numbers.Real))):
                raise UserError(f"where[{key[:100]!r}] holds {brief(one)}, not a value to match",
                                "give text, a number, a list of them or None (missing), e.g. where={'tenant': 'acme'}")
    return dict(value)


def frame(value: pd.DataFrame, name: str) -> pd.DataFrame:
    """A wide table whose column names are unique (a repeated name made the matrix shapes disagree)."""
    columns = [str(c) for c in value.columns]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise UserError(f"the {name} data has the column(s) {', '.join(repeated[:5])} more than once",
                        "give every column its own name (df.loc[:, ~df.columns.duplicated()])")
    return value


def edge_pairs(pairs: Iterable) -> list[tuple[str, str]]:
    """(cause, effect) pairs, each end a non-empty name."""
    out = []
    for number, pair in enumerate(pairs, 1):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Iterable):
            raise UserError(f"graph edge {number} is {brief(pair)}, not a (cause, effect) pair",
                            "pass e.g. graph=[('load', 'latency')]")
        ends = tuple(pair)
        if len(ends) != 2:
            raise UserError("graph pairs must be (cause, effect)", "pass e.g. graph=[('load', 'latency')]")
        if any(end is None or (isinstance(end, float) and end != end) or end == "" for end in ends):
            raise UserError(f"graph edge {number} has an empty end ({brief(ends)})",
                            "give every edge a cause and an effect")
        out.append(ends)
    return out

"""Hypothesis strategies that damage a good document one edit at a time (replace, delete or add a value).

Mutating a valid spec reaches the deep validation code that random text never gets past the YAML parser to.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

# Values a YAML or TOML author could write: scalars of every type, small lists and mappings.
scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**12), st.floats(allow_nan=True),
                   st.text(max_size=10), st.sampled_from(["", "0", "-1", "1e309", "30d", "5m", "lte", "ok",
                                                          "2026-01-01T00:00:00Z", "nan", "true"]))
value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                     max_leaves=6)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``doc`` (mapping keys and list indices)."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, item in doc.items():
            out += _paths(item, prefix + (key,))
    elif isinstance(doc, list):
        for index, item in enumerate(doc):
            out += _paths(item, prefix + (index,))
    return out


@st.composite
def mutated(draw, base: Any, max_edits: int = 3) -> Any:
    """``base`` with 1..max_edits edits: a value replaced, a key or item deleted, or an unknown key added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_edits))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if not path:
            if action == "replace":
                doc = draw(value)
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        if action == "replace":
            parent[path[-1]] = draw(value)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(value)
        else:
            parent.append(draw(value))
    return doc

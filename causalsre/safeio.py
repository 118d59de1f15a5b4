"""The one way user-written text files (YAML, JSON, TOML) are read: bounded, decoded strictly, parsed safely.

Limits, the same for every file (SLO specs, Sloth AlertWindows, graph specs, sweep files):

- at most :data:`MAX_BYTES` (10 MiB) on disk, checked before reading;
- UTF-8 (a leading BOM is dropped); other bytes get a one-line error naming the offset;
- nesting at most :data:`MAX_DEPTH` (64) levels, for YAML counted while composing (before Python's
  recursion limit could be reached) and through aliases;
- YAML: at most :data:`MAX_ALIASES` (100) alias uses per file and at most :data:`MAX_NODES` (one million)
  nodes once every alias is expanded. Both are counted on the composed node graph, where an alias is a
  shared reference, so a "billion laughs" file is refused after reading a few lines and nothing is ever
  expanded (or printed: errors name a line, never the value).

A TOML file with no keys at all (empty, or only comments) is refused: every TOML the tools read (run configs,
scenarios, sweeps, priors, governor tiers) means something only through its keys, and an empty file is a
mistake (a truncated copy, ``> config.toml``); running on every default would hide it.

Tables (CSV/TSV/Parquet that users give: ``db import requests|table``, ``attribute``, traces) are checked by
:func:`check_table` before a parser sees them: at most :data:`MAX_LINE_BYTES` (8 MiB) in one line and at most
a given number of columns. A 200,000-column CSV made pandas and the importer run for minutes.

Every failure is a :class:`~causalsre.errors.UserError` whose message starts with ``{what} {path}``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent, ScalarEvent

from causalsre.errors import UserError

# The limits, the file reader and the table checks live in two smaller modules; they are re-exported here, so
# ``from causalsre.safeio import ...`` stays the one import path (the harness may import only this module).
from causalsre.safefiles import (  # noqa: F401
    MAX_ALIASES, MAX_BYTES, MAX_DEPTH, MAX_LINE_BYTES, MAX_NODES, REQUEST_COLUMNS, WIDE_COLUMNS, brief, printable_name,
    read_text,
    regular_file,
)
from causalsre.safetables import (  # noqa: F401
    check_table, decode_table, is_gzip, max_bytes, read_table_bytes, table_suffix, table_text,
)
from causalsre.safewrites import (  # noqa: F401
    copy_file, open_output, output_file, output_folder, refuse_link, refuse_links_inside, remove_file, replace_file, write_bytes,
    write_text, write_with,
)

class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that bounds depth, alias uses and expanded size while composing, before constructing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._total = 0
        self._size: dict[int, int] = {}  # id(node) -> nodes in its expanded subtree
        self._height: dict[int, int] = {}  # id(node) -> levels of its expanded subtree

    def compose_document(self):
        node = super().compose_document()
        self._total += self._size.get(id(node), 0)
        self._size.clear()
        self._height.clear()
        return node

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            mark = self.peek_event().start_mark
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise ComposerError(None, None, f"more than {MAX_ALIASES} aliases (*name) in one file", mark)
            node = super().compose_node(parent, index)
            if id(node) not in self._size:
                raise ComposerError(None, None, "an alias refers to a node that contains it", mark)
            if self._depth + self._height[id(node)] > MAX_DEPTH:
                raise ComposerError(None, None, f"nesting deeper than {MAX_DEPTH} levels (through an alias)", mark)
            return node
        mark = self.peek_event().start_mark
        # Levels are collections (a scalar adds none), as for JSON and TOML below.
        level = 0 if self.check_event(ScalarEvent) else 1
        self._depth += level
        if self._depth > MAX_DEPTH:
            raise ComposerError(None, None, f"nesting deeper than {MAX_DEPTH} levels", mark)
        node = super().compose_node(parent, index)
        self._depth -= level
        children = _children(node)
        size = 1 + sum(self._size[id(child)] for child in children)
        if size + self._total > MAX_NODES:
            raise ComposerError(None, None, f"more than {MAX_NODES} values once aliases are expanded", mark)
        self._size[id(node)] = size
        self._height[id(node)] = level + max((self._height[id(child)] for child in children), default=0)
        return node

    def construct_mapping(self, node, deep=False):
        # PyYAML keeps the last of two equal keys: a spec whose second `target:` or `value:` silently replaced
        # the first was analysed as written last. Refused, naming both lines (keys a `<<` merge brings in may
        # be overridden, as YAML intends).
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise ConstructorError(None, None, f"the key {brief(key)} appears twice in one mapping (first on "
                                                       f"line {seen[key] + 1})", key_node.start_mark)
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node):
        # 2026-02-30, a 99-hour offset or an offset at year 1 raise ValueError/OverflowError, not YAMLError.
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            raise ConstructorError(None, None, f"{node.value[:40]!r} is not a valid date or time",
                                   node.start_mark) from None


_BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", _BoundedLoader.construct_yaml_timestamp)


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def parse_yaml_documents(text: str, *, what: str, path: str | Path) -> list[Any]:
    """Every document of a YAML text (empty documents dropped), under the limits above."""
    loader = None
    try:
        loader = _BoundedLoader(text)  # the reader refuses control characters here already
        loader.name = str(path)  # error marks say where, instead of "<unicode string>"
        docs = []
        while loader.check_data():
            doc = loader.get_data()
            if doc is not None:
                docs.append(doc)
        return docs
    except yaml.YAMLError as exc:
        raise UserError(f"{what} {path} is not valid YAML ({' '.join(str(exc).split())[:300]})",
                        "fix the YAML; docs/reliability.md lists the limits on size, nesting and aliases") from None
    except RecursionError:  # a constructor deeper than the composer allowed; should not happen
        raise UserError(f"{what} {path} nests too deeply", f"keep it under {MAX_DEPTH} levels") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml_documents(path: str | Path, *, what: str) -> list[Any]:
    return parse_yaml_documents(read_text(path, what=what), what=what, path=path)


def load_yaml(path: str | Path, *, what: str) -> Any:
    """The single document of a YAML file (None when it is empty)."""
    docs = load_yaml_documents(path, what=what)
    if len(docs) > 1:
        raise UserError(f"{what} {path} holds {len(docs)} YAML documents", "keep one document in the file")
    return docs[0] if docs else None


def _check_depth(value: Any, *, what: str, path: str | Path) -> Any:
    """Walk without recursion; refuse containers nested deeper than MAX_DEPTH."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise UserError(f"{what} {path} nests deeper than {MAX_DEPTH} levels",
                                f"keep it under {MAX_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def parse_json(text: str, *, what: str, path: str | Path, allow_nan: bool = False) -> Any:
    """A JSON text; NaN/Infinity refused unless ``allow_nan`` (JSON has no such numbers)."""
    try:
        value = json.loads(text, parse_constant=None if allow_nan else _no_constant)
    except RecursionError:
        raise UserError(f"{what} {path} nests deeper than {MAX_DEPTH} levels", "flatten it") from None
    except ValueError as exc:  # JSONDecodeError, NaN, or an integer of thousands of digits
        raise UserError(f"{what} {path} is not valid JSON ({' '.join(str(exc).split())[:200]})",
                        "fix the JSON syntax") from None
    return _check_depth(value, what=what, path=path)


def load_json(path: str | Path, *, what: str, allow_nan: bool = False) -> Any:
    return parse_json(read_text(path, what=what), what=what, path=path, allow_nan=allow_nan)


def parse_toml(text: str, *, what: str, path: str | Path) -> dict[str, Any]:
    try:
        value = tomllib.loads(text)
    except RecursionError:
        raise UserError(f"{what} {path} nests deeper than {MAX_DEPTH} levels", "flatten it") from None
    except ValueError as exc:  # TOMLDecodeError, or an integer of thousands of digits
        raise UserError(f"{what} {path} is not valid TOML ({' '.join(str(exc).split())[:200]})",
                        "fix the syntax") from None
    return _check_depth(value, what=what, path=path)


def load_toml(path: str | Path, *, what: str) -> dict[str, Any]:
    data = parse_toml(read_text(path, what=what), what=what, path=path)
    if not data:
        raise UserError(f"{what} {path} is empty (it sets nothing)",
                        "write the settings into it (see the examples under harness/configs/), or give another file")
    return data

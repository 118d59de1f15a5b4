"""Property tests of every parser issue 18 hardened, with hostile strategies: inf, nan, huge and negative
numbers, extreme dates and offsets, non-UTF-8 bytes and deep nesting. Whatever goes in, the parser either
returns a value inside its documented range or raises :class:`UserError` with one line; nothing else
escapes. Examples are derandomized and bounded, so a failure reproduces exactly.
"""

from __future__ import annotations

import functools
import math
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import networkx as nx
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from causalsre import safeio, times
from causalsre.errors import UserError

FUZZ = settings(max_examples=50, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -1e308, 2**63, -(2**63) - 1, 10**20, -1, 0, 5e-324,
                     10**400, -(10**400)]),  # past float: int / float raises OverflowError
)
OFFSETS = st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59))
MOMENTS = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59),
                 timezones=st.builds(timezone, OFFSETS)),
    st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59), datetime(1969, 12, 31, 23, 59, 59),
                     datetime(1970, 1, 1), datetime(2200, 12, 31, 23, 59, 59), datetime(2201, 1, 1)]),
)
# Numbers as YAML writes them (PyYAML reads 1e+308 as text, .inf and .nan as floats).
YAML_NUMBERS = st.one_of(NUMBERS.map(repr), st.sampled_from([".inf", "-.inf", ".nan", "1.0e+400", "-0.0"]))
TIME_TEXT = st.one_of(MOMENTS.map(lambda m: m.isoformat()), MOMENTS.map(lambda m: m.isoformat() + "Z"),
                      st.text(max_size=40), NUMBERS.map(str))


def _one_line(call, *args, **kwargs):
    """Call; a UserError is a fine answer (one line), any other exception fails the test."""
    try:
        return call(*args, **kwargs)
    except UserError as exc:
        assert exc.problem and "\n" not in exc.one_line() and len(exc.one_line()) < 2000
        return None


@FUZZ
@given(value=st.one_of(TIME_TEXT, MOMENTS, NUMBERS, st.none()))
def test_instants_parse_into_the_documented_range_or_fail_in_one_line(value):
    moment = _one_line(times.parse_instant, value, what="--at")
    if moment is not None:
        assert moment.tzinfo is None and times.EARLIEST <= moment <= times.LATEST


@FUZZ
@given(count=NUMBERS, unit=st.sampled_from(list("smhdwMQY") + ["", "x", "ms"]), junk=st.text(max_size=5))
def test_durations_parse_into_the_documented_range_or_fail_in_one_line(count, unit, junk):
    from causalsre.slo.durations import parse_duration

    for text in (f"{count}{unit}", f"{count}{unit}{junk}", count):
        duration = _one_line(parse_duration, text, what="duration")
        if duration is not None:
            assert 0 < duration.seconds <= times.MAX_DURATION_S


@FUZZ
@given(depth=st.integers(1, 3000), kind=st.sampled_from(["list", "map", "json"]))
def test_nesting_is_accepted_up_to_the_limit_and_refused_beyond(depth, kind):
    text = {"list": "[" * depth + "]" * depth, "map": "{a: " * depth + "1" + "}" * depth,
            "json": '{"a": ' * depth + "1" + "}" * depth}[kind]
    parse = safeio.parse_json if kind == "json" else safeio.parse_yaml_documents
    value = _one_line(parse, text, what="spec", path="p")
    assert (value is not None) == (depth <= safeio.MAX_DEPTH)  # a level is a list or mapping


@FUZZ
@given(depth=st.integers(1, 3000))
def test_toml_nesting_is_bounded(depth):
    value = _one_line(safeio.parse_toml, "x = " + "[" * depth + "]" * depth, what="sweep", path="p")
    assert (value is not None) == (depth + 1 <= safeio.MAX_DEPTH)  # the document's table is a level


@FUZZ
@given(fan=st.integers(1, 12), levels=st.integers(1, 12))
def test_aliases_are_bounded_before_expansion(fan, levels):
    lines = ['l0: &l0 ["lol"]'] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fan)}]" for i in range(1, levels + 1)]
    sizes = [2]  # nodes of each list once expanded: itself and its items
    for _ in range(levels):
        sizes.append(1 + fan * sizes[-1])
    expanded = 1 + sum(1 + size for size in sizes)  # the document's mapping, each key and each list
    docs = _one_line(safeio.parse_yaml_documents, "\n".join(lines), what="spec", path="p")
    assert (docs is not None) == (fan * levels <= safeio.MAX_ALIASES and expanded <= safeio.MAX_NODES)


@FUZZ
@given(data=st.binary(max_size=300), cut=st.integers(0, 400))
def test_hostile_bytes_in_any_spec_file_raise_only_user_errors(data, cut):
    from causalsre.causal.graph import load_graph
    from causalsre.slo import load_slos
    from harness.sweep import load_sweep

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "file"
        good = b"apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec: {}\n"
        path.write_bytes(good[:cut] + data + good[cut:])
        for load in (load_slos, load_graph, load_sweep):
            _one_line(load, path)
        for parse in (safeio.load_json, safeio.load_toml, safeio.load_yaml_documents):
            _one_line(parse, path, what="file")


@FUZZ
@given(duration=st.one_of(NUMBERS.map(lambda n: f"{n}d"), st.sampled_from(["10000Y", "100Y", "1201M", "30d"])),
       start=st.one_of(TIME_TEXT, MOMENTS.map(lambda m: m.isoformat(sep=" "))),
       value=YAML_NUMBERS, target=YAML_NUMBERS, rolling=st.booleans())
def test_slo_specs_with_hostile_numbers_and_dates(duration, start, value, target, rolling):
    from causalsre.slo import load_slos
    from causalsre.slo.period import period_at

    window = (f"{{duration: {duration}, isRolling: true}}" if rolling else
              f"{{duration: {duration}, isRolling: false, calendar: {{startTime: '{start}', timeZone: UTC}}}}")
    text = (f"apiVersion: openslo/v1\nkind: SLO\nmetadata: {{name: x}}\nspec:\n  timeWindow: [{window}]\n"
            "  indicator: {spec: {ratioMetric: {good: {metricSource: {type: causalsre, spec: {conditions: "
            f"[{{metric: ttft_s, op: lte, value: {value}}}]}}}}}}, total: {{metricSource: {{type: causalsre}}}}}}}}}}\n"
            f"  objectives: [{{target: {target}}}]\n")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "slo.yaml"
        path.write_text(text)
        slos = _one_line(load_slos, path)
    for slo in slos or []:
        assert 0 <= slo.objective < 1 and all(math.isfinite(c.value) for c in slo.conditions)
        assert slo.window.duration.seconds <= times.MAX_DURATION_S
        for at in (times.EARLIEST, times.LATEST):  # the period arithmetic never overflows in range
            period = period_at(slo, at)
            assert period.lower <= period.at


@FUZZ
@given(column=st.sampled_from(["request_id", "priority", "tenant", "attributes", "arrival_ts", "ttft_s",
                               "is_ok", "prompt_tokens"]),
       text=st.one_of(NUMBERS.map(str), TIME_TEXT, st.text(max_size=30), st.just("9" * 25)))
def test_where_values_fit_their_column_or_fail_in_one_line(column, text):
    from causalsre.cli.slo import _parse_where
    from causalsre.slo.columns import schema_columns

    where = _one_line(_parse_where, (f"{column}={text}",), schema_columns())
    if where is None:
        return
    value = where[column]
    con = duckdb.connect()  # whatever was accepted binds and compares in DuckDB
    con.execute("CREATE TABLE t (v " + schema_columns()[column] + ")")
    con.execute("SELECT count(*) FROM t WHERE v = ?", [value]).fetchone()
    if isinstance(value, float):
        assert math.isfinite(value)


CELLS = st.one_of(NUMBERS, st.sampled_from(["fast", "", "1e999", "-inf", "NaN", "  7 "]), st.none())


@FUZZ
@given(cells=st.lists(st.tuples(st.integers(0, 29), st.integers(0, 3), CELLS), max_size=4),
       threshold=NUMBERS, in_abnormal=st.booleans())
def test_attribute_with_hostile_cells_and_thresholds(cells, threshold, in_abnormal):
    from causalsre.causal.rootcause import rank_root_causes

    rng = np.random.default_rng(0)
    normal = pd.DataFrame(rng.normal(size=(30, 4)), columns=list("abcd")).astype(object)
    abnormal = normal.iloc[:3].copy()
    frame = abnormal if in_abnormal else normal
    for row, col, cell in cells:
        frame.iloc[row % len(frame), col] = cell
    graph = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "d")])
    ranked = _one_line(rank_root_causes, normal, abnormal, graph, "d", threshold=threshold)
    for cause in ranked or []:
        assert math.isfinite(cause.score) and cause.node in graph


@functools.lru_cache(maxsize=1)
def _empty_telemetry() -> duckdb.DuckDBPyConnection:
    """One migrated in-memory database for every example: the test only reads it (migrating a new one per
    example was most of the test's 27 s)."""
    from causalsre.telemetry import migrate

    con = duckdb.connect()
    migrate(con)
    return con


@FUZZ
@given(start=TIME_TEXT, end=TIME_TEXT)
def test_start_end_windows_are_in_range_or_fail_in_one_line(start, end):
    from causalsre.windows import parse_window

    con = _empty_telemetry()
    window = _one_line(parse_window, f"{start}/{end}", con, allow_empty=True)
    if window is not None:
        assert times.EARLIEST <= window.start < window.end <= times.LATEST
        assert window.count(con) == 0  # the bound parameters compare in DuckDB

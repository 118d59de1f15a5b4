"""Arbitrary JSON and CSV into every new importer: a UserError or a clean parse, never another exception."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from causalsre.errors import UserError
from causalsre.telemetry.importers import events, guidellm, otel, prometheus, vllm_bench

scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=5), st.sampled_from(["NaN", "1767225600", "success", "matrix"]))
value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                    st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                     max_leaves=10)
# Documents shaped like each format, with arbitrary leaves, so the checks deep inside are reached too.
otel_doc = st.fixed_dictionaries({"resourceSpans": st.lists(st.fixed_dictionaries({"scopeSpans": st.lists(
    st.fixed_dictionaries({"spans": st.lists(st.fixed_dictionaries({
        "startTimeUnixNano": scalar, "endTimeUnixNano": scalar, "status": value,
        "attributes": st.lists(st.fixed_dictionaries({"key": st.sampled_from(
            ["gen_ai.usage.prompt_tokens", "gen_ai.latency.e2e", "gen_ai.latency.time_to_first_token"]),
            "value": st.dictionaries(st.sampled_from(["intValue", "doubleValue", "stringValue"]), scalar,
                                     min_size=1, max_size=1)}), max_size=3)}), max_size=3)}), max_size=2)}),
    max_size=2)})
guidellm_doc = st.fixed_dictionaries({"benchmarks": st.lists(st.fixed_dictionaries({"requests": st.dictionaries(
    st.sampled_from(["successful", "incomplete", "errored"]), st.lists(st.fixed_dictionaries({
        "info": st.fixed_dictionaries({"timings": st.dictionaries(st.sampled_from(
            ["targeted_start", "request_start", "first_token_iteration", "request_end"]), scalar)}),
        "prompt_tokens": scalar, "output_tokens": scalar}), max_size=3), max_size=3)}), max_size=2)})
query_doc = st.fixed_dictionaries({"status": st.just("success"), "data": st.fixed_dictionaries({
    "resultType": st.sampled_from(["matrix", "vector"]), "result": st.lists(st.fixed_dictionaries({
        "metric": st.dictionaries(st.sampled_from(["__name__", "job"]), st.text(max_size=4)),
        "values": st.lists(st.lists(scalar, max_size=3), max_size=3), "value": st.lists(scalar, max_size=3)}),
        max_size=3)})})
bench_doc = st.dictionaries(st.sampled_from(["ttfts", "itls", "input_lens", "output_lens", "errors", "date",
                                             "duration", "start_times", "queue_times", "latencies"]), value)


def _only_user_errors(parse, text: str, suffix: str = ".json") -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"f-1767225600{suffix}"
        path.write_text(text)
        try:
            parse([path])
        except UserError:
            pass


@settings(max_examples=60, deadline=None, derandomize=True)
@given(doc=st.one_of(otel_doc, value))
def test_otel(doc):
    _only_user_errors(otel.parse, json.dumps(doc))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(doc=st.one_of(guidellm_doc, value))
def test_guidellm(doc):
    _only_user_errors(guidellm.parse, json.dumps(doc))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(doc=st.one_of(query_doc, value))
def test_prometheus_json(doc):
    _only_user_errors(prometheus.parse, json.dumps(doc))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(doc=bench_doc)
def test_vllm_bench(doc):
    _only_user_errors(vllm_bench.parse, json.dumps(doc))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(text=st.text(alphabet=st.sampled_from(list("abc019,.:-TZ\n\"# {}=e+")), max_size=80))
def test_text_formats(text):
    _only_user_errors(prometheus.parse, text, ".prom")
    _only_user_errors(events.parse, "time,key,value,kind\n" + text, ".csv")

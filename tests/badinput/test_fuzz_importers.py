"""Property-based fuzzing of the importers: nothing but UserError may escape, whatever the file holds."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from causalsre.errors import UserError
from causalsre.telemetry import migrate
from causalsre.telemetry.imports import import_requests_file, import_vllm_bench

COLUMNS = ["arrival_time", "ttft_s", "e2e_s", "prompt_tokens", "output_tokens", "status", "tpot_s", "tenant", "x"]
cell = st.one_of(st.text(max_size=12), st.integers(-5, 10**12).map(str), st.floats(allow_nan=True).map(str),
                 st.sampled_from(["", "ok", "2026-01-01T00:00:00Z", "1767225600", "nan", "inf", "-1", "null"]))


def _fresh() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    migrate(con)
    return con


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(header=st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=9, unique=True),
       rows=st.lists(st.lists(cell, min_size=9, max_size=9), min_size=0, max_size=4))
def test_csv_importer_raises_only_user_errors(header, rows):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.csv"
        lines = [",".join(header)] + [",".join(v.replace(",", ";").replace("\n", " ") for v in row[: len(header)])
                                      for row in rows]
        path.write_text("\n".join(lines) + "\n")
        con = _fresh()
        try:
            import_requests_file(con, path)
        except UserError:
            assert con.execute("SELECT count(*) FROM requests").fetchone()[0] == 0
        else:
            assert con.execute("SELECT count(*) FROM requests").fetchone()[0] == len(rows)
        con.close()


json_value = st.recursive(st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.integers(), st.text()),
                          lambda inner: st.lists(inner, max_size=3), max_leaves=8)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(doc=st.dictionaries(st.sampled_from(["ttfts", "itls", "input_lens", "output_lens", "errors", "date",
                                            "duration", "request_submit_times", "request_rate"]),
                           json_value, max_size=9))
def test_vllm_importer_raises_only_user_errors(doc):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.json"
        path.write_text(json.dumps(doc))
        con = _fresh()
        try:
            import_vllm_bench(con, path)
        except UserError:
            assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
        con.close()

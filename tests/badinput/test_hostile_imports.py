"""Hostile but realistic import files (issue #18, "data changed or lost"), through `causalsre db import`.

Each file either imports with every value it carries kept exactly (its request ids, tenants named NA or
null, attribute values of any Parquet type), or is refused in one line with exit 2, leaving the database
byte-identical. The known right answer is written into each file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly
from tests.badinput.conftest import run_cli

HEADER = "arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status"


def _csv(tmp_path: Path, name: str, header: str, *rows: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join((header,) + rows) + "\n")
    return path


def _sha(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.parent.glob(path.name + "*"))}


def _rows(db: Path, columns: str) -> list[tuple]:
    con = connect_readonly(db)
    try:
        return con.execute(f"SELECT {columns} FROM request_metrics ORDER BY arrival_ns, request_id").fetchall()
    finally:
        con.close()


@pytest.fixture
def base_db(tmp_path) -> Path:
    """A database holding one good import, to refuse bad files against."""
    db = tmp_path / "base.duckdb"
    good = _csv(tmp_path, "good.csv", HEADER, "2026-01-01T00:00:00Z,0.1,0.5,10,5,ok")
    assert main(["db", "import", "requests", str(good), "--db", str(db)]) == 0
    return db


def test_the_files_request_ids_are_kept_not_renumbered(tmp_path, capsys):
    path = _csv(tmp_path, "ids.csv", HEADER + ",request_id",
                "2026-01-01T00:00:00Z,0.1,0.5,10,5,ok,1007",
                "2026-01-01T00:00:01Z,0.1,0.5,10,5,ok,42",
                "2026-01-01T00:00:02Z,0.1,0.5,10,5,ok,9223372036854775807")
    db = tmp_path / "t.duckdb"
    code, out, err = run_cli(["db", "import", "requests", str(path), "--db", str(db)], capsys)
    assert code == 0, err
    assert [r[0] for r in _rows(db, "request_id")] == [1007, 42, 2**63 - 1]
    con = connect_readonly(db)
    attributes = con.execute("SELECT count(*) FROM requests WHERE attributes IS NOT NULL").fetchone()[0]
    con.close()
    assert attributes == 0  # kept in its column, not moved to the attributes


@pytest.mark.parametrize("ids,fragment", [
    (["5", "5"], "repeats row 1"),
    (["5", "abc"], "'abc' is not a number"),
    (["5", "1.5"], "not a whole number"),
    (["5", ""], "request_id row 2 is empty"),
    (["5", "99999999999999999999"], "outside"),
])
def test_bad_request_ids_are_refused_in_one_line(ids, fragment, tmp_path, base_db, capsys):
    rows = [f"2026-01-01T00:00:0{i}Z,0.1,0.5,10,5,ok,{v}" for i, v in enumerate(ids)]
    path = _csv(tmp_path, "bad_ids.csv", HEADER + ",request_id", *rows)
    _refused(["db", "import", "requests", str(path), "--db", str(base_db)], fragment, base_db, capsys)


def test_tenant_words_that_look_missing_stay_text_and_every_schema_column_is_kept(tmp_path, capsys):
    names = ["NA", "None", "null", "n/a", "NaN", ""]
    rows = [f"2026-01-01T00:00:0{i}Z,0.1,0.5,10,5,ok,{name},{i},7,stop,{i % 2},{name},{i}"
            for i, name in enumerate(names)]
    path = _csv(tmp_path, "tenants.csv", HEADER + ",tenant,priority,target_output_tokens,finish_reason,"
                "num_preemptions,region,size", *rows)
    db = tmp_path / "t.duckdb"
    code, _, err = run_cli(["db", "import", "requests", str(path), "--db", str(db)], capsys)
    assert code == 0, err
    con = connect_readonly(db)
    got = con.execute("SELECT tenant, priority, target_output_tokens, finish_reason, num_preemptions, attributes "
                      "FROM requests ORDER BY request_id").fetchall()
    con.close()
    assert [g[0] for g in got] == ["NA", "None", "null", "n/a", "NaN", None]  # only an empty cell is missing
    assert [g[1] for g in got] == list(range(6))
    assert {g[2] for g in got} == {7} and {g[3] for g in got} == {"stop"}
    assert [g[4] for g in got] == [0, 1, 0, 1, 0, 1]
    attributes = [json.loads(g[5]) for g in got]
    assert [a["region"] for a in attributes] == ["NA", "None", "null", "n/a", "NaN", None]
    assert [a["size"] for a in attributes] == list(range(6))  # a numeric column stays numbers


@pytest.mark.parametrize("column,value,fragment", [
    ("priority", "high", "column priority row 1: 'high' is not a number"),
    ("output_tokens", "2.7", "column output_tokens row 1: '2.7' is not a whole number"),
    ("prompt_tokens", "99999999999999999999", "outside 0..2147483647"),
    ("ttft_s", "inf", "not a finite number"),
    ("e2e_s", "1e308", "more than"),
    ("ttft_s", "-0.5", "negative"),
    ("arrival_time", "3000-01-01T00:00:00Z", "cannot parse '3000-01-01T00:00:00Z'"),
    ("arrival_time", "1900-01-01T00:00:00Z", "outside 1970..2200"),
    ("arrival_time", "1e308", "arrival_time"),
])
def test_bad_cells_are_refused_not_made_null_or_truncated(column, value, fragment, tmp_path, base_db, capsys):
    cells = dict(zip(HEADER.split(","), ["2026-01-01T00:00:00Z", "0.1", "0.5", "10", "5", "ok"]))
    cells["priority"] = "1"
    cells[column] = value
    path = _csv(tmp_path, "bad.csv", ",".join(cells), ",".join(cells.values()))
    _refused(["db", "import", "requests", str(path), "--db", str(base_db)], fragment, base_db, capsys)


def test_a_nul_byte_in_a_tenant_is_refused(tmp_path, base_db, capsys):
    path = tmp_path / "nul.csv"
    path.write_bytes(f"{HEADER},tenant\n2026-01-01T00:00:00Z,0.1,0.5,10,5,ok,ac\x00me\n".encode())
    _refused(["db", "import", "requests", str(path), "--db", str(base_db)], "line 2 contains a NUL byte",
             base_db, capsys)


def _parquet(tmp_path: Path, name: str, **extra: pa.Array) -> Path:
    n = len(next(iter(extra.values()))) if extra else 2
    columns = {
        "arrival_time": pa.array([dt.datetime(2026, 1, 1, 0, 0, i) for i in range(n)], pa.timestamp("us")),
        "ttft_s": pa.array([0.1] * n), "e2e_s": pa.array([0.5] * n),
        "prompt_tokens": pa.array([10] * n), "output_tokens": pa.array([5] * n), "status": pa.array(["ok"] * n),
    }
    columns.update(extra)
    path = tmp_path / name
    pq.write_table(pa.table(columns), path)
    return path


def test_parquet_attribute_types_become_exact_json(tmp_path, capsys):
    path = _parquet(
        tmp_path, "typed.parquet",
        blob=pa.array([b"gpu-a", b"gpu-b"], pa.binary()),
        day=pa.array([dt.date(2026, 1, 1), None], pa.date32()),
        price=pa.array([Decimal("1.25"), Decimal("12345678901234567890.55")], pa.decimal128(38, 2)),
        tags=pa.array([["a", "b"], []], pa.list_(pa.string())),
        nested=pa.array([{"k": 1}, {"k": None}], pa.struct([("k", pa.int64())])),
    )
    db = tmp_path / "t.duckdb"
    code, _, err = run_cli(["db", "import", "requests", str(path), "--db", str(db)], capsys)
    assert code == 0, err
    attributes = [json.loads(r[0]) for r in _rows(db, "attributes")]
    assert attributes == [
        {"blob": "gpu-a", "day": "2026-01-01", "price": 1.25, "tags": ["a", "b"], "nested": {"k": 1}},
        # a decimal no double holds exactly keeps its exact text
        {"blob": "gpu-b", "day": None, "price": "12345678901234567890.55", "tags": [], "nested": {"k": None}},
    ]


@pytest.mark.parametrize("extra,fragment", [
    ({"blob": pa.array([b"\xff\xfe", b"ok"], pa.binary())}, "column blob row 1 holds binary data"),
    ({"score": pa.array([1.0, float("inf")])}, "column score row 2 holds the non-finite number inf"),
    ({"arrival_time": pa.array([dt.datetime(2026, 1, 1), dt.datetime(3000, 1, 1)], pa.timestamp("us"))},
     "arrival_time row 2"),
    ({"ttft_s": pa.array([0.1, float("inf")])}, "ttft_s row 2"),
    ({"e2e_s": pa.array([0.5, -1.0])}, "negative"),
    ({"output_tokens": pa.array([5, 2**64 - 1], pa.uint64())}, "outside 0..2147483647"),
    ({"output_tokens": pa.array([5.0, 2.7])}, "not a whole number"),
    ({"priority": pa.array(["1", "high"])}, "priority row 2"),
])
def test_bad_parquet_values_are_refused_in_one_line(extra, fragment, tmp_path, base_db, capsys):
    path = _parquet(tmp_path, "bad.parquet", **extra)
    _refused(["db", "import", "requests", str(path), "--db", str(base_db)], fragment, base_db, capsys)


def test_a_repeated_csv_header_is_refused(tmp_path, base_db, capsys):
    path = _csv(tmp_path, "twice.csv", HEADER + ",tenant,tenant", "2026-01-01T00:00:00Z,0.1,0.5,10,5,ok,a,b")
    _refused(["db", "import", "requests", str(path), "--db", str(base_db)], "tenant more than once", base_db,
             capsys)


@pytest.mark.parametrize("doc,fragment", [
    ({"ttfts": [-0.1], "itls": [[]], "input_lens": [1], "output_lens": [1], "errors": [""],
      "request_submit_times": [1767225600.0]}, "below 0"),
    ({"ttfts": [0.1], "itls": [[]], "input_lens": [2.7], "output_lens": [1], "errors": [""],
      "request_submit_times": [1767225600.0]}, "not a count"),
    ({"ttfts": [1e308], "itls": [[]], "input_lens": [1], "output_lens": [1], "errors": [""],
      "request_submit_times": [1767225600.0]}, "above"),
])
def test_bad_vllm_values_are_refused(doc, fragment, tmp_path, base_db, capsys):
    path = tmp_path / "vllm.json"
    path.write_text(json.dumps(doc))
    _refused(["db", "import", "vllm-bench", str(path), "--db", str(base_db)], fragment, base_db, capsys)


def test_db_check_flags_a_stored_time_outside_the_range(tmp_path, base_db, capsys):
    assert run_cli(["db", "check", str(base_db)], capsys)[0] == 0
    con = duckdb.connect(str(base_db))  # what the old importer stored for a year-3000 Parquet timestamp
    con.execute("UPDATE requests SET scheduled_arrival_ns = -9223372036854775807, enqueue_ns = -9223372036854775807")
    con.close()
    code, out, _ = run_cli(["db", "check", str(base_db)], capsys)
    assert code == 1
    assert "1 requests with a time outside 1970..2200" in out


def _refused(argv: list[str], fragment: str, db: Path, capsys) -> None:
    before = _sha(db)
    code, out, err = run_cli(argv, capsys)
    assert code == 2, (out, err)
    assert fragment.lower() in err.lower(), err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in out + err
    assert _sha(db) == before

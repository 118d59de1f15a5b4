"""Round 4 of the hostile inputs: per-request tables as spreadsheets and other tools save them.

UTF-16 (Excel's "Unicode text", PowerShell's default) read as "line 1 contains a NUL byte"; a header cell left
empty over data became an attribute named ""; epoch milliseconds or nanoseconds were "not epoch seconds" with no
hint of the unit. Accepted as they should be, and kept as guards: a UTF-8 BOM, CRLF line ends, a quoted newline in
an attribute, a separator at the end of every line, times with offsets.
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

from tests.badinput.conftest import refused, run_cli

HEADER = "arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status"
ROWS = [f"{1_700_000_000 + i},0.1,0.5,10,20,ok" for i in range(3)]


def _import(world, name: str, data: bytes, capsys) -> tuple[int, str]:
    path = world.path(name)
    path.write_bytes(data)
    code, _, err = run_cli(["db", "import", "requests", str(path), "--db", str(world.path("new.duckdb"))], capsys)
    return code, err


def _stored(world) -> list[tuple]:
    con = duckdb.connect(str(world.path("new.duckdb")), read_only=True)
    try:
        return con.execute("SELECT epoch(arrival_ts), attributes::VARCHAR FROM request_metrics "
                           "ORDER BY request_id").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_csv_is_named_as_utf16(encoding, world, capsys):
    path = world.path("u16.csv")
    path.write_bytes("\n".join([HEADER, *ROWS, ""]).encode(encoding))
    refused(["db", "import", "requests", str(path), "--db", str(world.path("new.duckdb"))],
            "is UTF-16 text, not UTF-8", capsys)
    assert not world.path("new.duckdb").exists()


def test_a_nameless_column_with_data_is_refused_and_an_empty_one_dropped(world, capsys):
    path = world.path("blank.csv")
    path.write_text("\n".join([HEADER + ",", *(r + ",x" for r in ROWS), ""]))
    refused(["db", "import", "requests", str(path), "--db", str(world.path("new.duckdb"))],
            "column 7 has no name in the header but holds data", capsys)
    assert not world.path("new.duckdb").exists()
    code, err = _import(world, "trailing.csv", "\n".join([HEADER + ",", *(r + "," for r in ROWS), ""]).encode(),
                        capsys)
    assert code == 0, err
    assert [a for _, a in _stored(world)] == [None] * 3  # no attribute named ""


@pytest.mark.parametrize("scale, unit", [(1_000, "milliseconds"), (1_000_000, "microseconds"),
                                         (1_000_000_000, "nanoseconds")])
def test_epoch_times_in_another_unit_name_the_unit(scale, unit, world, capsys):
    path = world.path("units.csv")
    path.write_text("\n".join([HEADER, *(f"{(1_700_000_000 + i) * scale},0.1,0.5,10,20,ok" for i in range(3)), ""]))
    refused(["db", "import", "requests", str(path), "--db", str(world.path("new.duckdb"))],
            f"looks like epoch {unit}: divide by {scale:,}", capsys)
    frame = pd.DataFrame({"arrival_time": [1_700_000_000 * scale], "ttft_s": [0.1], "e2e_s": [0.5],
                          "prompt_tokens": [1], "output_tokens": [2], "status": ["ok"]})
    frame.to_parquet(world.path("units.parquet"))
    refused(["db", "import", "requests", str(world.path("units.parquet")), "--db", str(world.path("new.duckdb"))],
            f"looks like epoch {unit}", capsys)
    assert not world.path("new.duckdb").exists()


def test_a_number_far_past_any_unit_keeps_the_plain_fix(world, capsys):
    path = world.path("far.csv")
    path.write_text("\n".join([HEADER, "1e30,0.1,0.5,10,20,ok", ""]))
    err = refused(["db", "import", "requests", str(path), "--db", str(world.path("new.duckdb"))],
                  "epoch seconds, between 1970 and 2200", capsys)
    assert "looks like" not in err


@pytest.mark.parametrize("name, data", [
    ("bom.csv", ("\ufeff" + "\n".join([HEADER, *ROWS, ""])).encode()),
    ("crlf.csv", "\r\n".join([HEADER, *ROWS, ""]).encode()),
])
def test_a_bom_and_crlf_import_as_plain_utf8(name, data, world, capsys):
    code, err = _import(world, name, data, capsys)
    assert code == 0, err
    assert [t for t, _ in _stored(world)] == [1_700_000_000 + i for i in range(3)]


def test_a_quoted_newline_and_time_offsets_are_kept(world, capsys):
    lines = [HEADER + ",note", '2026-01-01T10:00:00+05:00,0.1,0.5,10,20,ok,"two\nlines"',
             "2026-01-01T05:00:01Z,0.1,0.5,10,20,ok,x"]
    code, err = _import(world, "quoted.csv", "\n".join([*lines, ""]).encode(), capsys)
    assert code == 0, err
    stored = _stored(world)
    assert [t for t, _ in stored] == [1_767_243_600, 1_767_243_601]  # +05:00 applied: both 05:00 UTC
    assert json.loads(stored[0][1]) == {"note": "two\nlines"}


@pytest.mark.parametrize("header, shown", [(" arrival_time , ttft_s ,e2e_s,prompt_tokens,output_tokens,status",
                                            "' arrival_time ', ' ttft_s '"), (HEADER.upper(), "'ARRIVAL_TIME'")])
def test_a_header_that_differs_in_case_or_spaces_is_pointed_at(header, shown, world, capsys):
    path = world.path("near.csv")
    path.write_text("\n".join([header, ROWS[0], ""]))
    err = refused(["db", "import", "requests", str(path), "--db", str(world.path("new.duckdb"))],
                  "lacks required column(s) arrival_time", capsys)
    assert f"it has {shown}" in err and "differ only in case or spaces" in err

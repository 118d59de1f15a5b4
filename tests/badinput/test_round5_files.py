"""Round 5 of the hostile inputs: one CSV reader for every CSV input, and time columns that mix conventions.

Before: only `db import requests|table` named a UTF-16 file (Excel's "Unicode text"); `db import events` said
"not UTF-8", `attribute` said "cannot read ... as a table ('utf-8' codec can't decode ...)" or read a file of NUL
bytes, a harness trace "does not parse". And a column mixing `2026-01-31T12:00:00-05:00` with
`2026-01-31T12:05:00` read the second as UTC, five hours off, without a word. Now every CSV goes through
``safeio.decode_table`` and a mixed column is refused naming the column (or line) and both kinds.
"""

from __future__ import annotations

import duckdb
import pytest

from tests.badinput.conftest import refused, run_cli

EVENTS = "time,key,value,kind\n2026-01-31T12:00:00Z,max_num_seqs,8,config\n2026-01-31T12:05:00Z,deploy,v2,deploy\n"
HEADER = "arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status"
NORMAL = "a,b,t\n" + "".join(f"{i % 3},{(i * 7) % 5},{i % 3 + (i * 7) % 5}\n" for i in range(40))
ABNORMAL = "a,b,t\n" + "".join(f"{i % 3 + 9},{(i * 7) % 5},{i % 3 + 9 + (i * 7) % 5}\n" for i in range(5))
EDGES = "cause,effect\na,t\nb,t\n"


def _attribute(world, normal: str, edges: str, *, encoding: str = "utf-8") -> list[str]:
    paths = {}
    for name, text in (("normal.csv", normal), ("abnormal.csv", ABNORMAL), ("edges.csv", edges)):
        paths[name] = world.path(name)
        paths[name].write_bytes(text.encode(encoding) if name != "abnormal.csv" else text.encode())
    return ["attribute", "--graph", str(paths["edges.csv"]), "--normal", str(paths["normal.csv"]),
            "--abnormal", str(paths["abnormal.csv"]), "--target", "t"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_events_file_is_named_as_utf16(encoding, world, capsys):
    path = world.path("events.csv")
    path.write_bytes(EVENTS.encode(encoding))
    db = world.path("good.duckdb")
    before = world.fingerprint()
    refused(["db", "import", "events", str(path), "--db", str(db)], "is UTF-16 text, not UTF-8", capsys)
    assert world.fingerprint() == before


def test_an_events_file_with_a_utf8_bom_imports(world, capsys):
    path = world.path("events.csv")
    path.write_bytes(b"\xef\xbb\xbf" + EVENTS.encode())
    code, _, err = run_cli(["db", "import", "events", str(path), "--db", str(world.path("new.duckdb"))], capsys)
    assert code == 0, err
    con = duckdb.connect(str(world.path("new.duckdb")), read_only=True)
    try:
        assert con.execute("SELECT key FROM operator_events ORDER BY ts_ns").fetchall() == [("max_num_seqs",), ("deploy",)]
    finally:
        con.close()


def test_an_events_file_with_a_nul_byte_names_the_line(world, capsys):
    path = world.path("events.csv")
    path.write_bytes(EVENTS.encode().replace(b"deploy,v2", b"deploy,v\x002"))
    refused(["db", "import", "events", str(path), "--db", str(world.path("new.duckdb"))], "line 3 contains a NUL byte",
            capsys)
    assert not world.path("new.duckdb").exists()


@pytest.mark.parametrize("which", ["normal", "edges"])
def test_a_utf16_attribute_input_is_named_as_utf16(which, world, capsys):
    # one of the two files in UTF-16, the other UTF-8
    normal = NORMAL.encode("utf-16") if which == "normal" else NORMAL.encode()
    edges = EDGES.encode("utf-16") if which == "edges" else EDGES.encode()
    argv = _attribute(world, NORMAL, EDGES)
    world.path("normal.csv").write_bytes(normal)
    world.path("edges.csv").write_bytes(edges)
    refused(argv, f"{which}.csv is UTF-16 text, not UTF-8", capsys)


def test_attribute_inputs_with_a_utf8_bom_are_read(world, capsys):
    # a BOM used to become part of the first column's name ("\ufeffa"), which then matched no graph node
    argv = _attribute(world, "\ufeff" + NORMAL, "\ufeff" + EDGES)
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    assert out.splitlines()[0].split()[0] != "" and "a" in out


def test_a_utf16_trace_is_named_as_utf16(tmp_path):
    from causalsre.errors import UserError
    from harness.traces import read_trace

    path = tmp_path / "trace.csv"
    path.write_bytes("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,10,20\n".encode("utf-16"))
    with pytest.raises(UserError, match="is UTF-16 text, not UTF-8"):
        read_trace(path)


# Times that mix naive and offset-aware values in one column.

@pytest.mark.parametrize("first, second", [
    ("2026-01-31T12:00:00-05:00", "2026-01-31T12:05:00"),
    ("2026-01-31T12:00:00", "2026-01-31T12:05:00Z"),
    ("2026-01-31 12:00:00+0100", "2026-01-31 12:05:00"),
])
def test_a_requests_column_mixing_naive_and_offset_times_is_refused(first, second, world, capsys):
    path = world.path("mixed.csv")
    path.write_text("\n".join([HEADER, f"{first},0.1,0.5,10,20,ok", f"{second},0.1,0.5,10,20,ok",
                               "1769861100,0.1,0.5,10,20,ok", ""]))
    err = refused(["db", "import", "requests", str(path), "--db", str(world.path("new.duckdb"))],
                  "column arrival_time mixes times with a UTC offset", capsys)
    assert first in err and second in err and "give every time an offset" in err
    assert not world.path("new.duckdb").exists()


@pytest.mark.parametrize("times", [
    ["2026-01-31T12:00:00-05:00", "2026-01-31T12:05:00+01:00", "2026-01-31T12:06:00Z"],  # all with offsets
    ["2026-01-31T12:00:00", "2026-01-31 12:05:00", "2026-01-31"],  # all naive: read as UTC, the documented rule
    ["2026-01-31T12:00:00Z", "1769861100"],  # epoch seconds are absolute: they mix with either
])
def test_a_column_of_one_convention_imports(times, world, capsys):
    path = world.path("one.csv")
    path.write_text("\n".join([HEADER, *(f"{t},0.1,0.5,10,20,ok" for t in times), ""]))
    code, _, err = run_cli(["db", "import", "requests", str(path), "--db", str(world.path("new.duckdb"))], capsys)
    assert code == 0, err


def test_the_documented_rule_reads_naive_times_as_utc(world, capsys):
    path = world.path("naive.csv")
    path.write_text("\n".join([HEADER, "2026-01-31T12:00:00,0.1,0.5,10,20,ok", ""]))
    code, _, err = run_cli(["db", "import", "requests", str(path), "--db", str(world.path("new.duckdb"))], capsys)
    assert code == 0, err
    con = duckdb.connect(str(world.path("new.duckdb")), read_only=True)
    try:
        assert con.execute("SELECT epoch(arrival_ts) FROM request_metrics").fetchall() == [(1769860800.0,)]
    finally:
        con.close()


def test_an_events_file_mixing_naive_and_offset_times_is_refused(world, capsys):
    path = world.path("events.csv")
    path.write_text("time,key,value\n2026-01-31T12:00:00+02:00,deploy,v1\n1769861100,deploy,v2\n"
                    "2026-01-31T12:10:00,deploy,v3\n")
    before = world.fingerprint()
    refused(["db", "import", "events", str(path), "--db", str(world.path("good.duckdb"))],
            "events.csv mixes times with a UTC offset (line 2: '2026-01-31T12:00:00+02:00') and times without one "
            "(line 4: '2026-01-31T12:10:00')", capsys)
    assert world.fingerprint() == before


@pytest.mark.parametrize("text, expected", [
    ("2026-01-31T12:00:00Z", True), ("2026-01-31T12:00:00.123+05:30", True), ("2026-01-31 12:00 UTC", True),
    ("2026-01-31T1200-0100", True), ("2026-01-31", False), ("2026-01-31T12:00:00", False),
    ("2026-01-31T12:00:00.999", False), ("2026-12-01 23:59", False),
])
def test_has_offset(text, expected):
    from causalsre.times import has_offset

    assert has_offset(text) is expected


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_a_utf16_spec_file_is_named_as_utf16(encoding, world, capsys):
    # Before: "is not UTF-8 text (byte 0xff at offset 0)", which names no encoding
    spec = world.path("spec16.yaml")
    spec.write_bytes(world.path("slo.yaml").read_text().encode(encoding))
    refused(["slo", "check", str(spec)], "is UTF-16 text, not UTF-8", capsys)


def test_a_filter_that_matches_nothing_names_the_values_the_data_holds(world, capsys):
    # Before: "no requests match in request_metrics (check the database and the filter)"
    err = refused(["slo", "report", "--db", str(world.path("good.duckdb")), "--slo", str(world.path("slo.yaml")),
                   "--where", "tenant=no-such-tenant"], "no requests match the filter tenant='no-such-tenant'", capsys)
    con = duckdb.connect(str(world.path("good.duckdb")), read_only=True)
    try:
        tenants = [row[0] for row in con.execute("SELECT DISTINCT tenant FROM request_metrics WHERE tenant IS NOT NULL "
                                                 "ORDER BY 1").fetchall()]
    finally:
        con.close()
    assert tenants and f"tenant holds {', '.join(tenants[:10])}" in err

"""Round 2 of the hostile inputs, each driven through the CLI: repeated YAML keys, empty TOML files, FIFOs where a
config is expected, values echoed whole, and tables too wide or with too long a line."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from causalsre import safeio
from causalsre.errors import UserError, clip
from tests.badinput.bad_files import GOOD_SLO, REPO
from tests.badinput.conftest import refused as _refused, run_cli
from tests.conftest import FIXTURES

SMOKE = REPO / "harness" / "configs" / "smoke.toml"


@pytest.mark.parametrize("old,new,key", [
    ("  objectives: [{displayName: fast, target: 0.99}]",
     "  objectives: [{displayName: fast, target: 0.99}]\n  objectives: [{displayName: slow, target: 0.5}]", "objectives"),
    ("{metric: ttft_s, op: lte, value: 1.0}", "{metric: ttft_s, op: lte, value: 1.0, value: 100}", "value"),
])
def test_a_repeated_yaml_key_is_refused_not_last_one_wins(old, new, key, tmp_path, capsys):
    # Before: the second value silently replaced the first (target 0.5, threshold 100 s were analysed).
    spec = tmp_path / "dup.yaml"
    text = GOOD_SLO.read_text()
    assert old in text
    spec.write_text(text.replace(old, new))
    _refused(["slo", "check", str(spec)], f"the key '{key}' appears twice", capsys)
    assert run_cli(["slo", "check", str(GOOD_SLO)], capsys)[0] == 0  # the spec it came from is fine


def test_a_merge_key_may_still_be_overridden(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("a: &x {b: 1, c: 2}\nd:\n  <<: *x\n  b: 3\n")
    assert safeio.load_yaml(path, what="file") == {"a": {"b": 1, "c": 2}, "d": {"b": 3, "c": 2}}


@pytest.mark.parametrize("command", [
    ["harness", "run", "{toml}", "--db", "{db}"],
    ["harness", "sweep", "{toml}", "--db", "{db}"],
    ["serve", "{toml}", "--port", "0"],
    ["fit", "--db", "{db}", "--slo", str(GOOD_SLO), "--priors", "{toml}"],
], ids=["harness-run", "harness-sweep", "serve", "fit-priors"])
@pytest.mark.parametrize("text", ["", "# only a comment\n\n"], ids=["empty", "comments"])
def test_an_empty_toml_is_refused_everywhere(command, text, tmp_path, capsys):
    toml = tmp_path / "c.toml"
    toml.write_text(text)
    argv = [a.replace("{toml}", str(toml)).replace("{db}", str(tmp_path / "t.duckdb")) for a in command]
    _refused(argv, "is empty (it sets nothing)", capsys)
    assert not (tmp_path / "t.duckdb").exists()


@pytest.mark.parametrize("command,fragment", [
    (["harness", "run", "{fifo}", "--db", "{db}"], "is a FIFO"),
    (["serve", "{fifo}", "--port", "0"], "is a FIFO"),
    (["whatif", "--db", "{db}", "--slo", str(GOOD_SLO), "--window", "phase:x", "--set", "max_num_seqs=2",
      "--fit", "{fifo}"], "is a FIFO"),
    (["harness", "replay", "--from", "{fifo}", "--window", "phase:x", "--db", "{db}"], "is a FIFO"),
], ids=["harness-run", "serve", "whatif-fit", "replay-from"])
def test_a_fifo_says_it_is_one_instead_of_does_not_exist(command, fragment, tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    argv = [a.replace("{fifo}", str(fifo)).replace("{db}", str(tmp_path / "t.duckdb")) for a in command]
    err = _refused(argv, fragment, capsys)
    assert "does not exist" not in err


def test_a_folder_config_says_it_is_a_directory():
    with pytest.raises(UserError, match="is a directory"):
        from harness.config import load_run_config

        load_run_config(REPO / "harness")


def test_long_values_are_clipped_in_every_message(tmp_path, capsys):
    long = "q" * 100_000
    err = _refused(["slo", "check", str(tmp_path / f"{long[:200]}.yaml")], "does not exist", capsys)
    assert len(err) < 2500 and "chars]" in err
    err = _refused(["serve", "--port", "9" * 5000], "--port", capsys)  # click's message, clipped too
    assert len(err) < 2500
    line = UserError(f"bad value {long}", f"use {long}").one_line()
    assert len(line) < 2200 and line.startswith("bad value qqq") and "[99820 chars]" in line
    assert clip("a b  c\n d") == "a b c d"  # short text is only put on one line


def _wide_csv(path: Path, columns: int) -> Path:
    head = "arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status"
    extra = ",".join(f"c{i}" for i in range(columns - 6))
    row = "2026-01-01T00:00:00Z,0.1,0.5,10,20,ok" + ",1" * (columns - 6)
    path.write_text(f"{head},{extra}\n{row}\n")
    return path


@pytest.mark.parametrize("kind", ["requests", "table"])
def test_a_table_too_wide_or_with_a_huge_line_is_refused_before_it_is_parsed(kind, tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    wide = _wide_csv(tmp_path / "wide.csv", safeio.REQUEST_COLUMNS + 1)
    _refused(["db", "import", kind, str(wide), "--db", str(db)], "1001 columns, over the limit of 1000", capsys)
    huge = tmp_path / "huge.csv"
    huge.write_bytes(b"a,b\n" + b"x" * (safeio.MAX_LINE_BYTES + 10) + b",1\n")
    _refused(["db", "import", kind, str(huge), "--db", str(db)], "line over 8 MiB (line 2)", capsys)
    assert not db.exists()
    # The right answer at the bound: 1,000 columns import, the extra ones as request attributes.
    ok = _wide_csv(tmp_path / "ok.csv", safeio.REQUEST_COLUMNS)
    code, out, err = run_cli(["db", "import", kind, str(ok), "--db", str(db)], capsys)
    assert code == 0, err


def test_attribute_tables_are_bounded_too(tmp_path, capsys):
    table = tmp_path / "wide.csv"
    table.write_text(",".join(f"n{i}" for i in range(safeio.WIDE_COLUMNS + 1)) + "\n" + "1," * safeio.WIDE_COLUMNS + "1\n")
    edges = tmp_path / "edges.csv"
    edges.write_text("n0,n1\n")
    _refused(["attribute", "--normal", str(table), "--abnormal", str(table), "--graph", str(edges), "--target", "n1"],
             "50001 columns, over the limit of 50000", capsys)


def test_the_line_scan_finds_the_first_long_line_across_blocks(tmp_path):
    path = tmp_path / "t.csv"
    limit = safeio.MAX_LINE_BYTES
    path.write_bytes(b"h\n" + b"y" * (limit - 5) + b"\n" + b"z" * (limit // 2) + b"z" * (limit // 2 + 1) + b"\n")
    with pytest.raises(UserError, match=r"\(line 3\)"):
        safeio.check_table(path, what="t", max_columns=10)
    path.write_bytes(b"h\n" + (b"y" * 1000 + b"\n") * 20_000)  # many short lines over several blocks: fine
    assert safeio.check_table(path, what="t", max_columns=10) == path
    quoted = tmp_path / "q.csv"
    quoted.write_text('"a,b",c\n1,2\n')  # a delimiter inside a quoted name is not a column
    assert safeio.check_table(quoted, what="t", max_columns=2) == quoted


def test_a_parquet_table_is_bounded_by_its_footer(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.copy(FIXTURES / "requests_small.parquet", tmp_path / "ok.parquet")
    assert safeio.check_table(tmp_path / "ok.parquet", what="t", max_columns=100)
    pq.write_table(pa.table({f"c{i}": [1] for i in range(50)}), tmp_path / "w.parquet")
    with pytest.raises(UserError, match="50 columns, over the limit of 20"):
        safeio.check_table(tmp_path / "w.parquet", what="t", max_columns=20)

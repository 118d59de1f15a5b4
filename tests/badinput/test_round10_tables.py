"""Round 10 at the per-request tables: a CSV separated by semicolons or tabs.

Before: `db import requests` and `db import table` read a semicolon-separated export (a European spreadsheet's
"CSV") or a tab-separated file named .csv as one column named "arrival_time;ttft_s;...", and said the file
"lacks required column(s) arrival_time, ttft_s, ..." of a file that has them. Now the error says which
separator the file uses and how to give it.
"""

from __future__ import annotations

import pytest

from tests.badinput.conftest import refused

HEADER = ["arrival_time", "ttft_s", "e2e_s", "prompt_tokens", "output_tokens", "status"]
ROW = ["2026-01-01T00:00:00Z", "0,2", "1,2", "100", "11", "ok"]
CASES = [("semicolons", ";", "replace the semicolons with commas"), ("tabs", "\t", "name it .tsv")]


@pytest.mark.parametrize("importer", ["requests", "table"])
@pytest.mark.parametrize("name, mark, fix", CASES, ids=[c[0] for c in CASES])
def test_a_csv_with_another_separator_says_which(importer, name, mark, fix, tmp_path, capsys):
    path = tmp_path / "export.csv"
    path.write_text(mark.join(HEADER) + "\n" + mark.join(ROW) + "\n")
    extra = ["--map", "arrival_time=arrival_time"] if importer == "table" else []
    err = refused(["db", "import", importer, str(path), "--db", str(tmp_path / "t.duckdb"), *extra],
                  f"export.csv is separated by {name}, not commas", capsys)
    assert fix in err and "lacks required" not in err, err
    assert not (tmp_path / "t.duckdb").exists()


def test_a_one_column_csv_without_another_separator_still_names_the_missing_columns(tmp_path, capsys):
    path = tmp_path / "one.csv"
    path.write_text("arrival_time\n2026-01-01T00:00:00Z\n")
    refused(["db", "import", "requests", str(path), "--db", str(tmp_path / "t.duckdb")],
            "lacks required column(s) ttft_s", capsys)

"""Round 10 at a writer's --db that no database can be at: a folder on the way that is a file, a folder that
takes no new files (/proc, which even root cannot write).

Before: `db import ... --db notes.txt/run.duckdb`, `harness run --db /proc/run.duckdb` and `serve --db ...`
said "not a readable DuckDB database (IO Error: ... Not a directory) (check the path; a truncated or damaged
file must be restored from a copy)": there is no file, damaged or not. Now the error names the file that
stands where a folder should, or the folder that takes no new files, and says to give a path in a folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.badinput.conftest import refused
from tests.conftest import FIXTURES

REQUESTS = str(FIXTURES / "requests_small.csv")


def _writers(db: str) -> list[list[str]]:
    return [["db", "import", "requests", REQUESTS, "--db", db],
            ["db", "import", "table", REQUESTS, "--db", db, "--map", "arrival_time=arrival_time"],
            ["harness", "run", "harness/configs/smoke.toml", "--db", db]]


def _proc_refuses_new_files() -> bool:
    probe = Path("/proc/causalsre-probe")
    if not Path("/proc").is_dir():
        return False
    try:
        probe.open("w").close()
    except OSError:
        return True
    probe.unlink()
    return False


@pytest.mark.parametrize("writer", range(3), ids=["import-requests", "import-table", "harness-run"])
def test_a_folder_on_the_way_that_is_a_file(writer, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me\n")
    err = refused(_writers(str(notes / "run.duckdb"))[writer], "is a file, not a folder", capsys)
    assert "notes.txt" in err.split(": ", 2)[-1] and "(give a path inside an existing folder)" in err, err
    assert notes.read_text() == "keep me\n"


@pytest.mark.skipif(not _proc_refuses_new_files(), reason="/proc is missing or takes new files here")
@pytest.mark.parametrize("writer", range(3), ids=["import-requests", "import-table", "harness-run"])
def test_a_folder_that_takes_no_new_files(writer, capsys):
    db = f"/proc/causalsre-{os.getpid()}.duckdb"
    err = refused(_writers(db)[writer], "its folder /proc takes no new files", capsys)
    assert "(give a path in a folder you can write to)" in err and "damaged" not in err, err


TEXT_AS_DB = [("csv", "requests.csv", REQUESTS), ("notes", "notes.txt", None), ("csv-named-duckdb", "t.duckdb", REQUESTS)]


@pytest.mark.parametrize("name, source", [c[1:] for c in TEXT_AS_DB], ids=[c[0] for c in TEXT_AS_DB])
def test_a_text_file_given_as_the_database_is_named_as_text(name, source, tmp_path, capsys):
    """A CSV as --db was "Catalog Error: Cannot launch in-memory database in read-only mode!" (DuckDB queries a
    file named .csv), other text "not a valid DuckDB database file ... restore it from a copy"."""
    db = tmp_path / name
    db.write_text(Path(source).read_text() if source else "hello\nworld\n")
    before = db.read_bytes()
    for argv in (["db", "info", "--db", str(db)], ["db", "import", "requests", REQUESTS, "--db", str(db)],
                 ["slo", "report", "--db", str(db), "--slo", "models/slos/llm-serving.yaml"]):
        err = refused(argv, "not a readable DuckDB database (it is a text file", capsys)
        assert "causalsre db import requests|table FILE --db NEW.duckdb" in err and "damaged" not in err, err
    assert db.read_bytes() == before


def test_a_file_whose_name_starts_with_a_dash_says_how_to_name_it(tmp_path, capsys, monkeypatch):
    """It was "No such option '-d'." (click read -dash.csv as the options -d -a -s -h ...)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-dash.csv").write_text(Path(REQUESTS).read_text())
    err = refused(["db", "import", "requests", "-dash.csv", "--db", "t.duckdb"],
                  "'-dash.csv' is read as options because its name starts with '-'", capsys)
    assert err.rstrip().endswith("(write it as ./-dash.csv)"), err
    from causalsre.cli.main import main

    assert main(["db", "import", "requests", "./-dash.csv", "--db", "-t.duckdb"]) == 0, capsys.readouterr().err
    assert main(["db", "info", "--db", "-t.duckdb"]) == 0
    refused(["db", "import", "requests", REQUESTS, "--bogus", "--db", "t.duckdb"], "No such option", capsys)

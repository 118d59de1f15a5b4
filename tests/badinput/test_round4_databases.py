"""Round 4 of the hostile inputs: files of another format given as ``--db``.

A SQLite file made DuckDB try to download its sqlite extension from the internet (on a machine online, the file
would then have been opened, and written, as a database); an empty file, a Parquet table, a gzipped database or
a saved fit read as "not a readable DuckDB database" with DuckDB's own words. Each is now named by its first
bytes before DuckDB sees it, for readers and writers alike, and the file is left byte-identical.
"""

from __future__ import annotations

import gzip
import hashlib
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from tests.badinput.conftest import refused

REQUESTS = "arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status\n1700000000,0.1,0.5,10,20,ok\n"


def _sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE requests (arrival_time REAL, ttft_s REAL)")
    con.commit()
    con.close()


def _gzip_db(path: Path, world) -> None:
    path.write_bytes(gzip.compress(world.path("good.duckdb").read_bytes(), mtime=0))


MAKERS = {
    "sqlite": (lambda p, w: _sqlite(p), "not a readable DuckDB database (it is a SQLite database)"),
    "parquet": (lambda p, w: pd.DataFrame({"a": [1]}).to_parquet(p), "(it is a Parquet file)"),
    "empty": (lambda p, w: p.write_bytes(b""), "(an empty file, 0 bytes)"),
    "gzip": (_gzip_db, "(it is a gzip file)"),
    "netcdf": (lambda p, w: p.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64)), "a saved fit?"),
}

COMMANDS = {
    "db-info": ["db", "info", "--db", "{db}"],
    "db-import": ["db", "import", "requests", "{csv}", "--db", "{db}"],
    "db-migrate": ["db", "migrate", "--db", "{db}"],
    "slo-report": ["slo", "report", "--db", "{db}", "--slo", "{slo}"],
    "harness-run": ["harness", "run", "{toml}", "--db", "{db}"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_a_file_of_another_format_as_db_is_named_and_left_alone(kind, command, world, capsys):
    make, fragment = MAKERS[kind]
    db = world.path(f"given-{kind}.duckdb")
    make(db, world)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    csv = world.path("r.csv")
    csv.write_text(REQUESTS)
    from tests.conftest import REPO_ROOT as REPO

    values = {"{db}": str(db), "{csv}": str(csv), "{slo}": str(world.path("slo.yaml")),
              "{toml}": str(REPO / "harness" / "configs" / "smoke.toml")}
    refused([values.get(a, a) for a in COMMANDS[command]], fragment, capsys)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in world.root.glob(f"given-{kind}*")) == [db.name]  # no WAL left beside it


def test_duckdb_never_reaches_for_its_sqlite_extension(world, monkeypatch):
    # The refusal happens before duckdb.connect: a spy proves no connection is even tried on the SQLite file.
    import duckdb

    from causalsre.errors import UserError
    from causalsre.telemetry import connect_readonly
    from causalsre.telemetry.dbstate import inspect_database

    db = world.path("lite.db")
    _sqlite(db)
    tried = []
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: tried.append(a) or pytest.fail("connect was called"))
    for opener in (connect_readonly, inspect_database):
        with pytest.raises(UserError, match="SQLite"):
            opener(db)
    assert tried == []

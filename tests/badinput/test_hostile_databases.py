"""Hostile and unlucky databases (issue #18): not ours, colliding, older, truncated, full disks, replays.

A database we must not write into is refused in one line before a byte is written (the SHA-256 of the
file and its WAL is compared); one we created for a run that then failed is removed; a full disk is one
line naming the path, and every row flushed before it stays readable.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from causalsre.errors import UserError
from causalsre.telemetry import SCHEMA_VERSION, connect_readonly, connect_writable, migrate
from tests.badinput.conftest import run_cli

HEADER = "arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status"


def _csv(path: Path, rows: int = 3, start_s: int = 1_767_225_600) -> Path:
    lines = [HEADER] + [f"{start_s + i},0.1,0.5,10,5,ok" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _sha(db: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(db.parent.glob(db.name + "*"))}


def _refused(argv: list[str], fragment: str, db: Path, capsys) -> str:
    before = _sha(db)
    code, out, err = run_cli(argv, capsys)
    assert code == 2, (out, err)
    assert fragment.lower() in err.lower(), err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in out + err, err
    assert _sha(db) == before
    return err


def _foreign(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers (id INTEGER, name VARCHAR)")
    con.execute("INSERT INTO customers VALUES (1, 'ada')")
    con.close()
    return path


def _colliding(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE runs (id INTEGER, note VARCHAR)")  # another tool's table named like ours
    con.close()
    return path


def _rails(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version VARCHAR PRIMARY KEY)")  # Rails' table of that name
    con.execute("INSERT INTO schema_migrations VALUES ('20240101000000')")
    con.close()
    return path


def _older(path: Path) -> Path:
    con = duckdb.connect(str(path))
    migrate(con, target=1)
    con.close()
    return path


DATABASES = {"foreign": (_foreign, "not a causalsre telemetry database: it holds other tables (customers)"),
             "colliding": (_colliding, "collide with causalsre's"),
             "rails": (_rails, "another tool's"),
             "older": (_older, "run `causalsre db migrate")}


@pytest.mark.parametrize("kind", sorted(DATABASES))
@pytest.mark.parametrize("good_file", [True, False], ids=["good-file", "missing-columns"])
def test_import_into_a_database_we_must_not_write_is_refused_before_any_write(kind, good_file, tmp_path, capsys):
    make, fragment = DATABASES[kind]
    db = make(tmp_path / f"{kind}.duckdb")
    source = _csv(tmp_path / "r.csv") if good_file else tmp_path / "m.csv"
    if not good_file:
        source.write_text("arrival_time,ttft_s\n2026-01-01T00:00:00Z,0.1\n")
    _refused(["db", "import", "requests", str(source), "--db", str(db)], fragment, db, capsys)
    con = duckdb.connect(str(db), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    con.close()
    assert kind == "older" or "requests" not in tables  # nothing of ours was added


@pytest.mark.parametrize("kind", ["foreign", "colliding", "rails"])
@pytest.mark.parametrize("command", ["migrate", "init"])
def test_migrate_and_init_refuse_another_applications_database(kind, command, tmp_path, capsys):
    make, _ = DATABASES[kind]
    db = make(tmp_path / f"{kind}.duckdb")
    _refused(["db", command, str(db)], "not a causalsre telemetry database", db, capsys)


def test_an_older_database_migrates_only_when_asked_then_imports(tmp_path, capsys):
    db = _older(tmp_path / "older.duckdb")
    source = _csv(tmp_path / "r.csv")
    _refused(["db", "import", "requests", str(source), "--db", str(db)], "older than this causalsre writes", db,
             capsys)
    code, out, err = run_cli(["db", "migrate", str(db)], capsys)
    assert code == 0 and f"migrated from schema version 1 to {SCHEMA_VERSION}" in out, err
    code, out, err = run_cli(["db", "import", "requests", str(source), "--db", str(db)], capsys)
    assert code == 0 and "imported 3 requests" in out, err


def test_a_failed_first_migration_leaves_no_migrations_table(tmp_path):
    db = _colliding(tmp_path / "c.duckdb")
    con = duckdb.connect(str(db))
    with pytest.raises(duckdb.Error):
        migrate(con)  # the library call, past the CLI's refusal: CREATE TABLE runs collides
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    con.close()
    assert tables == {"runs"}


@pytest.mark.parametrize("keep_bytes", [0, 100, 4096, 12288])
def test_a_truncated_database_is_unreadable_not_locked(keep_bytes, tmp_path, capsys):
    good = tmp_path / "good.duckdb"
    connect_writable(good).close()
    db = tmp_path / "cut.duckdb"
    db.write_bytes(good.read_bytes()[:keep_bytes])
    for argv in (["db", "info", str(db)], ["db", "import", "requests", str(_csv(tmp_path / "r.csv")), "--db", str(db)],
                 ["db", "migrate", str(db)]):
        err = _refused(argv, "not a readable DuckDB database", db, capsys)
        assert "locked" not in err


@pytest.mark.parametrize("command", ["info", "check", "export"])
def test_a_database_cut_off_past_its_header_is_one_line(command, tmp_path, capsys):
    # Cut at 60 %: the header and catalog still open, the data blocks at the end are gone.
    from tests.badinput.bad_files import SUITE

    if not SUITE.is_file():
        pytest.skip("datasets/cpu-tiny/suite.duckdb is absent")
    data = SUITE.read_bytes()
    db = tmp_path / "cut.duckdb"
    db.write_bytes(data[: len(data) * 6 // 10 // 4096 * 4096])
    argv = ["db", command, str(db)] + (["--parquet", str(tmp_path / "out")] if command == "export" else [])
    _refused(argv, "not a readable DuckDB database", db, capsys)


def test_a_damaged_block_is_not_reported_as_a_lock():
    from causalsre.telemetry.schema import _open_error as open_error

    # DuckDB's errors for damaged files mention "block"; only a real lock message may say "locked".
    err = open_error(Path("x.duckdb"), duckdb.IOException('IO Error: Could not read block 12 of "x.duckdb"'))
    assert "not a readable DuckDB database" in err.one_line() and "locked" not in err.one_line()
    lock = open_error(Path("x.duckdb"), duckdb.IOException(
        'IO Error: Could not set lock on file "x.duckdb": Conflicting lock is held in python (PID 7)'))
    assert "locked by another process" in lock.one_line()


def test_a_replay_into_its_own_source_is_refused(tmp_path, capsys):
    from tests.badinput.bad_files import SUITE

    if not SUITE.is_file():
        pytest.skip("datasets/cpu-tiny/suite.duckdb is absent")
    source = tmp_path / "suite.duckdb"
    shutil.copy(SUITE, source)
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.duckdb"
    link.symlink_to(source)
    for target in (source, tmp_path / "sub" / ".." / "suite.duckdb", link):
        _refused(["harness", "replay", str(source), "burstier-s0", "--window", "incident", "--db", str(target)],
                 "its source database", source, capsys)


def _failing_after_open(monkeypatch):
    """Make a run fail after it opened its database and before its runs row is written."""
    import harness.writer

    def fail(*_args, **_kwargs):
        raise RuntimeError("the engine failed to start")

    monkeypatch.setattr(harness.writer, "check_columns", fail)


def test_a_run_that_fails_after_opening_a_new_database_leaves_no_file(tmp_path, monkeypatch):
    from tests.harness.conftest import tiny_config

    from harness.runner import run

    _failing_after_open(monkeypatch)
    new = tmp_path / "new.duckdb"
    with pytest.raises(RuntimeError, match="failed to start"):
        run(tiny_config(duration_s=0.5), new)
    assert not new.exists() and not Path(f"{new}.wal").exists()
    existing = tmp_path / "existing.duckdb"
    connect_writable(existing).close()
    before = _sha(existing)
    with pytest.raises(RuntimeError, match="failed to start"):
        run(tiny_config(duration_s=0.5), existing)
    assert _sha(existing) == before  # a database that was there before is never deleted


# -- full disks --------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MiB tmpfs (needs root and mount permission, else the test is skipped)."""
    folder = tmp_path / "tiny_disk"
    folder.mkdir()
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc})")
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or result.returncode})")
    try:
        yield folder
    finally:
        # Lazy: a database a failing test left open must not keep the mount (and the test's tmp folder) busy.
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def _fill(folder: Path, leave_bytes: int) -> Path:
    """Fill the filesystem of ``folder`` until about ``leave_bytes`` are free; returns the filler file."""
    filler = folder / "filler.bin"
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(free - leave_bytes, 0))
    return filler


def test_db_import_onto_a_full_disk_is_one_line_and_keeps_earlier_rows(tiny_disk, tmp_path, capsys):
    db = tiny_disk / "t.duckdb"
    code, _, err = run_cli(["db", "import", "requests", str(_csv(tmp_path / "small.csv")), "--db", str(db)], capsys)
    assert code == 0, err
    filler = _fill(tiny_disk, 32_768)
    big = _csv(tmp_path / "big.csv", rows=30_000, start_s=1_767_300_000)
    code, out, err = run_cli(["db", "import", "requests", str(big), "--db", str(db)], capsys)
    assert code == 2, (out, err)
    assert err.startswith(f"error: cannot write {db}: no space left on device") and err.count("\n") == 1, err
    assert "free space" in err and "Traceback" not in out + err
    filler.unlink()
    con = connect_readonly(db)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM requests").fetchone()[0] == 3
    con.close()


def test_db_export_onto_a_full_disk_is_one_line_and_removes_its_folder(tiny_disk, tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    code, _, err = run_cli(["db", "import", "requests", str(_csv(tmp_path / "big.csv", rows=20_000)),
                            "--db", str(db)], capsys)
    assert code == 0, err
    _fill(tiny_disk, 16_384)
    out_dir = tiny_disk / "export"
    code, out, err = run_cli(["db", "export", str(db), "--parquet", str(out_dir)], capsys)
    assert code == 2, (out, err)
    assert err.startswith(f"error: cannot write {out_dir}") and err.count("\n") == 1 and "Traceback" not in err, err
    assert not out_dir.exists()


def test_the_harness_writer_stops_cleanly_on_a_full_disk(tiny_disk):
    from harness.writer import TelemetryWriter

    db = tiny_disk / "w.duckdb"
    con = connect_writable(db)
    filler = _fill(tiny_disk, 200_000)
    # Flushed by hand, batch by batch (the thread's interval is an hour), so the failure is deterministic.
    writer = TelemetryWriter(con, "r1", flush_interval_s=3600, path=db)
    writer.start({"kind": "harness", "name": "full", "started_at": "2026-01-01 00:00:00", "seed": 1,
                  "config_json": {}, "hardware_json": {}})
    token = 0
    with pytest.raises(duckdb.Error, match="No space left on device"):
        for _ in range(10_000):  # 200 kB fill after some tens of 500-row flushes
            for _ in range(500):
                writer.on_token(token, 0, token, token * 1000)
                token += 1
            writer.flush()
    assert writer.failed and writer.rows_written > 0
    writer.on_token(token, 0, token, token * 1000)
    assert writer.flush() == 0  # after the failure nothing more goes to the connection
    with pytest.raises(UserError) as caught:
        writer.close("complete")
    message = caught.value.one_line()
    assert message.startswith(f"cannot write {db}: no space left on device") and "\n" not in message
    assert "rows flushed before the error are kept" in message
    con.close()
    filler.unlink()
    reader = connect_readonly(db)
    try:
        stored = reader.execute("SELECT count(*) FROM tokens").fetchone()[0]
        assert 0 < writer.rows_written <= stored <= token  # every committed flush is readable
        assert reader.execute("SELECT status FROM runs").fetchone()[0] == "running"  # read as incomplete
    finally:
        reader.close()


# Every request is served to the end (long drain, no timeout), so the rows written do not depend on how fast
# a shared machine runs the engine: 60 requests x 48 tokens, however long it takes.
RUN_TOML = """name = "full"
duration_s = 3
drain_timeout_s = 300
[engine]
model = "tiny"
num_threads = 1
request_timeout_s = 600
[workload]
arrival = "poisson"
rate = 20.0
[workload.output]
dist = "fixed"
value = 48
"""


def test_harness_run_onto_a_disk_that_fills_mid_run(tiny_disk, tmp_path, capsys):
    import json

    db = tiny_disk / "run.duckdb"
    assert run_cli(["db", "init", str(db)], capsys)[0] == 0
    config = tmp_path / "full.toml"
    config.write_text(RUN_TOML)
    # ~150 kB free: the runs row and the first flushes fit, the run's ~2,900 tokens do not.
    filler = _fill(tiny_disk, 150_000)
    code, out, err = run_cli(["harness", "run", str(config), "--db", str(db), "--json"], capsys)
    assert code == 2, (out, err)
    assert err.startswith(f"error: cannot write {db}: no space left on device") and err.count("\n") == 1, err
    assert "rows flushed before the error are kept" in err and "Traceback" not in out + err
    filler.unlink()
    code, out, err = run_cli(["db", "info", str(db), "--json"], capsys)
    assert code == 0, err
    info = json.loads(out)
    assert [r["status"] for r in info["run_list"]] == ["incomplete"] and info["tokens"] > 0


@pytest.mark.parametrize("kind", sorted(DATABASES))
def test_every_importer_refuses_a_database_it_must_not_write(kind, tmp_path, capsys):
    # The format importers share the refusal of `db import requests`: an older schema too is upgraded only
    # by `db migrate`, and the file stays byte-identical.
    make, fragment = DATABASES[kind]
    db = make(tmp_path / f"{kind}.duckdb")
    events = tmp_path / "events.csv"
    events.write_text("time,key,value,kind\n2026-01-01T00:00:00Z,max_num_seqs,16,config\n")
    _refused(["db", "import", "events", str(events), "--db", str(db)], fragment, db, capsys)

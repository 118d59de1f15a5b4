"""Round 4 of the hostile inputs: Ctrl-C (KeyboardInterrupt) in the middle of a write.

Injected in-process at the write itself (the interrupt lands exactly there, every run; a real signal's timing
would make the test flaky). A report or JSON result is the old file or the new one, never a cut one; a partial
Parquet export is removed. `causalsre` answers an interrupt with one line and exit code 130.
"""

from __future__ import annotations

import os

import pytest

from tests.badinput.conftest import run_cli


def _suite(world):
    db = world.path("suite.duckdb")
    if not db.is_file():
        pytest.skip("datasets/cpu-tiny/suite.duckdb is absent")
    return db


class _CutWrites:
    """An open() replacement for the write-then-rename scratch file: half the text, then a Ctrl-C."""

    def __init__(self, real):
        self.real = real

    def __call__(self, fd, *args, **kwargs):
        handle = self.real(fd, *args, **kwargs)
        write = handle.write

        def cut(text):
            write(text[: len(text) // 2])
            raise KeyboardInterrupt

        handle.write = cut
        return handle


@pytest.mark.parametrize("name", ["report.md", "report.html"])
def test_a_report_interrupted_mid_write_leaves_the_previous_one_whole(name, world, monkeypatch, capsys):
    # Before: path.write_text() in place: a Ctrl-C left the first part of the new report over the old one.
    db, spec = _suite(world), world.path("slo.yaml")
    out = world.path(name)
    out.write_text("the previous report\n")
    import causalsre.safewrites as writes

    monkeypatch.setattr(writes.os, "fdopen", _CutWrites(os.fdopen))
    code, _, err = run_cli(["slo", "report", "--db", str(db), "--slo", str(spec), "--out", str(out)], capsys)
    assert code == 130 and err.strip().splitlines()[-1] == "error: aborted"
    assert out.read_text() == "the previous report\n"
    assert sorted(p.name for p in world.root.glob(f".{name}*")) == []  # the scratch file is gone
    monkeypatch.undo()
    code, _, err = run_cli(["slo", "report", "--db", str(db), "--slo", str(spec), "--out", str(out)], capsys)
    assert code == 0, err
    assert "chat-latency" in out.read_text()


def test_a_parquet_export_interrupted_midway_is_removed(world, monkeypatch, capsys):
    # Before: only a storage error removed the folder; a Ctrl-C left the tables written so far, which read
    # back as a whole export of a database with fewer tables.
    import causalsre.telemetry.export as export

    real, calls = export.ds.write_dataset, []

    def interrupted(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(export.ds, "write_dataset", interrupted)
    out = world.path("export")
    code, _, err = run_cli(["db", "export", "--db", str(world.path("good.duckdb")), "--parquet", str(out)], capsys)
    assert code == 130 and len(calls) == 2
    assert not out.exists()
    existing = world.path("kept")
    existing.mkdir()
    (existing / "mine.txt").write_text("not ours to delete")
    calls.clear()
    code, _, _ = run_cli(["db", "export", "--db", str(world.path("good.duckdb")), "--parquet", str(existing),
                          "--overwrite"], capsys)
    assert code == 130 and (existing / "mine.txt").read_text() == "not ours to delete"

"""Round 4 of the hostile inputs: where the tools write.

An output given as a FIFO (the stand-in for a device: the same "not a regular file" branch, and safe to make in a
temporary folder), a folder, a missing folder, an empty string, or the very file the command reads; and the writers
that rename a finished scratch file into place (or delete their destination first), which must never replace what
is not a regular file: something on the project's machine once turned /dev/null into a regular file that way.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from causalsre.errors import UserError
from tests.badinput.conftest import refused

_PHASES = ["--baseline", "phase:baseline@push_max_num_seqs-s0", "--incident", "phase:incident@push_max_num_seqs-s0"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fifo(path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(path)
    return path


def _still_fifo(path: Path) -> bool:
    return stat.S_ISFIFO(os.lstat(path).st_mode)


def _suite(world) -> Path:
    db = world.path("suite.duckdb")
    if not db.is_file():
        pytest.skip("datasets/cpu-tiny/suite.duckdb is absent")
    return db


# argv around an output file ({out}); each would have written it only after its whole analysis
OUTPUT_FILES = {
    "slo-report-out": (["slo", "report", "--db", "{suite}", "--slo", "{slo}", "--out", "{out}"], ".html"),
    "slo-report-md": (["slo", "report", "--db", "{suite}", "--slo", "{slo}", "--out", "{out}"], ".md"),
    "slo-report-plot": (["slo", "report", "--db", "{suite}", "--slo", "{slo}", "--plot", "{out}"], ".png"),
    "graph-show": (["graph", "show", "--out", "{out}"], ".svg"),
    "fit": (["fit", "--db", "{suite}", "--slo", "{slo}", "--sampler", "prior", "--out", "{out}"], ".nc"),
    "postmortem": (["postmortem", "--db", "{suite}", "--slo", "{slo}", *_PHASES, "--out", "{out}"], ".json"),
    "whatif": (["whatif", "--db", "{suite}", "--slo", "{slo}", "--window", "phase:incident@push_max_num_seqs-s0",
                "--set", "max_num_seqs=16", "--out", "{out}"], ".html"),
    "bench-engine": (["bench", "engine", "--out", "{out}"], ".json"),
    "eval-govern-html": (["eval", "govern", "--html", "{out}"], ".html"),
}


def _argv(template: list[str], world, out: Path) -> list[str]:
    values = {"{suite}": str(_suite(world)), "{slo}": str(world.path("slo.yaml")), "{out}": str(out)}
    return [values.get(a, a) for a in template]


@pytest.mark.parametrize("case", sorted(OUTPUT_FILES))
def test_an_output_file_that_is_a_fifo_is_refused_before_any_work(case, world, capsys):
    # Before: `slo report --out x.html` and `graph show` blocked for ever opening the FIFO after the whole
    # analysis; `--plot` raised matplotlib's "File or stream is not seekable" traceback.
    template, suffix = OUTPUT_FILES[case]
    out = _fifo(world.path("out" + suffix))
    before = world.fingerprint()
    refused(_argv(template, world, out), "is a FIFO, not a regular file", capsys)
    assert _still_fifo(out) and world.fingerprint() == before


@pytest.mark.parametrize("case", sorted(OUTPUT_FILES))
def test_an_output_file_in_a_missing_folder_is_refused(case, world, capsys):
    template, suffix = OUTPUT_FILES[case]
    refused(_argv(template, world, world.path("no-such-folder") / ("x" + suffix)), "no-such-folder", capsys)
    assert not world.path("no-such-folder").exists()


def test_an_empty_output_string_is_refused(world, capsys):
    refused(["graph", "show", "--out", ""], "the path is empty", capsys)
    refused(["graph", "show", "--out", "   "], "the path is empty", capsys)


def test_fit_never_writes_its_fit_over_the_database_it_read(world, capsys):
    # Before: `fit --db t.duckdb --out t.duckdb` fitted for a minute and then wrote NetCDF over the telemetry
    # (the database was gone). Now --out must end in .nc, and may never name an input.
    db = _suite(world)
    before = _digest(db)
    refused(["fit", "--db", str(db), "--slo", str(world.path("slo.yaml")), "--sampler", "prior", "--out", str(db)],
            "does not end in .nc", capsys)
    nc_db = world.path("telemetry.nc")  # a database that happens to be named .nc
    nc_db.write_bytes(db.read_bytes())
    for argv in (["--db", str(nc_db), "--out", str(nc_db)], ["--out", str(nc_db), "--db", str(nc_db)],
                 ["--db", str(nc_db), "--out", str(world.path(".") / ".." / world.root.name / "telemetry.nc")]):
        refused(["fit", *argv, "--slo", str(world.path("slo.yaml")), "--sampler", "prior"],
                "is the same file as --db", capsys)
    assert _digest(db) == before and _digest(nc_db) == before


def test_a_report_is_never_written_over_its_own_spec_whichever_flag_comes_first(world, capsys):
    db = _suite(world)
    spec = world.path("spec.md")  # a YAML SLO spec saved with a report's suffix
    spec.write_text(world.path("slo.yaml").read_text())
    link = world.path("link.md")
    link.symlink_to(spec)
    before = _digest(spec)
    for argv in (["--slo", str(spec), "--out", str(spec)], ["--out", str(spec), "--slo", str(spec)],
                 ["--slo", str(link), "--out", str(spec)]):
        err = refused(["slo", "report", "--db", str(db), *argv], "is the same file as --slo", capsys)
        assert err.split("': ", 1)[1].startswith("--out ")  # the output is named first, whatever the order
    # an output that is a link is refused as one (round 5), whatever it points at
    refused(["slo", "report", "--db", str(db), "--out", str(link), "--slo", str(spec)], "is a symbolic link", capsys)
    assert _digest(spec) == before


def test_whatif_refuses_to_keep_the_replay_in_the_analysed_database(world, capsys):
    db = _suite(world)
    before = world.fingerprint()
    refused(["whatif", "--db", str(db), "--slo", str(world.path("slo.yaml")), "--window",
             "phase:incident@push_max_num_seqs-s0", "--set", "max_num_seqs=16", "--verify", "--verify-db",
             str(world.path(".") / db.name)], "--verify-db", capsys)
    assert world.fingerprint() == before


@pytest.mark.parametrize("argv", [
    ["eval", "generate", "--seed", "1", "--count", "3", "--out", "{out}"],
    ["harness", "suite", "{out}"],
    ["demo", "--out", "{out}"],
    ["db", "export", "--db", "{good}", "--parquet", "{out}"],
    ["eval", "petshop", "--data", "{suite}", "--export", "{out}"],
    ["bench", "slo", "--dir", "{out}"],
], ids=lambda argv: "-".join(a for a in argv[:2]))
def test_an_output_folder_that_is_a_fifo_is_refused(argv, world, capsys):
    # Before: click's file_okay=False lets anything but a regular file through: `eval generate --out FIFO`
    # reached mkdir (FileExistsError traceback).
    out = _fifo(world.path("pipe"))
    values = {"{out}": str(out), "{suite}": str(world.root), "{good}": str(world.path("good.duckdb"))}
    refused([values.get(a, a) for a in argv], "is a FIFO, not a folder", capsys)
    assert _still_fifo(out)


# The writers that move a finished file into place, or clear their destination first.

def test_replace_file_refuses_a_non_regular_destination_and_keeps_the_source(tmp_path):
    from causalsre.safeio import replace_file

    source = tmp_path / "scratch"
    source.write_text("new")
    pipe = _fifo(tmp_path / "device-like")
    link = tmp_path / "link"
    link.symlink_to(pipe)
    for destination in (pipe, link, tmp_path):
        with pytest.raises(UserError, match="is not replaced|is a symbolic link"):
            replace_file(source, destination)
    assert _still_fifo(pipe) and link.is_symlink() and source.read_text() == "new"


def test_replace_file_refuses_a_symlink_to_a_regular_file(tmp_path):
    # Round 5: it used to follow the link and replace the target, a file the user never named.
    from causalsre.safeio import replace_file

    real, link, source = tmp_path / "real.json", tmp_path / "link.json", tmp_path / "scratch"
    real.write_text("old")
    link.symlink_to(real)
    source.write_text("new")
    with pytest.raises(UserError, match="is a symbolic link"):
        replace_file(source, link)
    assert link.is_symlink() and real.read_text() == "old" and source.read_text() == "new"


def test_replace_file_refuses_a_character_device_seen_at_the_stat_level(tmp_path, monkeypatch):
    # The real case, /dev/null, without touching it: a regular file whose stat says "character device".
    from causalsre.safeio import replace_file

    target, source = tmp_path / "null", tmp_path / "scratch"
    target.write_text("")
    source.write_text("x")
    real_stat = Path.stat

    def as_device(self, *args, **kwargs):
        result = real_stat(self, *args, **kwargs)
        if self.name != "null":
            return result
        return os.stat_result((stat.S_IFCHR | 0o666, *tuple(result)[1:]))

    monkeypatch.setattr(Path, "stat", as_device)
    with pytest.raises(UserError, match="is a device, not a regular file"):
        replace_file(source, target)
    assert source.exists() and target.read_text() == ""


def test_compacting_into_a_fifo_neither_removes_nor_replaces_it(world):
    # Before: harness.merge.compact unlinked its target first (`python -m harness.merge SRC /dev/null` removed
    # the device, then DuckDB created a regular file in its place).
    from harness.merge import compact

    target = _fifo(world.path("device-like.duckdb"))
    with pytest.raises(UserError, match="is a FIFO, not a regular file: it is not removed"):
        compact(_suite(world), target)
    assert _still_fifo(target)


def test_the_replay_cache_and_the_fit_cache_never_replace_a_fifo(tmp_path):
    from causalsre.whatif.calibration_suite import ReplayCache

    pipe = _fifo(tmp_path / "replays.json")
    cache = ReplayCache(pipe)  # a FIFO is not read either (is_file is False): no hang
    with pytest.raises(UserError, match="is not replaced"):
        cache.put("k", {"points": 1.0})
    assert _still_fifo(pipe) and not (tmp_path / "replays.partial").exists()

    import arviz as az
    import numpy as np

    from causalsre.bayes.store import cache_save

    idata = az.from_dict(posterior={"x": np.zeros((1, 3))})
    fit = _fifo(tmp_path / "fit.nc")
    assert cache_save(idata, fit) is None  # a cache that cannot be written only costs the reuse
    assert _still_fifo(fit) and list(tmp_path.glob("*.part")) == []

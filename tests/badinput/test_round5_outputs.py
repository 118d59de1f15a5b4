"""Round 5 of the hostile inputs: an output path that is a symbolic link, through the real commands.

Before, every writer followed the link: `graph show --out plot.svg`, where plot.svg linked to a file the user
cared about (or one planted in a shared folder), overwrote that file without a word. Now the link is refused
while the flags are parsed, its target unchanged; `db export --parquet DIR --overwrite` refuses a link inside.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.badinput.conftest import refused


def _planted(world, name: str) -> tuple[Path, Path]:
    target = world.path("precious.txt")
    target.write_text("the user's file\n")
    link = world.path(name)
    link.symlink_to(target)
    return target, link


@pytest.mark.parametrize("argv", [
    ["graph", "show", "--out", "{out}.svg"],
    ["slo", "report", "--db", "{good}", "--slo", "{slo}", "--out", "{out}.html"],
    ["slo", "report", "--db", "{good}", "--slo", "{slo}", "--plot", "{out}.png"],
], ids=lambda argv: "-".join(argv[:2]) + ("-plot" if "--plot" in argv else ""))
def test_an_output_file_that_is_a_symlink_is_refused_and_its_target_kept(argv, world, capsys):
    suffix = next(a for a in argv if a.startswith("{out}"))[len("{out}"):]
    target, link = _planted(world, "out" + suffix)
    values = {"{good}": str(world.path("good.duckdb")), "{slo}": str(world.path("slo.yaml")), f"{{out}}{suffix}": str(link)}
    before = world.fingerprint()
    refused([values.get(a, a) for a in argv], "is a symbolic link", capsys)
    assert target.read_text() == "the user's file\n" and link.is_symlink() and world.fingerprint() == before


def test_an_export_over_a_folder_holding_a_link_is_refused(world, capsys):
    out = world.path("export")
    out.mkdir()
    (out / "requests").mkdir()
    target = world.path("precious.parquet")
    target.write_bytes(b"the user's bytes")
    (out / "requests" / "run_id=x").mkdir()
    (out / "requests" / "run_id=x" / "part-0.parquet").symlink_to(target)
    refused(["db", "export", "--db", str(world.path("good.duckdb")), "--parquet", str(out), "--overwrite"],
            "is a symbolic link", capsys)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(b"the user's bytes").digest()


@pytest.fixture
def unwritable_folder(world):
    """A folder that takes no new file: mode 0555, and as root (where modes do not bind) the immutable flag."""
    import shutil
    import subprocess

    folder = world.path("locked")
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    try:
        (folder / "probe").touch()
    except OSError:
        pass
    else:
        (folder / "probe").unlink()
        if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
            immutable = True
        else:
            folder.chmod(0o755)
            pytest.skip("cannot make a folder unwritable here (root without chattr)")
    try:
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


@pytest.mark.parametrize("argv", [
    ["graph", "show", "--out", "{out}.svg"],
    ["slo", "report", "--db", "{good}", "--slo", "{slo}", "--out", "{out}.html"],
], ids=lambda argv: "-".join(argv[:2]))
def test_an_output_in_a_folder_that_takes_no_file_is_refused_before_any_work(argv, world, unwritable_folder, capsys):
    # Before: `slo report --out ro/r.html` ran the whole report, then "cannot use the path
    # '.../ro/.r.html.qup6ahc8.partial.html'", naming a scratch file the user never gave.
    suffix = next(a for a in argv if a.startswith("{out}"))[len("{out}"):]
    out = unwritable_folder / ("r" + suffix)
    values = {"{good}": str(world.path("good.duckdb")), "{slo}": str(world.path("slo.yaml")), f"{{out}}{suffix}": str(out)}
    err = refused([values.get(a, a) for a in argv], "does not take new files", capsys)
    assert f"r{suffix}" in err and ".partial" not in err and not any(unwritable_folder.iterdir())

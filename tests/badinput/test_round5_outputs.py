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

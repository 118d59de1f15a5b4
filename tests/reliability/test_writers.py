"""Every file the tools write goes through :mod:`causalsre.safewrites`: none through a symbolic link, none half-written.

The rule (an AST scan of ``causalsre/``, ``harness/`` and ``bench/``): a raw writer (``Path.write_text`` /
``write_bytes``, ``open(..., "w"|"a"|"x")``, ``DataFrame.to_csv``/``to_parquet``, ``savefig``, ``to_netcdf``,
``os.replace``/``os.rename``, ``shutil.copy*``/``move``) may appear only in ``safewrites.py``, inside a ``lambda``
handed to ``write_with`` (it then writes the scratch file), or in :data:`AUDITED` with its reason. Then the
helpers themselves, through real files: a symlink at an output path is refused and its target unchanged.
"""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

from causalsre.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("causalsre", "harness", "bench")
HOME = "causalsre/safewrites.py"
METHODS = {"write_text", "write_bytes", "to_csv", "to_parquet", "to_feather", "to_excel", "savefig", "to_netcdf"}
MODULE_CALLS = {("os", "replace"), ("os", "rename"), ("shutil", "move"), ("shutil", "copy"), ("shutil", "copy2"),
                ("shutil", "copyfile"), ("shutil", "copyfileobj")}
# (file, line text stripped) -> why it may write raw. Keep it short: every entry was read.
AUDITED = {
    ("causalsre/report/document.py", 'fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")'):
        "renders into an in-memory BytesIO, never a path",
    ("harness/engine/cpu_kernels.py", "os.replace(tmp, target)"):
        "the kernel cache: a rename replaces a link's own entry (never its target); a non-regular entry is "
        "refused just above",
}


def _mode(call: ast.Call, position: int) -> str | None:
    for keyword in call.keywords:
        if keyword.arg == "mode" and isinstance(keyword.value, ast.Constant):
            return str(keyword.value.value)
    if len(call.args) > position and isinstance(call.args[position], ast.Constant):
        return str(call.args[position].value)
    return None


def raw_writers(source: str) -> list[tuple[int, str]]:
    """(line, what) of each raw writer in ``source`` that is not inside a lambda handed to ``write_with``."""
    tree = ast.parse(source)
    allowed: set[int] = set()  # ids of nodes inside write_with(..., lambda ...: <here>)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "write_with":
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if isinstance(arg, ast.Lambda):
                    allowed.update(id(inner) for inner in ast.walk(arg))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in allowed:
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "open":
            mode = _mode(node, 1)
            if mode and set(mode) & set("wax+"):
                found.append((node.lineno, f"open(..., {mode!r})"))
        elif isinstance(func, ast.Attribute):
            base = func.value.id if isinstance(func.value, ast.Name) else None
            if (base, func.attr) in MODULE_CALLS:
                found.append((node.lineno, f"{base}.{func.attr}"))
            elif func.attr in METHODS:
                found.append((node.lineno, f".{func.attr}()"))
            elif func.attr == "open" and base not in ("gzip", "os", "io", "tarfile", "zipfile"):
                mode = _mode(node, 0)
                if mode and set(mode) & set("wax+"):
                    found.append((node.lineno, f".open({mode!r})"))
    return found


def test_no_raw_writer_outside_the_safe_write_helpers():
    offenders = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name == HOME:
                continue
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines()
            for line, what in raw_writers(source):
                if (name, lines[line - 1].strip()) not in AUDITED:
                    offenders.append(f"{name}:{line}: {what}")
    assert not offenders, ("raw writers (use causalsre.safeio.write_text / write_bytes / write_with / copy_file / "
                           "open_output, or audit the line in AUDITED):\n" + "\n".join(offenders))


def test_the_scanner_sees_each_kind_of_raw_writer():
    source = "\n".join([
        "p.write_text('x')", "p.write_bytes(b'x')", "open(p, 'w')", "open(p, mode='ab')", "p.open('w')",
        "frame.to_csv(p)", "fig.savefig(p)", "data.to_netcdf(p)", "os.replace(a, b)", "shutil.copyfile(a, b)",
        "open(p)", "p.open()", "gzip.open(p, 'rb')", "text.replace('a', 'b')",  # readers and look-alikes: not writers
        "write_with(p, lambda s: frame.to_csv(s))",  # the scratch file: allowed
    ])
    assert [line for line, _ in raw_writers(source)] == list(range(1, 11))


# The helpers on real files.

def _link(tmp_path: Path) -> tuple[Path, Path]:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "report.html"
    link.symlink_to(target)
    return target, link


@pytest.mark.parametrize("writer", ["write_text", "write_bytes", "write_with", "copy_file", "open_output",
                                    "replace_file", "output_file"])
def test_every_helper_refuses_a_symlink_and_leaves_its_target(writer, tmp_path):
    from causalsre import safeio

    target, link = _link(tmp_path)
    source = tmp_path / "source"
    source.write_text("new")
    calls = {
        "write_text": lambda: safeio.write_text(link, "new"),
        "write_bytes": lambda: safeio.write_bytes(link, b"new"),
        "write_with": lambda: safeio.write_with(link, lambda scratch: scratch.write_text("new")),
        "copy_file": lambda: safeio.copy_file(source, link),
        "open_output": lambda: safeio.open_output(link, "ab"),
        "replace_file": lambda: safeio.replace_file(source, link),
        "output_file": lambda: safeio.output_file(link, what="--out"),
    }
    with pytest.raises(UserError, match="is a symbolic link .*it is not written through") as caught:
        calls[writer]()
    assert "\n" not in caught.value.one_line()
    assert target.read_text() == "keep me" and link.is_symlink() and source.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt", "report.html", "source"]  # no scratch left


def test_a_dangling_symlink_is_refused_too(tmp_path):
    from causalsre import safeio

    link = tmp_path / "out.json"
    link.symlink_to(tmp_path / "elsewhere" / "made.json")
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(UserError, match="symbolic link"):
        safeio.write_text(link, "{}")
    assert not (tmp_path / "elsewhere" / "made.json").exists()


def test_a_linked_folder_on_the_way_is_followed(tmp_path):
    from causalsre import safeio

    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "via").symlink_to(real, target_is_directory=True)
    safeio.write_text(tmp_path / "via" / "out.txt", "x")
    assert (real / "out.txt").read_text() == "x"
    assert stat.S_IMODE(os.stat(real / "out.txt").st_mode) == 0o644 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_with_keeps_the_old_file_when_the_writer_fails(tmp_path):
    from causalsre import safeio

    out = tmp_path / "table.csv"
    out.write_text("old")

    def half(scratch: Path) -> None:
        scratch.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        safeio.write_with(out, half)
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_the_scratch_file_keeps_the_suffix_so_an_image_writer_picks_its_format(tmp_path):
    from causalsre import safeio

    seen = []
    safeio.write_with(tmp_path / "plot.svg", lambda scratch: (seen.append(scratch.suffix), scratch.write_text("<svg/>")))
    assert seen == [".svg"] and (tmp_path / "plot.svg").read_text() == "<svg/>"


def test_open_output_refuses_a_fifo_and_appends_to_a_regular_file(tmp_path):
    from causalsre import safeio

    log = tmp_path / "server.log"
    log.write_bytes(b"one\n")
    with safeio.open_output(log, "ab") as handle:
        handle.write(b"two\n")
    assert log.read_bytes() == b"one\ntwo\n"
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe")
        with pytest.raises(UserError, match="is a FIFO, not a regular file"):
            safeio.open_output(tmp_path / "pipe", "wb")

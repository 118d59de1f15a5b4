"""Where the tools write: an output path checked before any work, and the one rename-into-place.

Two failures this prevents. A writer that renames a finished scratch file onto its destination (or deletes the
destination first) replaces whatever entry is there: run as root onto ``/dev/null``, or onto a symlink to it, that
turned the system's null device into a regular file. And a report written to a FIFO blocked for ever after the
whole analysis (an image writer raised "not seekable" instead). So an output must be nothing yet or a regular
file, in a folder that exists; re-exported by :mod:`causalsre.safeio`, the harness's import.

A symbolic link is never written through: ``--out report.html`` where ``report.html`` links to ``~/.bashrc``
(planted in a shared folder, or left from an old layout) overwrote the link's target without a word. Every writer
refuses the final component being a link (a linked *folder* on the way is followed: the user named it). Every
file the tools write goes through :func:`write_text`, :func:`write_bytes` or :func:`write_with` (scratch file
beside it, then :func:`replace_file`); ``tests/reliability/test_writers.py`` fails on a raw writer elsewhere.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable

from causalsre.errors import UserError
from causalsre.safefiles import brief, file_kind

_FIX = "give the path of a regular file, or leave the option out"
_LINK_FIX = "give the path of the file itself, or remove the link first"


def refuse_link(path: str | Path, *, what: str) -> None:
    """A UserError if ``path`` itself is a symbolic link (dangling or not): writing would go to its target."""
    if os.path.islink(path):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        raise UserError(f"{what} {brief(os.fspath(path))} is a symbolic link (to {brief(target)}): it is not "
                        "written through", _LINK_FIX)


def refuse_links_inside(folder: str | Path, *, what: str) -> None:
    """A UserError naming the first symbolic link under ``folder``: a writer that fills an existing folder
    (``db export --parquet DIR --overwrite``) would write through it."""
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            refuse_link(Path(root) / name, what=f"{what}: the entry")


def output_file(path: str | Path, *, what: str) -> Path:
    """``path`` if a file may be written (or replaced) there: nothing is there, or a regular file is (a symlink
    is followed), and its folder exists. Else one line saying what is in the way."""
    text = os.fspath(path)
    if "\x00" in text:
        raise UserError(f"{what}: the path contains a NUL character", "remove it")
    if not text.strip():
        raise UserError(f"{what}: the path is empty", "give a file path")
    path = Path(text)
    refuse_link(path, what=what)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        folder = Path(os.path.realpath(path)).parent
        if not folder.is_dir():
            raise UserError(f"folder {brief(str(folder))} for {what} does not exist",
                            "create it first or choose another path") from None
        return _writable_folder(path, what=what)
    except OSError as exc:  # a loop, a name too long, a folder we may not enter
        raise UserError(f"{what} {text} cannot be used ({exc.strerror or exc})", "check the path") from None
    if stat.S_ISDIR(mode):
        raise UserError(f"{what} {text} is a directory", "give a file path inside it")
    if not stat.S_ISREG(mode):
        raise UserError(f"{what} {text} is {file_kind(mode)}, not a regular file", _FIX)
    return _writable_folder(path, what=what)


def _writable_folder(path: Path, *, what: str) -> Path:
    """``path`` if a scratch file can be made in its folder, which every writer here does (then renames it).

    Tried for real, not with ``os.access``: as root that says yes to a read-only mount or an immutable folder,
    and `slo report --out ro/r.html` then failed after the whole analysis, naming its scratch file."""
    import tempfile

    folder = Path(os.path.realpath(path)).parent
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".causalsre-probe-")
    except OSError as exc:
        raise UserError(f"{what} {brief(os.fspath(path))} cannot be written: its folder {brief(str(folder))} "
                        f"does not take new files ({exc.strerror or exc})",
                        "make the folder writable, or choose another path") from None
    os.close(handle)
    os.unlink(probe)
    return path


def output_folder(path: str | Path, *, what: str) -> Path:
    """``path`` if a folder may be made or filled there: nothing is there yet, or a folder is."""
    text = os.fspath(path)
    if not text.strip():
        raise UserError(f"{what}: the path is empty", "give a folder path")
    path = Path(text)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise UserError(f"{what} {text} cannot be used ({exc.strerror or exc})", "check the path") from None
    if not stat.S_ISDIR(mode):
        kind = "a file" if stat.S_ISREG(mode) else file_kind(mode)
        raise UserError(f"{what} {text} is {kind}, not a folder", "give the path of a folder")
    return path


def replace_file(source: str | Path, destination: str | Path, *, what: str = "output") -> Path:
    """Move the finished ``source`` onto ``destination`` atomically; returns where it went.

    A destination that is a symbolic link or not a regular file (a device, a FIFO, a socket, a folder) is
    refused, ``source`` left in place: ``os.replace`` swaps directory entries, so onto ``/dev/null`` it would put
    a regular file where the device was, and through a link it would replace a file the user never named."""
    refuse_link(destination, what=what)
    target = Path(os.path.realpath(destination))  # a linked folder on the way is followed
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else file_kind(mode)
        raise UserError(f"{what} {brief(str(destination))} is {kind}, not a regular file: it is not replaced", _FIX)
    os.replace(source, target)
    return target


def remove_file(path: str | Path) -> None:
    """Delete ``path`` if it is a regular file (or a symlink); a device, FIFO or folder there is refused, not
    deleted: a writer that clears its destination before writing anew must never remove ``/dev/null``."""
    path = Path(path)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        kind = "a directory" if stat.S_ISDIR(mode) else file_kind(mode)
        raise UserError(f"{brief(str(path))} is {kind}, not a regular file: it is not removed", _FIX)
    path.unlink()


def write_with(path: str | Path, write: Callable[[Path], object], *, what: str = "output") -> Path:
    """Make the file ``path`` by calling ``write(scratch)``, so that ``path`` is either the old file or the new one.

    ``scratch`` is a fresh file beside ``path`` with the same suffix (an image writer picks its format from
    it); once ``write`` returns it is renamed onto ``path`` by :func:`replace_file`. A Ctrl-C or a full disk
    mid-write used to leave a cut report where the previous one had been; on any failure the scratch file goes.
    """
    import tempfile

    path = Path(path)
    refuse_link(path, what=what)  # before any work: the scratch file would be made for nothing
    folder = Path(os.path.realpath(path)).parent
    try:
        handle, scratch = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".partial" + path.suffix)
    except OSError as exc:  # it named the scratch file, which the user never gave
        raise UserError(f"{what} {brief(os.fspath(path))} cannot be written: its folder {brief(str(folder))} does "
                        f"not take new files ({exc.strerror or exc})",
                        "make the folder writable, or choose another path") from None
    os.close(handle)
    try:
        write(Path(scratch))
        os.chmod(scratch, 0o644 & ~_umask())  # mkstemp makes it 0600: an output is as readable as open()'s
        return replace_file(scratch, path, what=what)
    except BaseException:
        if os.path.exists(scratch):
            os.unlink(scratch)
        raise


def write_text(path: str | Path, text: str, *, what: str = "output") -> Path:
    """Write a whole text output (a report, a JSON result, a manifest) through :func:`write_with`, as UTF-8."""
    return write_with(path, lambda scratch: _write_to(scratch, text.encode("utf-8")), what=what)


def write_bytes(path: str | Path, data: bytes, *, what: str = "output") -> Path:
    """Write a whole binary output through :func:`write_with`."""
    return write_with(path, lambda scratch: _write_to(scratch, data), what=what)


def copy_file(source: str | Path, destination: str | Path, *, what: str = "output") -> Path:
    """Copy ``source``'s bytes to ``destination`` through :func:`write_with` (``shutil.copyfile`` follows a
    link at the destination)."""
    import shutil

    return write_with(destination, lambda scratch: shutil.copyfile(source, scratch), what=what)


def open_output(path: str | Path, mode: str = "wb", *, what: str = "output"):
    """An open file handle for an output written as it goes (a log handed to a child process), where no
    scratch-and-rename is possible: ``mode`` ``"wb"`` or ``"ab"``. A link or a non-regular file at ``path`` is
    refused, and the open itself will not follow a link (``O_NOFOLLOW``), so one planted between the check
    and the open fails too."""
    if mode not in ("wb", "ab"):
        raise ValueError(f"open_output mode {mode!r}: use 'wb' or 'ab'")
    path = output_file(path, what=what)
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | (os.O_APPEND if mode == "ab" else os.O_TRUNC)
    try:
        return os.fdopen(os.open(path, flags, 0o644), mode)
    except OSError as exc:
        raise UserError(f"{what} {brief(str(path))} cannot be written ({exc.strerror or exc})", _FIX) from None


def _write_to(scratch: Path, data: bytes) -> None:
    with os.fdopen(os.open(scratch, os.O_WRONLY | os.O_TRUNC), "wb") as out:  # the file mkstemp just made
        out.write(data)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

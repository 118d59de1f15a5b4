"""Where the tools write: an output path checked before any work, and the one rename-into-place.

Two failures this prevents. A writer that renames a finished scratch file onto its destination (or deletes the
destination first) replaces whatever entry is there: run as root onto ``/dev/null``, or onto a symlink to it, that
turned the system's null device into a regular file. And a report written to a FIFO blocked for ever after the
whole analysis (an image writer raised "not seekable" instead). So an output must be nothing yet or a regular
file (through symlinks), in a folder that exists; re-exported by :mod:`causalsre.safeio`, the harness's import.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from causalsre.errors import UserError
from causalsre.safefiles import brief, file_kind

_FIX = "give the path of a regular file, or leave the option out"


def output_file(path: str | Path, *, what: str) -> Path:
    """``path`` if a file may be written (or replaced) there: nothing is there, or a regular file is (a symlink
    is followed), and its folder exists. Else one line saying what is in the way."""
    text = os.fspath(path)
    if "\x00" in text:
        raise UserError(f"{what}: the path contains a NUL character", "remove it")
    if not text.strip():
        raise UserError(f"{what}: the path is empty", "give a file path")
    path = Path(text)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        folder = Path(os.path.realpath(path)).parent  # a dangling symlink writes its target's folder
        if not folder.is_dir():
            raise UserError(f"folder {brief(str(folder))} for {what} does not exist",
                            "create it first or choose another path") from None
        return path
    except OSError as exc:  # a loop, a name too long, a folder we may not enter
        raise UserError(f"{what} {text} cannot be used ({exc.strerror or exc})", "check the path") from None
    if stat.S_ISDIR(mode):
        raise UserError(f"{what} {text} is a directory", "give a file path inside it")
    if not stat.S_ISREG(mode):
        raise UserError(f"{what} {text} is {file_kind(mode)}, not a regular file", _FIX)
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

    A symlink is followed (its target is replaced, the link stays), and a destination that is not a regular file
    (a device, a FIFO, a socket, a folder) is refused, ``source`` left in place: ``os.replace`` swaps directory
    entries, so onto ``/dev/null`` it would put a regular file where the device was."""
    target = Path(os.path.realpath(destination))
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


def write_text(path: str | Path, text: str) -> Path:
    """Write a whole text output (a report, a JSON result) so that it is either the old file or the new one:
    into a scratch file beside it, then :func:`replace_file`. A Ctrl-C or a full disk mid-write left a cut
    report where the previous one had been."""
    import tempfile

    path = Path(path)
    handle, scratch = tempfile.mkstemp(dir=Path(os.path.realpath(path)).parent, prefix=f".{path.name}.",
                                       suffix=".partial")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(scratch, 0o644 & ~_umask())  # mkstemp makes it 0600: a report is as readable as write_text's
        return replace_file(scratch, path)
    except BaseException:
        if os.path.exists(scratch):
            os.unlink(scratch)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

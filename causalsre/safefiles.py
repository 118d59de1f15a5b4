"""The ground floor of :mod:`causalsre.safeio`: the limits, short reprs for messages, and reading one regular file.

Split out so that :mod:`causalsre.safetables` (table checks) and :mod:`causalsre.safeio` (YAML/JSON/TOML) share
it without importing each other; import these names from :mod:`causalsre.safeio`, which re-exports them.
"""

from __future__ import annotations

import reprlib
import stat
import unicodedata
from pathlib import Path
from typing import Any

from causalsre.errors import UserError

MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_NODES = 1_000_000
MAX_LINE_BYTES = 8 * 1024 * 1024
REQUEST_COLUMNS = 1_000  # a per-request table: the schema's columns plus attributes
WIDE_COLUMNS = 50_000  # a wide table of one column per graph node (graphs take up to 20,000 nodes)

_brief = reprlib.Repr()
_brief.maxstring, _brief.maxother, _brief.maxlevel = 60, 60, 3


def brief(value: Any) -> str:
    """A short repr for error messages: long strings and big nested values are cut, never expanded."""
    return _brief.repr(value)


def printable_name(name: str, what: str) -> str:
    """``name`` unchanged, or a UserError when it holds a control character: a line break, tab or
    bidirectional override would split or disguise the one-line errors and report tables it is printed in
    (and a name is matched to column names by equality, where an invisible mark never matches). Any other
    Unicode (accents, CJK, emoji) is a fine name."""
    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise UserError(f"{what} {brief(name)} holds the control character U+{ord(bad):04X}",
                        "write the name without line breaks, tabs or direction marks")
    return name


def file_kind(mode: int) -> str:
    """What a path that is not a regular file is, for a message: "a FIFO", "a socket", "a device"."""
    return "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"


def regular_file(path: str | Path, *, what: str, missing_fix: str = "check the path") -> Path:
    """``path`` if it names a regular file (through symlinks); else one line saying what it is instead.

    Checked before anything opens it: reading a FIFO blocks until a writer comes (forever, for a stray one),
    /dev/zero never ends, and DuckDB opening either as a database hangs or fails with an obscure message.
    Use it instead of ``if not path.is_file(): ... does not exist``, which says so of a folder or a FIFO too;
    ``missing_fix`` is the fix printed when nothing is there.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist", missing_fix) from None
    except OSError as exc:  # a symlink loop (ELOOP), a file name too long, a folder we may not enter
        raise UserError(f"{what} {path} cannot be read ({exc.strerror or exc})", "check the path") from None
    if stat.S_ISDIR(mode):
        raise UserError(f"{what} {path} is a directory, not a file", "give the path of a file")
    if not stat.S_ISREG(mode):
        raise UserError(f"{what} {path} is {file_kind(mode)}, not a regular file",
                        "save the data to a file first and give that file's path")
    return path


def utf16(raw: bytes) -> bool:
    """A byte-order mark of UTF-16 (or UTF-32), or ASCII text with a NUL after (or before) every character."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        return True
    head = raw[:64]
    return len(head) >= 8 and (head[1::2].count(0) == len(head[1::2]) or head[0::2].count(0) == len(head[0::2]))


def read_text(path: str | Path, *, what: str) -> str:
    """The file's text, refusing a missing file, one over :data:`MAX_BYTES` and bytes that are not UTF-8."""
    path = regular_file(path, what=what)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise UserError(f"{what} {path} is {size / 2**20:.1f} MiB, over the {MAX_BYTES // 2**20} MiB limit",
                        "a spec or config file is a few KiB; check that this is the right file")
    data = path.read_bytes()[: MAX_BYTES + 1]
    if utf16(data):  # Windows editors' "Unicode": "byte 0xff at offset 0" named no encoding
        raise UserError(f"{what} {path} is UTF-16 text, not UTF-8", "save the file as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                        "save the file as UTF-8") from None
    return text.removeprefix("\ufeff")

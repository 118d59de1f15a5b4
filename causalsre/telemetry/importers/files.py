"""Reading import files safely: regular files only, gzip read transparently, a size cap, strict JSON.

A file that would take minutes to parse or more memory than the machine has is refused up front with its
size and a way around it, rather than left to hang; the cap is ``CAUSALSRE_IMPORT_MAX_MB`` (default 512 MB
of text, after decompression). gzip is recognised by its magic bytes, not the name, so a ``.json`` that is
really compressed (``curl --compressed -o``) reads too; a truncated or damaged archive is one line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from causalsre.errors import UserError
from causalsre.safeio import max_bytes, read_table_bytes, regular_file  # noqa: F401  (max_bytes: re-exported)

def fingerprint(paths: list[Path]) -> str:
    """First 16 hex digits of the SHA-256 of the files' bytes: the same files give the same run id."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"file {path} does not exist", "check the path")
    if path.is_dir():
        raise UserError(f"{path} is a directory", "give a file")
    return regular_file(path, what="file")  # a FIFO or /dev/zero would block the read forever


def files_in(paths: list[str | Path]) -> list[Path]:
    """Each path, a directory standing for its visible regular files in name order (a folder of scrapes)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not inside:
                raise UserError(f"directory {path} holds no files", "give the folder the scrapes were saved in")
            found.extend(existing_file(p) for p in inside)
        else:
            found.append(existing_file(path))
    return found


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip, refused over the size cap (:func:`causalsre.safeio.read_table_bytes`)."""
    return read_table_bytes(path)


def read_text(path: Path, what: str) -> str:
    """The file as UTF-8 text (gzip and size handled by :func:`read_bytes`)."""
    data = read_bytes(path)
    if not data.strip():
        raise UserError(f"{path.name} is empty", f"give {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path.name} is not UTF-8 text", f"give {what}") from None
    # A byte-order mark (PowerShell's Out-File, Notepad) was "Unexpected UTF-8 BOM (decode using utf-8-sig)".
    return text.removeprefix("\ufeff")


def read_json(path: Path, what: str) -> object:
    """The parsed JSON of ``path``; a file of one JSON object per line (vLLM --append-result) gives a list.

    ``NaN``/``Infinity`` parse as floats: vLLM's own ``json.dump`` writes them in summary fields (the mean
    TPOT of a run whose every output was one token); :func:`checks.number` refuses them where a value
    counts.
    """
    try:
        text = read_text(path, what)
    except UserError as exc:
        if "not UTF-8" in exc.problem:
            raise UserError(f"{path.name} is not valid JSON (not UTF-8 text)", f"give {what}") from None
        raise
    strict = dict(parse_int=_bounded_int, object_pairs_hook=_unique_keys)
    try:
        return json.loads(text, **strict)
    except json.JSONDecodeError as exc:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > 1 and exc.msg == "Extra data":  # one JSON document per line (--append-result)
            docs = []
            for number, line in enumerate(lines, 1):
                try:
                    docs.append(json.loads(line, **strict))
                except (json.JSONDecodeError, RecursionError) as bad:
                    # A benchmark killed while appending leaves its last line cut short.
                    where = "the last" if number == len(lines) else f"line {number} of {len(lines)}"
                    raise UserError(f"{path.name}: {where} result line is not valid JSON ({bad})",
                                    f"delete the damaged line to import the other {len(lines) - 1}, or give "
                                    f"{what}") from None
            return docs
        ends_early = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        cut = " (the file ends early: truncated?)" if ends_early else ""
        raise UserError(f"{path.name} is not valid JSON ({exc}){cut}", f"give {what}") from None
    except RecursionError:
        raise UserError(f"{path.name} nests deeper than the JSON parser can follow", f"give {what}") from None


def _bounded_int(text: str) -> int:
    # No field of any tool's file holds more than a 64-bit integer; 400 digits overflowed the float arrays later.
    if len(text.lstrip("-")) > 20:
        raise json.JSONDecodeError(f"an integer of {len(text.lstrip('-'))} digits is out of range", text[:20], 0)
    return int(text)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    # Python keeps the last of a repeated key: the first value would be dropped without a word.
    keys = [key for key, _ in pairs]
    if len(set(keys)) < len(keys):
        repeated = next(key for key in keys if keys.count(key) > 1)
        raise json.JSONDecodeError(f"key {repeated[:60]!r} appears twice in one object", repeated[:60], 0)
    return dict(pairs)


def read_json_or_yaml(path: Path, what: str) -> object:
    """JSON, or YAML when the name says ``.yaml``/``.yml`` (guidellm saves either, by the output's suffix)."""
    name = path.name.lower().removesuffix(".gz")
    if not name.endswith((".yaml", ".yml")):
        return read_json(path, what)
    import yaml

    class _NoAliases(yaml.SafeLoader):
        # An alias expands to a shared object: a few lines can stand for billions of nodes ("billion laughs").
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise UserError(f"{path.name} uses YAML aliases (*name), which no tool's report writes",
                                f"give {what} as the tool wrote it")
            return super().compose_node(parent, index)

    text = read_text(path, what)
    loader = _NoAliases(text)  # what yaml.safe_load does, with the alias check
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path.name} is not valid YAML ({first[:120]})", f"give {what}") from None
    except RecursionError:
        raise UserError(f"{path.name} nests deeper than the YAML parser can follow", f"give {what}") from None
    finally:
        loader.dispose()

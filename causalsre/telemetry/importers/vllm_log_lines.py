"""The lines of a vLLM server log, one function per kind, as vLLM's own format strings write them (0.4 to 0.32).

Every vLLM logger writes ``LEVEL MM-DD HH:MM:SS file.py:LINE] message`` (vllm/logger.py, 0.4-0.6),
``LEVEL MM-DD HH:MM:SS [file.py:LINE] message`` (0.7 on), since 0.11 after ``(APIServer pid=N) `` or
``(EngineCore_DP0 pid=N) ``, and after ``VLLM_LOGGING_PREFIX`` when one is set; the date has no year. Colour
codes (a terminal capture) and the prefixes of journald or ``docker logs`` before it are skipped. uvicorn's access
lines (``INFO:     127.0.0.1:5000 - "POST /v1/completions HTTP/1.1" 200 OK``) carry no time at all.

The periodic stats line (every ``VLLM_LOG_STATS_INTERVAL`` s, 10 by default; a debug message, so absent, while
the engine is idle):

* V0 (vllm/engine/metrics.py): ``Avg prompt throughput: X tokens/s, Avg generation throughput: Y tokens/s,
  Running: N reqs, Swapped: N reqs, Pending: N reqs, GPU KV cache usage: X%, CPU KV cache usage: Y%.``
* V1 (vllm/v1/metrics/loggers.py): ``Engine 000: Avg prompt throughput: ..., Running: N reqs, Waiting: N reqs,
  [Deferred: N reqs, ][Preemptions: N, ]GPU KV cache usage: X%[, Prefix cache hit rate: Y%]`` (the device is
  the engine's: ``CPU KV cache usage`` on the CPU build), or ``2 Engines Aggregated: ...`` for data parallel.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# (APIServer pid=31559) INFO 12-03 07:35:25 [api_utils.py:286] message  |  INFO 06-10 12:00:00 metrics.py:341] message
HEAD = re.compile(r"(?:\((?P<process>[\w.-]+) pid=(?P<pid>\d+)\) )?(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) "
                  r"(?P<month>\d\d)-(?P<day>\d\d) (?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)(?:[.,]\d+)? "
                  r"\[?(?P<file>[\w.-]+):(?P<lineno>\d+)\] ?(?P<message>.*)$")
ACCESS = re.compile(r'^INFO: +(?P<client>\S+) - "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})\b')
STATS_MARK = "Avg prompt throughput:"
ENGINE_PREFIX = re.compile(r"^(?:Engine (?P<engine>\d+): |(?P<engines>\d+) Engines Aggregated: )?")
# one part of the stats line: "Running: 4 reqs", "GPU KV cache usage: 12.5%", "Avg prompt throughput: 80.1 tokens/s"
PART = re.compile(r"^(?P<name>[A-Za-z][A-Za-z ]*?): (?P<value>-?\d+(?:\.\d+)?)(?P<unit> tokens/s| reqs|%)?\.?$")
VERSION = (re.compile(r"vLLM (?:API )?server version (?P<version>[\w.+-]+)"),
           re.compile(r"^\W*version\s+(?P<version>\d+\.\d+[\w.+-]*)\s*$"),  # the logo's line (0.11 on)
           re.compile(r"Initializing an? (?:V1 )?LLM engine \(v(?P<version>[\w.+-]+)\)"))
PREEMPTED = re.compile(r"is preempted by PreemptionMode\.\w+ mode because there is not enough KV cache space.*"
                       r"total_(?:num_)?cumulative_preemption(?:_cnt)?=(?P<count>\d+)")
MAX_LITERAL = 200_000  # characters of an args dict parsed as a Python literal (a real one is ~1 KB)
MAX_COUNT = 10_000_000  # requests in one engine's queue: more is a damaged line


@dataclass(slots=True)
class Line:
    """One timestamped line: its date without the year, and what it says."""

    number: int
    month: int
    day: int
    clock: tuple[int, int, int]  # hour, minute, second (server's local time)
    level: str
    process: str | None
    message: str


def strip(raw: str) -> str:
    return ANSI.sub("", raw).replace("\r", "").rstrip()


def timestamped(text: str, number: int) -> Line | None:
    """The line's vLLM head, or None for a line vLLM's logger did not write (uvicorn, tracebacks, warnings)."""
    found = HEAD.search(text)
    if found is None:
        return None
    g = found.groupdict()
    return Line(number, int(g["month"]), int(g["day"]), (int(g["hour"]), int(g["minute"]), int(g["second"])),
                g["level"], g["process"], g["message"])


def stats(message: str) -> tuple[dict[str, float], str | None, list[str]] | None:
    """(parts by name, engine label, parts not understood) of a stats line; None when it is not one.

    Names are vLLM's own (``Running``, ``Waiting``, ``Pending``, ``GPU KV cache usage``...); values as logged
    (percentages in percent). The engine label is the engine index (``0``), ``all`` for an aggregated line, or
    None for V0 and the first V1 releases, which name no engine.
    """
    prefix = ENGINE_PREFIX.match(message)
    body = message[prefix.end():]
    if not body.startswith(STATS_MARK):
        return None
    engine = None
    if prefix.group("engine") is not None:
        engine = str(int(prefix.group("engine")))
    elif prefix.group("engines") is not None:
        engine = "all"
    parts: dict[str, float] = {}
    unknown: list[str] = []
    for piece in body.rstrip(".").split(", "):
        found = PART.match(piece.strip())
        if found is None:
            unknown.append(piece.strip()[:60])
            continue
        parts[found.group("name")] = float(found.group("value"))
    return parts, engine, unknown


def version(message: str) -> str | None:
    for pattern in VERSION:
        found = pattern.search(message)
        if found is not None:
            return found.group("version")
    return None


def args_dict(message: str) -> dict[str, object] | None:
    """The flags of ``non-default args: {...}`` (0.8 on) or ``args: Namespace(...)`` (before), else None.

    Only plain values (numbers, strings, booleans, None) are kept: both forms hold reprs of objects too
    (``<CompilationMode.NONE: 0>``), which are not needed and never evaluated.
    """
    for mark in ("non-default args: ", "args: Namespace("):
        at = message.find(mark)
        if at >= 0:
            body = message[at + len(mark):]
            break
    else:
        return None
    if mark.endswith("(") and body.endswith(")"):
        return _namespace(body[:-1])
    if len(body) <= MAX_LITERAL:
        try:
            value = ast.literal_eval(body)  # literals only: no name, call or attribute is ever evaluated
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            value = None
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items() if _plain(v)}
    # a dict holding an object's repr: read its plain "'key': value" pairs one by one
    return {k: v for k, v in (_pair(m) for m in re.finditer(r"'(\w+)': ('[^']*'|[^,{}\[\]<>()]+)(?=[,}])", body))
            if _plain(v)}


def _namespace(body: str) -> dict[str, object]:
    found = {}
    for match in re.finditer(r"(?:^|, )(\w+)=('(?:[^'\\]|\\.)*'|[^,()\[\]{}<>]*)(?=, \w+=|$)", body):
        key, value = _pair(match)
        if _plain(value):
            found[key] = value
    return found


def _pair(match: re.Match) -> tuple[str, object]:
    key, text = match.group(1), match.group(2).strip()
    try:
        return key, ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return key, text


def _plain(value: object) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def config_pairs(message: str) -> dict[str, str]:
    """``key=value`` pairs of the engine's ``with config: ...`` line (top level only, as text)."""
    at = message.find("with config: ")
    if at < 0:
        return {}
    found = {}
    for match in re.finditer(r"(?:^|, )(\w+)=('[^']*'|[^,=(){}\[\]]*)(?=, \w+=|$)", message[at + 13:]):
        found[match.group(1)] = match.group(2).strip().strip("'")
    return found


def number_after(message: str, pattern: str) -> float | None:
    """The number a fixed phrase gives (``# GPU blocks: 2048``, ``GPU KV cache size: 8,192 tokens``)."""
    found = re.search(pattern, message)
    if found is None:
        return None
    try:
        return float(found.group(1).replace(",", ""))
    except ValueError:
        return None


def preempted_total(message: str) -> int | None:
    """V0's preemption warning carries the process's cumulative count (logged every 50 from 0.6 on)."""
    found = PREEMPTED.search(message)
    return int(found.group("count")) if found is not None else None


def access(text: str) -> tuple[str, str, int] | None:
    """(method, path, HTTP status) of a uvicorn access line."""
    found = ACCESS.match(text)
    if found is None:
        return None
    return found.group("method"), found.group("path"), int(found.group("status"))

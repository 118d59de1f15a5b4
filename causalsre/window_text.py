"""The window grammar as text, before any database is read: the forms, the run a window names, and rewriting a
window for a command that hands it on (:func:`scope_window`) or that had older forms
(:func:`legacy_replay_window`). :mod:`causalsre.windows` checks the text against a database."""

from __future__ import annotations

import re
from datetime import datetime

from causalsre.errors import UserError
from causalsre.times import parse_instant

FORMS = ("START/END (ISO 8601), run:<id>, phase:<name>, phase:<name>@<run>, or +S:+E@<run> = run:<id>+S:+E "
         "(seconds after the run's t0)")
_SECONDS = r"[0-9]+(?:\.[0-9]*)?"
# +S:+E, each a non-negative decimal number of seconds; the run follows an @ (or comes from run=).
_RELATIVE = re.compile(rf"^\+(?P<start>{_SECONDS}):\+(?P<end>{_SECONDS})(?:@(?P<run>.*))?$", re.DOTALL)
# run:<id>+S:+E, read from the right (a run id may hold a '+'): this loose shape says the offsets were meant,
# then each offset must be a number, so `run:r+1:+x` is refused rather than taken for a run named `r+1:+x`.
_RUN_OFFSETS = re.compile(r"^(?P<run>.*)\+(?P<start>[^+:]*):\+(?P<end>[^+:]*)$", re.DOTALL)
_NUMBER = re.compile(rf"^{_SECONDS}$")


def _one_run(text: str, named: str | None, run: str | None) -> str | None:
    """The window's run: the one it names after @ (or run:), else ``run``; both must agree."""
    if named is not None and run is not None and named != run:
        raise UserError(f"window {text[:100]!r} names run {named!r} but --run is {run!r}",
                        "give the run once: in the window (@RUN) or with --run")
    return named if named is not None else run


def _given_run(run: str) -> str:
    if not run.strip():
        raise UserError("--run is empty", "give a run id; `causalsre db info --db FILE` lists the runs")
    return run


def _run_form(text: str) -> tuple[str, tuple[str, str] | None]:
    """``run:<id>`` or ``run:<id>+S:+E`` as (id, (S, E) or None), the offsets still text."""
    body = text[len("run:"):]
    match = _RUN_OFFSETS.match(body)
    return (body, None) if match is None else (match["run"], (match["start"], match["end"]))


def scope_window(text: str, run: str | None) -> str:
    """``text`` restricted to ``run`` (a command's ``--run``), written in the grammar, for a command that hands
    the text on: ``+S:+E`` -> ``+S:+E@RUN``, ``phase:x`` -> ``phase:x@RUN``, ``START/END`` -> ``START/END@RUN``.
    A window that names the same run is kept; one naming another run is refused (as by :func:`parse_window`)."""
    text = (text or "").strip()
    if run is None:
        return text
    run = _given_run(run)
    if text.startswith("run:"):
        named, scoped = _run_form(text)[0], f"run:{run}{text[len('run:'):]}"
    elif text.startswith(("phase:", "+")) or "/" in text:
        named, scoped = text.partition("@")[2], f"{text}@{run}"
    else:
        return text  # not a window: parse_window says so
    if named or "@" in text:  # a run named, or an empty one after @ (parse_window refuses that)
        _one_run(text, named or None, run)
        return text
    return scoped


def _instant(value: str, text: str) -> datetime:
    """One end of START/END as naive UTC, through the one time parser (years 1970..2200)."""
    return parse_instant(value, what=f"window {text[:100]!r}:")


_LEGACY_SECONDS = re.compile(r"^(?P<start>[0-9]+(?:\.[0-9]*)?):(?P<end>[0-9]+(?:\.[0-9]*)?)$")
_PREFIXES = ("run:", "phase:", "+")


def legacy_replay_window(text: str) -> str:
    """``harness replay``'s old forms in the one grammar: a bare phase NAME is ``phase:NAME`` and
    ``START_S:END_S`` is ``+START_S:+END_S`` (both within the run given by --run); anything else unchanged."""
    text = (text or "").strip()
    match = _LEGACY_SECONDS.match(text)
    if match:
        return f"+{match['start']}:+{match['end']}"
    if text and not text.startswith(_PREFIXES) and not any(c in text for c in ":/@"):
        return f"phase:{text}"
    return text

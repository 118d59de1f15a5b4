"""What each scenario of a suite is scored under: its SLO and its two windows (``eval scenarios``, its peers).

By default every scenario is scored under ``--slo`` over its run's ``baseline`` and ``incident`` phases. A
hand-written scenario often needs its own (a TTFT-only SLO, windows given as times with a gap around the
change), so a suite may say so itself:

- a suite folder's own ``slo.yaml`` (OpenSLO v1, its first SLO) is used for every scenario of that folder
  instead of ``--slo``, so a folder of suites can mix SLO shapes;
- a scenario in ``truth.json`` may carry ``"windows": {"baseline": W, "incident": W}``, each ``W`` in any window
  form (docs/cli.md "Windows"), taken within the scenario's run: ``+2:+14``, an ISO ``START/END``, ...

Both are read and checked before the first postmortem runs, so a wrong file fails at once, not after minutes
of postmortems.
"""

from __future__ import annotations

from pathlib import Path

from causalsre.errors import UserError
from causalsre.windows import Window, parse_window

SLO_FILE = "slo.yaml"
PHASES = ("baseline", "incident")


def suite_slo(folder: Path, default):
    """``(slo, path)``: the folder's own ``slo.yaml`` when it has one, else ``(default, None)``."""
    path = folder / SLO_FILE
    if not path.exists():
        return default, None
    from causalsre.slo import load_slos

    return load_slos(path)[0], path


def given_windows(folder: Path, name: str, case: dict) -> dict[str, str] | None:
    """The scenario's own ``windows`` texts, checked for shape; None when it has none (its phases are used)."""
    given = case.get("windows")
    if given is None:
        return None
    if not isinstance(given, dict) or set(given) != set(PHASES) or not all(
            isinstance(given[p], str) and given[p].strip() for p in PHASES):
        raise UserError(f"{folder / 'truth.json'}: scenario {name!r} has windows {str(given)[:80]}",
                        'write "windows": {"baseline": "+2:+14", "incident": "+22:+34"} (any window form, '
                        "within the scenario's run), or leave windows out to use its phases")
    return {p: given[p].strip() for p in PHASES}


def case_windows(con, folder: Path, name: str, case: dict) -> tuple[Window, Window]:
    """The scenario's baseline and incident windows: its own ``windows`` within its run, else its two phases.

    An empty phase window (a loaded machine offered no requests) raises as before, which the scorer counts as
    that scenario's miss; a given window that does not parse is the suite's error and names the scenario.
    """
    run = case["run_id"]
    given = given_windows(folder, name, case)
    if given is None:
        return tuple(parse_window(f"phase:{phase}@{run}", con) for phase in PHASES)  # type: ignore[return-value]
    windows = []
    for phase in PHASES:
        try:
            windows.append(parse_window(given[phase], con, run=run))
        except UserError as exc:
            raise UserError(f"{folder / 'truth.json'}: scenario {name!r}, windows.{phase}: {exc.problem}",
                            exc.fix) from None
    return windows[0], windows[1]


def check_suite(con, folder: Path, truth: dict) -> None:
    """Parse every scenario's given windows now (not one by one between postmortems)."""
    for name, case in sorted(truth.items()):
        if given_windows(folder, name, case) is not None:
            case_windows(con, folder, name, case)

"""Accuracy of ``postmortem`` on a scenario suite: any folder with ``truth.json`` and one ``.duckdb`` (the shipped
``datasets/cpu-tiny`` or a suite from ``causalsre eval generate``).

Per scenario the baseline and incident phases of its run are the windows, under the given SLO, unless the suite
says otherwise (a folder's own ``slo.yaml``, a scenario's ``windows``: :mod:`causalsre.evaluation.case_setup`).
On a fault scenario the top-ranked
factor (the "other" row excluded) is a top-1 hit when it is one of the true root-cause factors; top-3 counts
a hit when every true factor is among the first three; families are scored the same way. A control (no true
cause) counts a false alarm when the postmortem names a cause (:func:`names_a_cause`). Only the result's
``attributions`` and ``families`` are read, so the postmortem may gain other keys freely.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from causalsre.causal.graph import GraphSpec
from causalsre.causal.postmortem import OTHER, postmortem
from causalsre.errors import UserError
from causalsre.evaluation.case_setup import case_windows, check_suite, given_windows, suite_slo
from causalsre.telemetry import connect_readonly

TARGETS = {"top1": 0.9, "top3": 0.8, "family_top1": 0.95, "false_alarm_rate": 0.05}  # issue #19, item 5


def names_a_cause(result: dict) -> str | None:
    """The cause a postmortem names, or None: its largest cause row (a knob, hardware or workload factor; not
    the "other" row nor an unexplained change of engine state or an outcome) when its interval excludes 0, and
    never when the postmortem found the change in bad events within chance (``cannot_tell``) or found that the
    incident burned significantly less than its baseline (``burn_fell``: no burn to blame on a cause).
    The one place that defines a false alarm on a control."""
    if result.get("cannot_tell") or result.get("burn_fell"):
        return None
    rows = sorted((r for r in result.get("attributions") or [] if r.get("role", "cause") == "cause"),
                  key=lambda r: -r["contribution"])
    if not rows or rows[0]["factor"] == OTHER:
        return None
    top = rows[0]
    return top["factor"] if top["ci_low"] > 0 or top["ci_high"] < 0 else None


def find_datasets(root: str | Path) -> list[Path]:
    root = Path(root)
    if (root / "truth.json").is_file():
        return [root]
    found = sorted(p.parent for p in root.glob("*/truth.json"))
    if not found:
        raise UserError(f"no scenario datasets under {root} (no truth.json)",
                        "pass a suite folder such as datasets/cpu-tiny or one made by `causalsre eval generate`")
    return found


def _read_truth(folder: Path) -> dict:
    try:
        truth = json.loads((folder / "truth.json").read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{folder / 'truth.json'} is not valid JSON ({exc.msg})", "regenerate the suite") from None
    bad = [name for name, case in truth.items() if not isinstance(case, dict) or not isinstance(
        case.get("run_id"), str) or not isinstance(case.get("root_cause_factors"), list)]
    if not isinstance(truth, dict) or bad:
        raise UserError(f"{folder / 'truth.json'}: scenario(s) {', '.join(bad[:3])} lack run_id or "
                        "root_cause_factors", "each scenario needs run_id, root_cause_factors and families")
    return truth


def score_case(name: str, case: dict, result: dict) -> dict:
    """One scenario's row: what the postmortem ranked against what was injected."""
    factors = [a["factor"] for a in result.get("attributions", []) if a["factor"] != OTHER]
    families = [f["family"] for f in result.get("families", []) if f["family"] != "other"]
    true_factors, true_families = set(case["root_cause_factors"]), set(case.get("families", []))
    named = names_a_cause(result)
    row = {"scenario": name, "truth": sorted(true_factors), "control": not true_factors,
           "ranked": factors[:3], "families_ranked": families[:3], "named_cause": named,
           "total_change": result.get("total_change")}
    if result.get("error"):
        row["error"] = result["error"]
    first = next((a for a in result.get("attributions", []) if a["factor"] != OTHER), None)
    if first is not None and first.get("confounded_with"):
        # A tie (changed at one instant, one value per window): the first place is by name, not a ranking.
        row["top_tied_with"] = first["confounded_with"]
    if result.get("idle_settings"):
        row["idle_settings"] = sorted(result["idle_settings"])
    if true_factors:
        # named_top1: ranked first AND named (its interval excludes 0): a first place carrying none of the change
        # is a hit for top1 but not for an operator reading the postmortem.
        row.update(top1=bool(factors[:1] and factors[0] in true_factors), named_top1=named in true_factors,
                   top3=true_factors <= set(factors[:3]),
                   family_top1=bool(families[:1] and families[0] in true_families),
                   family_top3=true_families <= set(families[:3]))
    else:
        row["false_alarm"] = named is not None
    return row


def evaluate_dataset(folder: Path, slo, graph: GraphSpec, seed: int = 0, progress=None) -> list[dict]:
    """Run the postmortem on every scenario of one suite folder; one row per scenario."""
    truth = _read_truth(folder)
    database = next(iter(sorted(folder.glob("*.duckdb"))), None)
    if database is None:
        raise UserError(f"{folder} has truth.json but no .duckdb file", "copy the suite's database beside it")
    slo, slo_file = suite_slo(folder, slo)
    con = connect_readonly(database)
    rows = []
    try:
        check_suite(con, folder, truth)
        for name, case in sorted(truth.items()):
            started = time.perf_counter()
            try:
                baseline, incident = case_windows(con, folder, name, case)
                result = postmortem(con, slo, baseline, incident, graph, seed=seed, top_requests=0)
            except UserError as exc:
                # A scenario the postmortem refuses (a window a loaded machine left without requests) is that
                # scenario's answer, not the end of the whole suite: it scores as a miss, with the reason.
                result = {"attributions": [], "families": [], "error": str(exc)}
            row = score_case(name, case, result)
            if slo_file is not None:
                row["slo_file"] = str(slo_file)
            if given_windows(folder, name, case) is not None:
                row["windows"] = given_windows(folder, name, case)
            rows.append({"dataset": folder.name, **row, "seconds": round(time.perf_counter() - started, 2)})
            if progress:
                progress()
    finally:
        con.close()
    return rows


def summarize(rows: list[dict]) -> dict:
    """Shares over the fault scenarios (top-1, top-3, families) and the false-alarm rate over the controls."""
    faults = [r for r in rows if not r["control"]]
    controls = [r for r in rows if r["control"]]
    share = lambda key, of: sum(r[key] for r in of) / len(of) if of else None  # noqa: E731
    return {"scenarios": len(rows), "fault_scenarios": len(faults), "controls": len(controls),
            "top1": share("top1", faults), "named_top1": share("named_top1", faults), "top3": share("top3", faults),
            "family_top1": share("family_top1", faults), "family_top3": share("family_top3", faults),
            "false_alarm_rate": share("false_alarm", controls), "seconds": round(sum(r["seconds"] for r in rows), 1),
            "targets": TARGETS, "cases": rows}


def score_suite(data_dir: str | Path, slo, graph: GraphSpec, *, seed: int = 0, progress=None) -> dict:
    """Score every suite under ``data_dir`` (a suite folder, or a folder of them)."""
    rows = []
    for folder in find_datasets(data_dir):
        rows += evaluate_dataset(folder, slo, graph, seed=seed, progress=progress)
    return summarize(rows)

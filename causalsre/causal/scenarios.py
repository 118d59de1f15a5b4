"""Accuracy of ``postmortem`` on the shipped scenario datasets (``datasets/*/truth.json``).

Per scenario: the baseline and incident phases of its run are the windows; the top-ranked factor (the
"other" row excluded) is a top-1 hit when it is one of the true root-cause factors; top-3 counts a hit
when every true factor is among the first three. Families are scored the same way.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from causalsre.causal.graph import GraphSpec
from causalsre.causal.postmortem import OTHER, postmortem
from causalsre.errors import UserError
from causalsre.telemetry import connect_readonly
from causalsre.windows import parse_window


def find_datasets(root: str | Path) -> list[Path]:
    root = Path(root)
    if (root / "truth.json").is_file():
        return [root]
    found = sorted(p.parent for p in root.glob("*/truth.json"))
    if not found:
        raise UserError(f"no scenario datasets under {root} (no truth.json)", "pass datasets/ or datasets/cpu-tiny")
    return found


def evaluate_dataset(folder: Path, slo, graph: GraphSpec, seed: int = 0, progress=None) -> list[dict]:
    truth = json.loads((folder / "truth.json").read_text())
    database = next(iter(sorted(folder.glob("*.duckdb"))), None)
    if database is None:
        raise UserError(f"{folder} has truth.json but no .duckdb file")
    con = connect_readonly(database)
    rows = []
    try:
        for name, case in sorted(truth.items()):
            run = case["run_id"]
            started = time.perf_counter()
            result = postmortem(con, slo, parse_window(f"phase:baseline@{run}", con),
                                parse_window(f"phase:incident@{run}", con), graph, seed=seed, top_requests=0)
            factors = [a["factor"] for a in result["attributions"] if a["factor"] != OTHER]
            families = [f["family"] for f in result["families"] if f["family"] != "other"]
            true_factors, true_families = set(case["root_cause_factors"]), set(case["families"])
            rows.append({
                "dataset": folder.name, "scenario": name, "truth": sorted(true_factors),
                "ranked": factors[:3], "families_ranked": families[:3],
                "top1": bool(factors[:1] and factors[0] in true_factors),
                "top3": true_factors <= set(factors[:3]),
                "family_top1": bool(families[:1] and families[0] in true_families),
                "family_top3": true_families <= set(families[:3]),
                "total_change": result["total_change"], "seconds": time.perf_counter() - started})
            if progress:
                progress()
    finally:
        con.close()
    return rows


def summarize(rows: list[dict]) -> dict:
    n = len(rows)
    share = lambda key: sum(r[key] for r in rows) / n if n else 0.0  # noqa: E731
    return {"scenarios": n, "top1": share("top1"), "top3": share("top3"), "family_top1": share("family_top1"),
            "family_top3": share("family_top3"), "targets": {"family_top1": 0.9, "top1": 0.8}, "cases": rows}

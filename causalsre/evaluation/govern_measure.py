"""What ``eval govern`` measures in one run's database, and the tier SLO specs it measures with.

No harness import: this reads recorded telemetry only (read-only), with the SLO package's ``slo report``
machinery, so the engine runs and the gateway runs in front of vLLM are measured the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causalsre.errors import UserError
from causalsre.safeio import write_text
from causalsre.evaluation import govern_traffic as T
from causalsre.telemetry import first_row

# Largest change of the machine's speed probe within one (load, seed) group before the group is flagged:
# 25 % moves a 1.3x load to 1.04x or 1.73x of the capacity measured at the group's start.
SPEED_TOLERANCE = 0.25
ACTIONS_TABLE = "control_actions"   # the governor's decisions (migration 0004), where the schema has it


def tier_spec(name: str, tenants: str, objective: float, ttft_s: float, tpot_s: float) -> dict[str, Any]:
    """The OpenSLO document of one tier: good iff ttft_s <= ttft_s and tpot_s <= tpot_s (and finished ok)."""
    conditions = [{"metric": "ttft_s", "op": "lte", "value": float(ttft_s)},
                  {"metric": "tpot_s", "op": "lte", "value": float(tpot_s)}]
    return {"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": name},
            "spec": {"service": "llm-serving",
                     "description": f"eval govern tier {name} (tenants {tenants}), thresholds calibrated at half load.",
                     "indicator": {"metadata": {"name": "ttft-and-tpot"},
                                   "spec": {"ratioMetric": {
                                       "counter": True,
                                       "good": {"metricSource": {"type": "causalsre",
                                                                 "spec": {"conditions": conditions}}},
                                       "total": {"metricSource": {"type": "causalsre"}}}}},
                     "timeWindow": [{"duration": "30d", "isRolling": True}],
                     "budgetingMethod": "Occurrences",
                     "objectives": [{"displayName": "good", "target": float(objective)}]}}


def tier_spec_yaml(name: str, tenants: str, objective: float, ttft_s: float, tpot_s: float) -> str:
    """:func:`tier_spec` as YAML, written by the YAML library: a threshold formatted into a template as
    ``1e-05`` (Python's repr) reads back as the string '1e-05' (YAML 1.1 wants a dot), which the SLO loader
    refused; the dumper writes ``1.0e-05``."""
    import yaml

    return yaml.safe_dump(tier_spec(name, tenants, objective, ttft_s, tpot_s), sort_keys=False, allow_unicode=True)


def tier_slos(folder: Path, thresholds: dict[str, float], prefix: str = "") -> list[tuple[str, Any, Path]]:
    """(tier, SLOSpec, spec file) per tier: each spec is written to ``folder`` so `slo report` can re-check it."""
    from causalsre.slo import load_slos

    out = []
    for name, _, objective, _, _ in T.TIERS:
        path = folder / f"{prefix}slo-{name}.yaml"
        write_text(path, tier_spec_yaml(name, name, objective, *T.tier_thresholds(thresholds, name)))
        out.append((name, load_slos(path)[0], path))
    return out


def measure_run(db_path: Path, slos: list[tuple[str, Any, Path]], actions_db: Path | None = None) -> dict[str, Any]:
    """Throughput, goodput, per-tier budgets, rejections, governor actions and the request hash of one run.
    ``actions_db``: where the governor's decisions are, when not in the run's database (a gateway's own)."""
    from causalsre.slo.report import build_report
    from causalsre.slo.sql import request_outcomes
    from causalsre.telemetry import connect_readonly

    con = connect_readonly(db_path)
    try:
        tiers, burndown, good = [], {}, 0
        for name, slo, _ in slos:
            if not first_row(con.execute("SELECT count(*) FROM request_metrics WHERE tenant = ?", [name]))[0]:
                # no request of this tier in the run (slo report refuses an empty filter): no data, no budget used
                tiers.append({"tier": name, "objective": slo.objective, "events": 0, "bad_events": 0,
                              "budget_consumed": None})
                burndown[name] = {"t_s": [], "remaining": []}
                continue
            report = build_report(con, [slo], where={"tenant": name}, per_run=False)[0]
            tiers.append({"tier": name, "objective": slo.objective, "events": report["events"],
                          "bad_events": report["bad_events"], "budget_consumed": report["budget_consumed"]})
            good += report["events"] - report["bad_events"]
            outcomes = request_outcomes(con, slo, {"tenant": name})
            burndown[name] = _burndown(outcomes, slo.error_budget)
        span_s, tokens = first_row(con.execute(
            "SELECT (max(arrival_ns + COALESCE(e2e_s, 0) * 1e9) - min(arrival_ns)) / 1e9, "
            "sum(output_tokens) FILTER (WHERE is_ok) FROM request_metrics"))
        rejected = first_row(con.execute("SELECT count(*) FROM requests WHERE status = 'rejected'"))[0]
        digest = T.recorded_requests_hash(con)
        speed = T.speed_probe_ms(con)
        actions = count_actions(con) if actions_db is None else None
    finally:
        con.close()
    if actions_db is not None:
        con = connect_readonly(actions_db)
        try:
            actions = count_actions(con)
        finally:
            con.close()
    span_s = float(span_s or 0.0)
    return {"throughput_tok_s": round(float(tokens or 0) / span_s, 2) if span_s > 0 else None,
            "goodput_rps": round(good / span_s, 3) if span_s > 0 else None, "tiers": tiers,
            "rejected": int(rejected), "actions": int(actions), "_hash": digest, "_burndown": burndown,
            "_speed_ms": speed}


def count_actions(con) -> int:
    """The governor's decisions: rows of control_actions other than the run-end counters (bookkeeping)."""
    has_actions = first_row(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                              [ACTIONS_TABLE]))[0]
    if not has_actions:
        return 0
    return first_row(con.execute("SELECT count(*) FROM control_actions WHERE action <> ?", ["final_counters"]))[0]


def _burndown(outcomes, budget: float) -> dict[str, list[float]]:
    """Budget remaining over the run: 1 - bad events so far / (budget x the run's events), ends at 1 - consumed."""
    if outcomes.empty or budget <= 0:
        return {"t_s": [], "remaining": []}
    start = outcomes["arrival_ts"].min()
    seconds = (outcomes["arrival_ts"] - start).dt.total_seconds().round(3).tolist()
    remaining = (1.0 - outcomes["is_bad"].astype(int).cumsum() / (budget * len(outcomes))).round(4).tolist()
    return {"t_s": seconds, "remaining": remaining}


def close_group(folder, workload, load, seed, order, requests, capacity, thresholds, slos, hashes, group, probes,
                say, *, modelled: bool = False) -> dict[str, Any]:
    """The group's case record: how far the speed probe moved (first = the probe before the group), the flag
    (set on every run of the group too), and the check that every policy recorded the same requests. Under
    the modelled clock the machine's speed does not enter the timings, so no group is flagged."""
    known = [p for p in probes if p]
    moved = round(max(known) / min(known) - 1.0, 3) if known else None
    flagged = not modelled and (moved is None or moved > SPEED_TOLERANCE)
    if flagged and not modelled:
        say(f"flagged: {workload} load {load:g} seed {seed}: the speed probe moved "
            f"{'?' if moved is None else f'{100 * moved:.0f} %'} during the group (tolerance "
            f"{100 * SPEED_TOLERANCE:.0f} %)")
    for row, _ in group.values():
        row["speed_flagged"] = flagged
    same = len(set(hashes.values())) == 1
    case = {"workload": workload, "load": load, "seed": seed, "requests": len(requests), "order": order,
            "capacity_rps": round(capacity, 3), "speed_probe_before_ms": probes[0], "thresholds": thresholds,
            "slo_specs": {n: str(p) for n, _, p in slos}, "speed_moved": moved, "speed_flagged": flagged,
            "requests_sha256": hashes, "same_requests": same}
    if not same:
        raise UserError(f"the policies of {workload} load {load:g} seed {seed} recorded different requests",
                        f"this is a bug; the databases are in {folder}")
    return case

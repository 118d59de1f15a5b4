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
import sys
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
    from harness.hardware import hardware_info
    from harness.http_run import run_http
    from harness.peers.vllm_server import SETUP_FIX, unavailable_reason
    from harness.scenarios import load_scenario
    from harness.suite import build_dataset

    names = names or list_vllm_scenarios()
    unknown = sorted(set(names) - set(list_vllm_scenarios()))
    if unknown:
        raise UserError(f"unknown vLLM scenario(s) {', '.join(unknown)}", f"use {', '.join(list_vllm_scenarios())}")
    reason = unavailable_reason()
    if reason is not None:
        raise UserError(f"cannot build the vLLM suite: {reason}", SETUP_FIX)
    configs = {name: load_scenario(SCENARIO_DIR / f"{name}.toml") for name in names}

    def run_one(index: int, name: str, cfg: Any, database: Path) -> str:
        print(f"[{index}/{len(names)}] {name}: starting vLLM and running {cfg.duration_s:g} s", file=sys.stderr)
        return run_http(cfg, database, seed, engine="vllm", run_id=f"{name}-vllm-s{seed}")

    def check(name: str, entry: dict, truth: dict, slo: Any) -> None:
        entry["design_met"] = design_met(entry["slo_check"], slo.objective, control=not truth["root_cause_factors"])
        if not entry["design_met"]:
            print(f"warning: {name} does not behave as designed (baseline meets the SLO, the incident breaks "
                  f"it): {json.dumps(entry['slo_check'])}; a busy machine slows vLLM itself", file=sys.stderr)

    def describe() -> dict[str, Any]:
        return {"engine": "vllm-cpu 0.32.0 (peer virtualenv .venv-vllm, --load-format dummy)",
                "hardware": hardware_info("cpu"),
                "load_average": list(os.getloadavg()),  # a shared machine: how busy it was when the suite was built
                "tokens_kept": keep_tokens,
                "metric_samples_kept": True}  # builds before this key lost them in compact (docs/datasets.md)

    return build_dataset(out_dir, [(name, cfg, cfg) for name, cfg in configs.items()], run_one, seed=seed,
                         command=command or f"python -m harness.peers.suite {out_dir} --seed {seed}",
                         describe=describe, check=check, before_compact=None if keep_tokens else _drop_tokens)


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

"""``causalsre eval generate``: a fresh scenario suite drawn at random and recorded with the real harness.

Per scenario: draw (:mod:`.draw`), record it into a scratch database, check that it burns budget under its own
``[slo]`` thresholds, and keep it (copied into the suite) or re-draw: a re-draw alternates between moving
every cause's severity halfway to its most severe value and drawing the scenario afresh (MAX_REDRAWS in all).
A fault scenario burns when its incident's bad rate exceeds its baseline's by at least the SLO's error budget
(1 - objective); a control must *not* burn (its two windows within that margin), so that "no cause" is the
right answer; both windows need MIN_PHASE_REQUESTS requests. The output folder gets ``suite.duckdb``, ``truth.json`` (the shape ``eval scenarios`` reads) and
``manifest.json`` (seed, ranges, per scenario its drawn parameters, every attempt and the re-draw counts).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from causalsre.errors import UserError
from causalsre.safeio import remove_file, replace_file, write_text
from causalsre.evaluation import ranges as R
from causalsre.evaluation.draw import CONTROL, ScenarioDraw, draw_scenario, plan_suite, run_config_dict

DB_NAME = "suite.duckdb"


def burn_check(phases: dict[str, dict], objective: float, control: bool) -> dict[str, Any]:
    """Whether a recorded scenario is what it claims: a fault burns budget, a control does not."""
    bad = {p: 1.0 - phases.get(p, {}).get("good_fraction", 1.0) for p in ("baseline", "incident")}
    requests = {p: phases.get(p, {}).get("requests", 0) for p in ("baseline", "incident")}
    margin = round(1.0 - objective, 6)
    excess = bad["incident"] - bad["baseline"]
    ok = (abs(excess) < margin) if control else (excess >= margin)
    ok = ok and min(requests.values()) >= R.MIN_PHASE_REQUESTS  # a rate of a handful of requests is noise
    rule = "|incident - baseline| < margin" if control else "incident - baseline >= margin"
    return {"baseline_bad_rate": round(bad["baseline"], 4), "incident_bad_rate": round(bad["incident"], 4),
            "excess": round(excess, 4), "margin": margin, "rule": rule + f", >= {R.MIN_PHASE_REQUESTS} requests each",
            "ok": bool(ok), "requests": requests}


def _base_config() -> dict[str, Any]:
    from harness.scenarios import SCENARIO_DIR, load_scenario

    return load_scenario(SCENARIO_DIR / "_base.toml").model_dump(mode="json")


def _record(cfg_dict: dict[str, Any], scratch: Path, capacity: float | None, run_id: str):
    """Run one attempt into a fresh scratch database; returns (run config, run id, SLO check per phase)."""
    from causalsre.telemetry import connect_readonly
    from harness.config import parse_run_config
    from harness.runner import resolve_rate, run
    from harness.suite import slo_check

    cfg = parse_run_config(dict(cfg_dict, calibrated_capacity_rps=capacity), source=cfg_dict["name"])
    cfg, _ = resolve_rate(cfg, cfg.seed)   # calibrated once per base, reused by its raised re-draws
    for leftover in (scratch, scratch.with_name(scratch.name + ".wal")):
        leftover.unlink(missing_ok=True)
    run_id = run(cfg, scratch, seed=cfg.seed, run_id=run_id)
    con = connect_readonly(scratch)
    try:
        phases = slo_check(con, run_id, cfg.slo.ttft_s, cfg.slo.tpot_s)
    finally:
        con.close()
    return cfg, run_id, phases


def _attempts(seed: int, index: int, shape: str, kinds: list[str], phase_s, pool=None):
    """The draws to try for one scenario: the first; then, alternately, the same causes halfway to their most
    severe value (when they have a magnitude) and a fresh draw of the whole scenario."""
    draw = draw_scenario(seed, index, shape, kinds, phase_s=phase_s, pool=pool)
    yield draw, "first draw"
    raised, fresh = False, 0
    for _ in range(R.MAX_REDRAWS):
        if not raised and shape != CONTROL and draw.can_raise():
            draw, raised = draw.raised(), True
            yield draw, "magnitude up"
        else:
            fresh += 1
            draw, raised = draw_scenario(seed, index, shape, kinds, fresh=fresh, phase_s=phase_s, pool=pool), False
            yield draw, "fresh draw"


def generate_suite(out_dir: str | Path, *, seed: int, count: int, phase_s: tuple[float, float] = R.PHASE_S,
                   progress: Callable[[int, str], None] | None = None, clock: str = "wall",
                   clock_model: str | Path | None = None, resume: bool = False) -> dict[str, Any]:
    """Draw and record ``count`` scenarios into ``out_dir``; returns the manifest (also written to disk).
    ``clock``: ``wall`` or ``modelled`` (:mod:`.generate_clock`; ``clock_model``: a clock_model.json to reuse).
    After every scenario the kept runs and the record so far are on disk (``.progress.json``), so an interrupted
    suite is finished with ``resume`` (the same arguments): the scenarios done are not drawn again."""
    from causalsre.telemetry import SCHEMA_VERSION
    from harness.hardware import hardware_info
    from harness.merge import compact, copy_runs, keep_only_runs
    from harness.scenarios import scenario_truth

    if not (0 < phase_s[0] <= phase_s[1]):
        raise UserError(f"bad phase length range {phase_s}", "give MIN MAX seconds with 0 < MIN <= MAX")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out_dir = Path(out_dir)
    if (out_dir / DB_NAME).exists() or (out_dir / "truth.json").exists():
        raise UserError(f"{out_dir} already holds a suite", "pass a new --out folder (or remove the old one)")
    from causalsre.evaluation.generate_clock import check_clock, kinds_for, suite_clock

    check_clock(clock, clock_model)
    partial, scratch = out_dir / f".{DB_NAME}.partial", out_dir / ".attempt.duckdb"
    arguments = {"seed": seed, "count": count, "phase_s": [float(v) for v in phase_s], "clock": clock}
    done = _read_progress(out_dir, arguments, resume)
    if done is not None and clock == "modelled" and clock_model is None:
        clock_model = out_dir / "clock_model.json"   # the suite's own fit, so every scenario shares one clock
    out_dir.mkdir(parents=True, exist_ok=True)
    pool = kinds_for(clock)
    plan = plan_suite(seed, count, pool)
    base_cfg = _base_config()
    clock_cfg, clock_record = suite_clock(clock, clock_model, base_cfg, out_dir,
                                          lambda m: progress(0, m) if progress else None)
    if clock_cfg is not None:
        base_cfg = dict(base_cfg, clock=clock_cfg)   # every run, its capacity probe and its replays
    if done is None:
        partial.unlink(missing_ok=True)
        done = {"next_index": 0, "truth": {}, "entries": {}, "dropped": [], "seconds": 0.0}
    elif partial.exists():
        keep_only_runs(partial, [t["run_id"] for t in done["truth"].values()])
    truth, entries, dropped = done["truth"], done["entries"], done["dropped"]
    started_all = time.perf_counter() - done["seconds"]
    for index, (shape, kinds) in enumerate(plan):
        if index < done["next_index"]:
            continue
        started, attempts, capacity, kept = time.perf_counter(), [], None, None
        for draw, why in _attempts(seed, index, shape, kinds, phase_s, pool):
            if progress:
                progress(index, f"{draw.name} ({why})")
            if why == "fresh draw":
                capacity = None
            cfg, run_id, phases = _record(run_config_dict(draw, base_cfg, seed), scratch, capacity,
                                          f"{draw.name}-s{seed}")
            capacity = cfg.calibrated_capacity_rps
            check = burn_check(phases, cfg.slo.objective, control=shape == CONTROL)
            attempts.append({"why": why, "drawn": draw.to_json(), "faults": [f.model_dump(mode="json",
                             exclude_none=True) for f in cfg.faults], "burn_check": check,
                             "calibrated_capacity_rps": round(capacity, 3)})
            if check["ok"]:
                kept = (draw, cfg, run_id, phases, check)
                break
        if kept is None:
            dropped.append({"index": index, "shape": shape, "attempts": attempts})
        else:
            draw, cfg, run_id, phases, check = kept
            copy_runs([scratch], partial)
            truth[draw.name] = dict(scenario_truth(cfg), run_id=run_id, shape=shape, slo_check=phases,
                                    burn_check=check)
            entries[draw.name] = {"run_id": run_id, "shape": shape, "drawn": draw.to_json(),
                                  "calibrated_capacity_rps": cfg.calibrated_capacity_rps,
                                  "redraws": len(attempts) - 1, "attempts": attempts,
                                  "seconds": round(time.perf_counter() - started, 1), "config": cfg.to_json_dict()}
        _write_progress(out_dir, dict(arguments, next_index=index + 1, truth=truth, entries=entries,
                                      dropped=dropped, seconds=time.perf_counter() - started_all))
    for leftover in (scratch, scratch.with_name(scratch.name + ".wal")):
        leftover.unlink(missing_ok=True)
    manifest = {
        "schema_version": SCHEMA_VERSION, "generator": "causalsre eval generate",
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "database": DB_NAME,
        "seed": seed, "count": count, "phase_s": list(phase_s), "ranges": R.ranges_table(), "clock": clock_record,
        "hardware": hardware_info("cpu"), "command": f"causalsre eval generate --seed {seed} --count {count} "
        f"--out {out_dir} --phase-s {phase_s[0]:g} {phase_s[1]:g}" + ("" if clock == "wall" else f" --clock {clock}"),
        "seconds": round(time.perf_counter() - started_all, 1),
        "redraws": _redraw_summary(entries, dropped), "dropped": dropped, "scenarios": entries,
    }
    write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n")
    if not truth:
        partial.unlink(missing_ok=True)
        raise UserError(f"no drawn scenario passed its burn check ({out_dir / 'manifest.json'} lists every attempt)",
                        "a very busy machine records too few requests: retry when it is quieter, or longer --phase-s")
    compacted = out_dir / f".{DB_NAME}.compact"
    compact(partial, compacted)
    replace_file(compacted, out_dir / DB_NAME, what="suite database")
    for leftover in (partial, partial.with_name(partial.name + ".wal")):
        leftover.unlink(missing_ok=True)
    write_text(out_dir / "truth.json", json.dumps(truth, indent=2) + "\n")
    remove_file(out_dir / PROGRESS_NAME)
    return manifest


PROGRESS_NAME = ".progress.json"


def _read_progress(out_dir: Path, arguments: dict[str, Any], resume: bool) -> dict[str, Any] | None:
    """The record of an interrupted suite to go on from (``resume``), None for a new suite; an interrupted suite
    is never started over by mistake, nor continued with other arguments (its draws would not be the plan's)."""
    path = out_dir / PROGRESS_NAME
    if not path.is_file():
        if resume:
            raise UserError(f"{out_dir} holds no interrupted suite ({PROGRESS_NAME} is absent)",
                            "drop --resume to start a new suite there")
        return None
    try:
        done = json.loads(path.read_text(encoding="utf-8"))
        held = {k: done[k] for k in arguments}
        done["next_index"], done["truth"], done["entries"], done["dropped"], done["seconds"]
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise UserError(f"{path} is damaged ({type(exc).__name__})",
                        "remove the folder's files and generate again (its record cannot be trusted)") from None
    if not resume:
        raise UserError(f"{out_dir} holds an interrupted suite ({done['next_index']} of {done['count']} scenarios done)",
                        "add --resume (with the same --seed, --count, --phase-s and --clock) to finish it, "
                        "or pass a new --out folder")
    differs = [f"{k} {held[k]} (now {arguments[k]})" for k in arguments if held[k] != arguments[k]]
    if differs:
        raise UserError(f"--resume with other arguments than the interrupted suite: {', '.join(differs)}",
                        "resume with the suite's own arguments")
    return done


def _write_progress(out_dir: Path, record: dict[str, Any]) -> None:
    write_text(out_dir / PROGRESS_NAME, json.dumps(record, default=str) + "\n")


def _redraw_summary(entries: dict[str, dict], dropped: list[dict]) -> dict[str, Any]:
    """How often a draw had to be replaced, in all and by the kind of the draw that failed."""
    failed: Counter = Counter()
    for attempts in [e["attempts"] for e in entries.values()] + [d["attempts"] for d in dropped]:
        for attempt in attempts:
            if not attempt["burn_check"]["ok"]:
                kinds = [f["kind"] for f in attempt["drawn"]["faults"]] or [CONTROL]
                failed.update(kinds)
    return {"total": sum(e["redraws"] for e in entries.values()) + sum(len(d["attempts"]) - 1 for d in dropped),
            "scenarios_redrawn": sum(1 for e in entries.values() if e["redraws"]),
            "dropped": len(dropped), "failed_by_kind": dict(sorted(failed.items()))}


def summary_lines(manifest: dict[str, Any]) -> list[str]:
    """The human-readable report of a generated suite."""
    lines = []
    for name, entry in manifest["scenarios"].items():
        check = entry["attempts"][-1]["burn_check"]
        lines.append(f"{name:<48} {entry['shape']:<7} bad {check['baseline_bad_rate']:.2f} -> "
                     f"{check['incident_bad_rate']:.2f}  re-draws {entry['redraws']}  {entry['seconds']:.0f} s")
    r = manifest["redraws"]
    lines.append(f"{len(manifest['scenarios'])} scenarios in {manifest['seconds']:.0f} s; {r['total']} re-draws "
                 f"({r['scenarios_redrawn']} scenarios re-drawn, {r['dropped']} dropped); seed {manifest['seed']}")
    return lines

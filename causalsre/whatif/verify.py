"""``whatif --verify``: replay the window's workload through the harness with the intervention applied.

The replay keeps the recorded arrivals, lengths, tenants and seed and the window's hardware faults
(``harness.replay.window_config``). An intervention do(knob = v) holds the knob at v for the whole window,
so a config push or fault that would change that same knob during the window is removed from the replay.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from causalsre.errors import UserError

# Graph knob -> (harness config key, fault kinds that set the same factor)
KNOB_CONFIG = {
    "max_num_seqs": ("engine.max_num_seqs", ()), "max_num_batched_tokens": ("engine.max_num_batched_tokens", ()),
    "chunk_size": ("engine.chunk_size", ()), "policy": ("engine.policy", ()),
    "num_kv_blocks": ("engine.num_kv_blocks", ("kv_shrink",)), "num_threads": ("engine.num_threads", ("fewer_threads",)),
    "dtype": ("engine.dtype", ()), "device": ("engine.device", ()),
}
_INTEGER_KNOBS = {"max_num_seqs", "max_num_batched_tokens", "chunk_size", "num_kv_blocks", "num_threads"}


def harness_overrides(interventions: dict) -> dict:
    out = {}
    for knob, value in interventions.items():
        if knob not in KNOB_CONFIG:
            raise UserError(f"the harness cannot set {knob}", f"verify one of {', '.join(KNOB_CONFIG)}")
        out[KNOB_CONFIG[knob][0]] = int(round(value)) if knob in _INTEGER_KNOBS else value
    return out


def intervened_config(db_path: str | Path, run_id: str, phase: str, interventions: dict):
    """The replay config of one run's phase with do(interventions) applied for the whole window."""
    from harness.replay import window_config

    cfg = window_config(db_path, run_id, phase)
    data = cfg.model_dump()
    faults = []
    for fault in data["faults"]:
        if fault["kind"] == "config_push":
            knobs = {k: v for k, v in fault["knobs"].items() if k not in interventions}
            if not knobs:
                continue
            fault["knobs"] = knobs
        if any(fault["kind"] in KNOB_CONFIG[k][1] for k in interventions if k in KNOB_CONFIG):
            continue
        faults.append(fault)
    cfg = cfg.with_overrides({"faults": faults}) if faults != data["faults"] else cfg
    return cfg.with_overrides(harness_overrides(interventions))


def verify(ctx, window_text: str, interventions: dict, *, out_db: str | Path | None = None,
           progress: bool = False) -> dict:
    """Replay every run of a phase window with the intervention; measured bad and burn rate over all."""
    from causalsre.causal import build_analysis_table
    from causalsre.telemetry import connect_readonly
    from causalsre.windows import Window
    from harness.runner import run

    window = ctx.window(window_text)
    if window.phase is None:
        raise UserError(f"--verify needs a phase window, not {window_text!r}",
                        "write --window phase:NAME or phase:NAME@RUN_ID")
    runs = sorted(ctx.table(window_text)["run_id"].unique())
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(out_db) if out_db else Path(scratch) / "verify.duckdb"
        run_ids = []
        for rid in runs:
            cfg = intervened_config(ctx.db_path, rid, window.phase, interventions)
            run_ids.append(run(cfg, out, seed=cfg.seed, progress=progress))
        con = connect_readonly(out)
        try:
            tables = [build_analysis_table(con, ctx.slo, window=Window(label=f"replay {r}", run_id=r, phase=window.phase))
                      for r in run_ids]
        finally:
            con.close()
    bad = sum(int(t["is_bad"].sum()) for t in tables)
    total = sum(len(t) for t in tables)
    bad_rate = bad / total
    return {"burn_rate": bad_rate / (1.0 - ctx.objective), "bad_rate": bad_rate, "requests": total,
            "replayed_runs": run_ids}

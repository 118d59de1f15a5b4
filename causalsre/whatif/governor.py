"""The budget governor in what-if analysis: its tiers, ``--verify`` under it, and a small configuration search.

``whatif --set policy=budget`` needs the governor's tiers (the run TOML's ``[governor]``): from ``--governor
FILE.toml`` (checked by the loader ``causalsre serve --governor`` uses, the harness's own ``[governor]``
model) or from the window's recorded run config when it already ran with one. The replay then runs the
governor with those tiers, and each tier's budget is measured before (the recorded window) and after (the
replay) with the SLO package's rule (:mod:`causalsre.whatif.tiers`).

``recommend --governor-grid`` replays the window once per configuration of a small grid (:data:`MARGINS` x
:data:`BATCHING`) with ``policy = budget``, plus once unchanged (the reference on the same machine), and
ranks them by the protected tiers' measured budgets.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable

from causalsre.errors import UserError
from causalsre.whatif.tiers import TierRule, pooled, tier_budgets, worst_protected
from harness.engine.settings import TIERED_POLICIES
from causalsre.telemetry import first_row

# The documented grid (docs/methods/whatif.md, "The budget governor"): shed when a protected tier's
# remaining budget falls below the margin...
MARGINS = (0.1, 0.25, 0.5)
# ...and batching depth either held at the recorded engine's values or free to shrink to a quarter of them
# (never above them: a candidate must not win by serving with bigger batches than the recording had).
BATCHING = ("fixed", "adaptive")
_FIX = "pass --governor FILE.toml with a [governor] section and [[governor.tiers]] (docs/methods/governor.md)"


def needs_tiers(interventions: dict) -> bool:
    return interventions.get("policy") in TIERED_POLICIES


def load_governor_file(path: str):
    """A ``[governor]`` TOML checked as the harness checks a run config's section (one-line UserError)."""
    from harness.serve.gateway import load_governor_toml

    return load_governor_toml(path)


def recorded_governor(ctx, window_text: str):
    """The GovernorConfig the window's runs recorded (None when they ran without one); runs that differ are
    refused, since one replay of the window cannot take two governors."""
    from harness.engine.governor.config import GovernorConfig

    sections = set()
    for rid in sorted(ctx.table(window_text)["run_id"].unique()):
        row = first_row(ctx.con.execute("SELECT config_json FROM runs WHERE run_id = ?", [rid]))
        try:
            config = json.loads(row[0]) if row and row[0] else {}
        except json.JSONDecodeError:
            config = {}
        section = config.get("governor") if isinstance(config, dict) else None
        sections.add(json.dumps(section, sort_keys=True) if section else "")
    if len(sections) > 1:
        raise UserError(f"the runs of window {window_text!r} recorded different [governor] sections", _FIX)
    section = sections.pop() if sections else ""
    return GovernorConfig.from_dict(json.loads(section)) if section else None


def resolve_governor(ctx, window_text: str, interventions: dict, governor_file: str | None):
    """The governor of the what-if: the file when given, else the recorded one; required for edf/budget."""
    governor = load_governor_file(governor_file) if governor_file else recorded_governor(ctx, window_text)
    if governor is None and needs_tiers(interventions):
        raise UserError(f"--set policy={interventions['policy']} needs the governor's tiers and the runs of "
                        f"{window_text!r} ran without a [governor] section", _FIX)
    return governor


def tier_rules(governor) -> list[TierRule]:
    """The governor's tiers (its default tier included) as plain rules for :mod:`causalsre.whatif.tiers`."""
    from harness.engine.governor.config import DEFAULT_TIER

    return [TierRule(t.name, None if t.name == DEFAULT_TIER else tuple(t.tenants), t.objective, t.ttft_s, t.tpot_s,
                     t.protected, t.criticality) for t in governor.all_tiers]


def recorded_tiers(ctx, window_text: str, governor) -> list[dict]:
    return tier_budgets(ctx.con, ctx.window(window_text), tier_rules(governor))


def replay_with_tiers(ctx, window_text: str, interventions: dict, governor, *, out_db: str | Path | None = None,
                      progress: bool = False, apply: bool = True) -> dict:
    """``whatif --verify`` with the governor in the replay config (``apply``; else the recorded config's)
    and its tiers measured on the replay (``tiers``)."""
    from causalsre.telemetry import connect_readonly
    from causalsre.windows import Window
    from causalsre.whatif.verify import verify

    extra = {"governor": governor.to_dict()} if governor is not None and apply else {}
    phase = ctx.window(window_text).phase
    with tempfile.TemporaryDirectory() as scratch:
        db = Path(out_db) if out_db else Path(scratch) / "verify.duckdb"
        result = verify(ctx, window_text, interventions, out_db=db, progress=progress, extra=extra)
        if governor is not None:
            con = connect_readonly(db)
            try:
                rules = tier_rules(governor)
                result["tiers"] = pooled([tier_budgets(con, Window(label=f"replay {r}", run_id=r, phase=phase), rules)
                                          for r in result["replayed_runs"]])
            finally:
                con.close()
    return result


def grid(engine: dict, margins=MARGINS) -> list[dict]:
    """The candidate governor settings: each margin x each batching rule, bounds from the recorded engine."""
    seqs, tokens = int(engine["max_num_seqs"]), int(engine["max_num_batched_tokens"])
    bounds = {"fixed": {"min_max_num_seqs": seqs, "max_max_num_seqs": seqs, "min_batched_tokens": tokens,
                        "max_batched_tokens": tokens},
              "adaptive": {"min_max_num_seqs": max(1, seqs // 4), "max_max_num_seqs": seqs,
                           "min_batched_tokens": max(1, tokens // 4), "max_batched_tokens": tokens}}
    return [{"margin": float(m), "batching": name, **bounds[name]} for m in margins for name in BATCHING]


def recorded_engine(ctx, window_text: str) -> dict:
    rid = sorted(ctx.table(window_text)["run_id"].unique())[0]
    row = first_row(ctx.con.execute("SELECT config_json FROM runs WHERE run_id = ?", [rid]))
    try:
        engine = json.loads(row[0]).get("engine") if row and row[0] else None
    except (json.JSONDecodeError, AttributeError):
        engine = None
    if not isinstance(engine, dict) or "max_num_seqs" not in engine:
        raise UserError(f"run {rid} recorded no engine config to replay",
                        "--governor-grid needs a harness run (imported telemetry cannot be replayed)")
    return engine


def recommend_governor(ctx, window_text: str, governor, *, margins=MARGINS, progress: bool = False,
                       say: Callable[[str], None] = lambda _: None) -> dict:
    """Every grid candidate replayed with ``policy = budget``, ranked best first (see :func:`worst_protected`)."""
    from harness.engine.governor.config import GovernorConfig

    if ctx.window(window_text).phase is None:
        raise UserError(f"--governor-grid replays a phase window, not {window_text!r}",
                        "write --window phase:NAME or phase:NAME@RUN_ID")
    candidates = grid(recorded_engine(ctx, window_text), margins)
    configs = [GovernorConfig.from_dict({**governor.to_dict(), **{k: v for k, v in c.items() if k != "batching"}})
               for c in candidates]   # every candidate checked before the first replay
    say(f"replaying {window_text} unchanged (the reference), then {len(candidates)} governor configurations")
    reference = replay_with_tiers(ctx, window_text, {}, governor, progress=progress, apply=False)
    rows = []
    for i, (candidate, config) in enumerate(zip(candidates, configs), 1):
        say(f"[{i}/{len(candidates)}] policy=budget margin={candidate['margin']:g} batching={candidate['batching']}")
        replayed = replay_with_tiers(ctx, window_text, {"policy": "budget"}, config, progress=progress)
        rows.append({"governor": candidate, **_measured(replayed)})
    rows.sort(key=lambda r: worst_protected(r["tiers"]))
    best = rows[0]
    return {"window": window_text, "recorded": {"tiers": recorded_tiers(ctx, window_text, governor)},
            "reference": _measured(reference), "candidates": rows, "best": best,
            "effect": _effect(reference["tiers"], best["tiers"]),
            "grid": {"margins": list(margins), "batching": list(BATCHING)}}


def _measured(replayed: dict) -> dict:
    return {key: replayed.get(key) for key in ("burn_rate", "bad_rate", "requests", "speed_ratio", "tiers")}


def _effect(before: list[dict], after: list[dict]) -> list[dict]:
    """Per tier: budget consumed in the reference replay and under the best candidate, and the change."""
    out = []
    for b, a in zip(before, after):
        change = None if b["budget_consumed"] is None or a["budget_consumed"] is None else \
            a["budget_consumed"] - b["budget_consumed"]
        out.append({"tier": b["tier"], "protected": b["protected"], "reference": b["budget_consumed"],
                    "best": a["budget_consumed"], "change": change})
    return out

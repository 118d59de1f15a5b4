"""``causalsre eval whatif --data DIR``: what-if predictions on generated incidents, each verified by replay.

Cases come from the suite's ground truth (:mod:`causalsre.evaluation.whatif_cases`): every true cause of every
kept incident reverted to its baseline value, and for a pushable knob one more value inside the observed range.
Each method predicts the incident window's bad-event share under the case's intervention from models fitted
once per suite; the harness replays the window with it; the replay's measured share is the answer.

Everything is in **burn points: percentage points of the bad-event share** (0-100; with a 99 % objective one
point is one unit of burn rate). Relative error is undefined at a measured 0, which reverting a cause often gives.

Replays are the cost, so each is cached under ``--out`` (``replays.json``) per (case, replay code version,
database fingerprint): a rerun predicts again but replays nothing it has replayed before.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Callable

import numpy as np

from causalsre.safeio import write_text
from causalsre.whatif.conformal import FULL_RANGE, binomial_floor, replay_speed
from causalsre.whatif.suite_predict import predict_case, predict_paired  # noqa: F401  (re-exported)
from causalsre.whatif.sufficiency import hull, kept_share, postmortem_of

METHODS = ("gcm", "bayes", "bayes_new_run", "bayes_paired", "bayes_paired_split", "bayes_paired_pooled",
           "bayes_paired_hull", "no_change", "no_change_replay")
# Predicted from the unchanged replay of the same session (paired design), so never cached with the others.
PAIRED = ("bayes_paired", "bayes_paired_split", "bayes_paired_pooled", "bayes_paired_hull", "no_change_replay")
_BURN_PAIRED = PAIRED[:4]   # the paired methods that need the burn model
HULL = "bayes_paired_hull"   # bayes_paired beside the postmortem's coalition model (whatif/sufficiency.py)
CACHE_NAME = "replays.json"
_REPLAY_CODE = ("harness", "causalsre/whatif/verify.py", "causalsre/causal/verify.py",
                "causalsre/evaluation/whatif_cases.py")


_MODEL_CODE = ("causalsre/whatif", "causalsre/bayes", "causalsre/causal", "causalsre/evaluation/whatif_cases.py",
               "models")
# What a saved burn-model fit depends on (not the prediction code: a change there keeps the fit).
_FIT_CODE = ("causalsre/bayes/model.py", "causalsre/bayes/encoding.py", "causalsre/bayes/factors.py",
             "causalsre/bayes/priors.py", "causalsre/bayes/api.py", "causalsre/bayes/store.py", "causalsre/causal",
             "models")
PREDICTIONS_NAME = "predictions.json"


def replay_code_version(paths=_REPLAY_CODE) -> str:
    """The last commit that changed anything a replay depends on (engine, replay, case construction): a cached
    replay stays valid across commits that touch only models or docs. The package version outside git.
    With ``paths=_MODEL_CODE``: the same for the predictions (models, graph, priors)."""
    import causalsre

    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%H", "--", *paths],
                             capture_output=True, text=True, timeout=20, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return out or f"causalsre-{causalsre.__version__}"


class ReplayCache:
    """Measured replays by key, in one JSON file, rewritten (atomically) after every new replay."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict = {}
        if path is not None and path.is_file():
            try:
                self.entries = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.entries = {}   # a damaged cache only costs replays

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def put(self, key: str, value: dict) -> None:
        self.entries[key] = value
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.path, json.dumps(self.entries, indent=1, sort_keys=True) + "\n", what="replay cache")


# A replay that runs this long (wall clock) is stopped and its case left unscored (`timed_out`): on the modelled
# clock some replays of windows with tiny batching knobs (chunk_size 2 with max_num_seqs 2) spin for tens of
# minutes where the recording took 17 s (modelled time stops moving: a harness bug, docs/evaluation.md); a normal
# replay here takes 15-90 s on the loaded 2-core machine.
REPLAY_TIMEOUT_S = 180.0


class ReplayTimeout(Exception):
    pass


def _within(seconds: float, fn):
    """``fn()``, interrupted by :class:`ReplayTimeout` after ``seconds`` (main thread only; elsewhere unbounded)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return fn()

    def stop(signum, frame):
        raise ReplayTimeout()

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _measure(ctx, case, change, window_text, cache: ReplayCache, key: str, seed_offset: int) -> dict:
    from causalsre.whatif.verify import replay

    hit = cache.get(key)
    if hit is not None:
        return {**hit, "cached": True}
    try:
        measured = _within(REPLAY_TIMEOUT_S, lambda: replay(ctx, window_text, change, seed_offset=seed_offset))
    except ReplayTimeout:
        value = {"points": None, "requests": 0, "speed_ratio": None, "timed_out": REPLAY_TIMEOUT_S}
        cache.put(key, value)
        return {**value, "cached": False}
    value = {"points": 100.0 * measured["bad_rate"], "requests": measured["requests"],
             "speed_ratio": measured["speed_ratio"]}
    cache.put(key, value)
    return {**value, "cached": False}


def _unchanged(cfg, run_id):
    return cfg   # the window replayed as recorded: the paired control


def _burn_fit(ctx, folder: Path, out_dir: Path | None, fingerprint: str, seed: int, say):
    """The suite's burn-model fit, saved under ``out_dir`` (per database, fit code and seed) and reused."""
    from causalsre.bayes import load_burn_model
    from causalsre.errors import UserError
    from causalsre.whatif.run import fit_for

    path = None
    if out_dir is not None:
        version = replay_code_version(_FIT_CODE)[:12]
        path = out_dir / f"fit-{folder.name}-{fingerprint[:12]}-{version}-seed{seed}.nc"
        if path.is_file():
            try:
                return load_burn_model(path, ctx.table(None), ctx.graph, slo=ctx.slo, db_fingerprint=fingerprint)
            except (UserError, OSError, ValueError, KeyError):
                pass   # a stale or damaged fit: fit again
    say(f"{folder.name}: fitting the burn model")
    fitted = fit_for(ctx, seed=seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fitted.save(path)
    return fitted


def evaluate_suites(folders: list, slo_path, *, methods=METHODS, max_cases: int | None = None, seed: int = 0,
                    out_dir: Path | None = None, noise_replays: int = 0,
                    progress: Callable[[str], None] | None = None) -> dict:
    """Every case of every suite (capped at ``max_cases`` in all), predicted and replayed; the raw results."""
    from causalsre.bayes.store import database_fingerprint
    from causalsre.causal.changes import what_changed
    from causalsre.evaluation.whatif_cases import build_cases, load_suite
    from causalsre.whatif.context import Context
    from causalsre.evaluation.whatif_cases import replay_change
    from causalsre.whatif.gcm_predict import GcmWhatIf

    say = progress or (lambda _m: None)
    suites = [(Path(f), *load_suite(f)) for f in folders]   # every folder checked before any work
    cache = ReplayCache(out_dir / CACHE_NAME if out_dir else None)
    predictions = ReplayCache(out_dir / PREDICTIONS_NAME if out_dir else None)
    version, results, noise, left, timed_out = replay_code_version(), [], [], max_cases, []
    model_version = replay_code_version(_MODEL_CODE)
    for folder, truth, manifest, database in suites:
        if left is not None and left <= 0:
            break
        ctx = Context.open(database, slo_path)
        try:
            table = ctx.table(None)
            cases = build_cases(folder.name, truth, manifest, table)
            cases = cases[:left] if left is not None else cases
            left = None if left is None else left - len(cases)
            say(f"{folder.name}: {len(cases)} cases")
            models = {"methods": set(methods)}
            fingerprint = database_fingerprint(ctx.con)
            unchanged, changes, postmortems = {}, {}, {}
            if cases and {"bayes", "bayes_new_run", *_BURN_PAIRED} & set(methods):
                # Before any replay, so that no fit runs between a case's two replays.
                models["bayes"] = _burn_fit(ctx, folder, out_dir, fingerprint, seed, say)
            for i, case in enumerate(cases):
                window, baseline = ctx.table(case.window), ctx.table(f"phase:baseline@{case.run_id}")
                key = f"{case.key}|{fingerprint}|{version}"
                if case.window not in unchanged:
                    # The paired control, replayed next to the window's first case (same session, same machine).
                    unchanged[case.window] = _measure(ctx, case, _unchanged, case.window, cache,
                                                      f"{case.window}|{fingerprint}|{version}|unchanged", 0)
                if unchanged[case.window]["points"] is None:   # the paired control timed out: nothing to score
                    timed_out.append(case.key)
                    say(f"{folder.name} [{i + 1}/{len(cases)}] {case.key}: the unchanged replay timed out, skipped")
                    continue
                pkey = f"{case.key}|{fingerprint}|seed{seed}|{model_version}"
                cached_methods = {m for m in methods if m not in PAIRED}
                predicted = predictions.get(pkey)
                if predicted is None or not cached_methods <= set(predicted["predicted"]):
                    if "gcm" not in models:   # fitted on the first case not in the cache, once per suite
                        say(f"{folder.name}: fitting gcm" if "gcm" in methods else f"{folder.name}: predicting")
                        models["gcm"] = GcmWhatIf.fit(table, ctx.view, seed=seed) if "gcm" in methods else None
                    predicted = predict_case(case, window, baseline, table, models, seed)
                    predictions.put(pkey, predicted)
                if case.window not in changes and set(_BURN_PAIRED) & set(methods):   # only they use them
                    changes[case.window] = what_changed(ctx.con, ctx.window(f"phase:baseline@{case.run_id}"),
                                                        ctx.window(case.window), baseline, window, ctx.graph)
                paired = predict_paired(case, window, baseline, table,
                                        models.get("bayes") if set(_BURN_PAIRED) & set(methods) else None,
                                        unchanged[case.window], seed, changes.get(case.window),
                                        pooled="bayes_paired_pooled" in methods,
                                        clock_mode=(manifest.get("clock") or {}).get("mode"))
                if HULL in methods and "bayes_paired" in paired:
                    if case.window not in postmortems:
                        postmortems[case.window] = postmortem_of(ctx, case, seed)
                    rho = kept_share(postmortems[case.window], case.cause) if case.kind == "revert" else None
                    paired[HULL] = hull(paired["bayes_paired"], rho,
                                        100.0 * float(baseline["is_bad"].mean()), unchanged[case.window]["points"],
                                        unchanged[case.window]["requests"])
                predicted = {"predicted": {m: p for m, p in {**predicted["predicted"], **paired}.items() if m in methods},
                             "notes": predicted["notes"]}
                row = {**case.to_json(), **predicted,
                       "observed": 100.0 * float(window["is_bad"].mean()),
                       "baseline_points": 100.0 * float(baseline["is_bad"].mean()),
                       "unchanged": unchanged[case.window]}
                change = replay_change(case, baseline, window, seed=seed)
                row["measured"] = _measure(ctx, case, change, case.window, cache, f"{key}|seed+0", 0)
                if row["measured"]["points"] is None:
                    timed_out.append(case.key)
                    say(f"{folder.name} [{i + 1}/{len(cases)}] {case.key}: the replay timed out, skipped")
                    continue
                row["floor_width"] = binomial_floor(row["measured"]["points"], row["measured"]["requests"])
                if len(noise) < noise_replays:
                    again = _measure(ctx, case, change, case.window, cache, f"{key}|seed+1", 1)
                    if again["points"] is not None:
                        noise.append({"key": case.key, "first": row["measured"]["points"], "second": again["points"]})
                results.append(row)
                say(f"{folder.name} [{i + 1}/{len(cases)}] {case.key}: unchanged {row['unchanged']['points']:.1f}, "
                    f"measured {row['measured']['points']:.1f}" + (" (cached)" if row["measured"]["cached"] else ""))
        finally:
            ctx.close()
    return {"cases": results, "replay_noise": noise, "replay_code_version": version,
            "timed_out": {"seconds": REPLAY_TIMEOUT_S, "keys": timed_out},
            "suites": [str(f) for f, *_ in suites], "seed": seed,
            "load_average": [round(x, 2) for x in os.getloadavg()], "full_range": FULL_RANGE}


SCORED = ("every method's prediction of the share the intervention's replay measures (`measured`). The paired "
          "methods (bayes_paired, no_change_replay) also see the unchanged replay of the same window in the same "
          "session (`unchanged`), so they predict the change on the replay's own footing: their error equals the "
          "error of the predicted change (prediction - unchanged) against the measured change (measured - unchanged)")


def suite_report(folders: list, slo_path, *, methods=METHODS, max_cases: int | None = None, seed: int = 0,
                 out_dir: Path | None = None, noise_replays: int = 0, calibration: dict | None = None,
                 progress: Callable[[str], None] | None = None) -> dict:
    """:func:`evaluate_suites`, then the conformalised intervals, the scores, the best method and its misses.

    ``calibration``: a previous report (on development suites) whose cases set the conformal margins; without
    it the margins are leave-one-incident-out over these cases."""
    from causalsre.bayes.pooled import pool_cases
    from causalsre.errors import UserError
    from causalsre.whatif.conformal import TARGETS, add_conformal, best_method, failures, margins_from, score_points

    raw = evaluate_suites(folders, slo_path, methods=methods, max_cases=max_cases, seed=seed, out_dir=out_dir,
                          noise_replays=noise_replays, progress=progress)
    cases = raw["cases"]
    base = [m for m in methods if m != "no_change"]
    margins = None
    if calibration is not None:
        if not isinstance(calibration, dict) or not isinstance(calibration.get("cases"), list):
            raise UserError("--calibrate-from is not a report of `eval whatif --data ... --json` (no cases)",
                            "pass the JSON this command printed on the development suites")
        margins = margins_from(calibration["cases"], base)
    # The pooled share's prior: from the development report's cases, else leave one incident out.
    share_prior = pool_cases(cases, None if calibration is None else calibration["cases"])
    added = add_conformal(cases, base, margins)
    scores = score_points(cases, [*methods, *added])
    best = best_method(scores)
    pairs = raw["replay_noise"]
    noise = {"pairs": pairs, "median_abs_difference": float(np.median([abs(p["first"] - p["second"]) for p in pairs]))
             if pairs else None}
    floor = [c for c in cases if c["floor_width"] > TARGETS["median_width"]]
    return {**raw, "units": "burn points: percentage points of the bad-event share (0-100)",
            "scored": SCORED, "replay_speed": replay_speed(cases),
            "below_binomial_floor": {"cases": len(floor), "keys": [c["key"] for c in floor],
                                     "why": "the 90 % binomial interval of the replay's window at its measured share "
                                            "is wider than the width target: no interval can be both right and "
                                            "that narrow"},
            "scores": scores, "targets": TARGETS, "best_method": best, "failures": failures(cases, best) if best else [],
            "unobserved_cases": sum(1 for c in cases if not c["value_observed"]), "replay_noise": noise,
            "conformal": {"source": "calibrate-from" if margins is not None else "leave one incident out",
                          "margins": margins},
            "share_prior": {"source": "calibrate-from" if calibration is not None else "leave one incident out",
                            "prior": share_prior}}

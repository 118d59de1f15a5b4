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

from causalsre.whatif.conformal import FULL_RANGE

METHODS = ("gcm", "bayes", "bayes_new_run", "no_change")
CACHE_NAME = "replays.json"
_REPLAY_CODE = ("harness", "causalsre/whatif/verify.py", "causalsre/causal/verify.py",
                "causalsre/evaluation/whatif_cases.py")


_MODEL_CODE = ("causalsre/whatif", "causalsre/bayes", "causalsre/causal", "causalsre/evaluation/whatif_cases.py",
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
            partial = self.path.with_suffix(".partial")
            partial.write_text(json.dumps(self.entries, indent=1, sort_keys=True) + "\n")
            os.replace(partial, self.path)


def _points(draws: np.ndarray) -> dict:
    low, high = np.quantile(draws, [0.05, 0.95])
    return {"point": 100.0 * float(np.median(draws)), "low": 100.0 * float(low), "high": 100.0 * float(high)}


def _neighbours(column, value: float) -> list[float]:
    seen = np.unique(column.dropna().to_numpy(dtype=float))
    below, above = seen[seen < value], seen[seen > value]
    return ([float(below.max())] if below.size else []) + ([float(above.min())] if above.size else [])


def predict_case(case, window, baseline, table, models: dict, seed: int) -> dict:
    """Per method {point, low, high} in burn points, and how the case was widened or limited."""
    from causalsre.evaluation.whatif_cases import model_intervention

    intervention = model_intervention(case, baseline, window, seed=seed)
    notes = []
    # A knob value the data never had: the models interpolate, with nothing to say they interpolate right. If
    # the effect is monotone between the observed neighbours, the answer lies between their predictions: the
    # interval becomes the hull of the three (honest, and counted under `unobserved`).
    others = _neighbours(table[case.cause], case.value) if case.family == "knob" and not case.value_observed else []
    if others:
        notes.append(f"{case.cause}={case.value:g} never observed: interval widened to the predictions at "
                     + " and ".join(f"{v:g}" for v in others))
    out = {}
    for method in ("gcm", "bayes", "bayes_new_run"):
        model = models.get("gcm" if method == "gcm" else "bayes")
        if model is None or method not in models["methods"]:
            continue
        out[method] = _predict_one(method, model, window, intervention, seed, notes)
        for other in others:
            hull = _predict_one(method, model, window, {**intervention, case.cause: other}, seed, [])
            out[method]["low"] = min(out[method]["low"], hull["low"])
            out[method]["high"] = max(out[method]["high"], hull["high"])
            out[method]["widened"] = True
    if "no_change" in models["methods"]:
        out["no_change"] = {"point": 100.0 * float(window["is_bad"].mean())}
    return {"predicted": out, "notes": notes}


def _predict_one(method, model, window, intervention, seed, notes) -> dict:
    if method == "gcm":
        usable = {k: v for k, v in intervention.items() if k in model.graph}
        if not usable and "gcm: the cause is not in its graph" not in notes:
            notes.append("gcm: the cause is not in its graph (constant or unconnected): predicted unchanged")
        return _points(model.bad_rate(window, usable or None, seed=seed))
    return _points(model.bad_rate(window, intervention, new_run=method == "bayes_new_run", seed=seed))


def _measure(ctx, case, baseline, window, cache: ReplayCache, key: str, seed_offset: int, seed: int) -> dict:
    from causalsre.evaluation.whatif_cases import replay_change
    from causalsre.whatif.verify import replay

    hit = cache.get(key)
    if hit is not None:
        return {**hit, "cached": True}
    measured = replay(ctx, case.window, replay_change(case, baseline, window, seed=seed), seed_offset=seed_offset)
    value = {"points": 100.0 * measured["bad_rate"], "requests": measured["requests"],
             "speed_ratio": measured["speed_ratio"]}
    cache.put(key, value)
    return {**value, "cached": False}


def evaluate_suites(folders: list, slo_path, *, methods=METHODS, max_cases: int | None = None, seed: int = 0,
                    out_dir: Path | None = None, noise_replays: int = 0,
                    progress: Callable[[str], None] | None = None) -> dict:
    """Every case of every suite (capped at ``max_cases`` in all), predicted and replayed; the raw results."""
    from causalsre.bayes.store import database_fingerprint
    from causalsre.evaluation.whatif_cases import build_cases, load_suite
    from causalsre.whatif.context import Context
    from causalsre.whatif.gcm_predict import GcmWhatIf
    from causalsre.whatif.run import fit_for

    say = progress or (lambda _m: None)
    suites = [(Path(f), *load_suite(f)) for f in folders]   # every folder checked before any work
    cache = ReplayCache(out_dir / CACHE_NAME if out_dir else None)
    predictions = ReplayCache(out_dir / PREDICTIONS_NAME if out_dir else None)
    version, results, noise, left = replay_code_version(), [], [], max_cases
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
            for i, case in enumerate(cases):
                window, baseline = ctx.table(case.window), ctx.table(f"phase:baseline@{case.run_id}")
                pkey = f"{case.key}|{fingerprint}|seed{seed}|{model_version}"
                predicted = predictions.get(pkey)
                if predicted is None or not set(methods) <= set(predicted["predicted"]):
                    if "gcm" not in models:   # fitted on the first case not in the cache, once per suite
                        say(f"{folder.name}: fitting the models")
                        models["gcm"] = GcmWhatIf.fit(table, ctx.view, seed=seed) if "gcm" in methods else None
                        models["bayes"] = (fit_for(ctx, seed=seed) if {"bayes", "bayes_new_run"} & set(methods)
                                           else None)
                    predicted = predict_case(case, window, baseline, table, models, seed)
                    predictions.put(pkey, predicted)
                predicted = {"predicted": {m: p for m, p in predicted["predicted"].items() if m in methods},
                             "notes": predicted["notes"]}
                row = {**case.to_json(), **predicted,
                       "observed": 100.0 * float(window["is_bad"].mean()),
                       "baseline_points": 100.0 * float(baseline["is_bad"].mean())}
                key = f"{case.key}|{fingerprint}|{version}"
                row["measured"] = _measure(ctx, case, baseline, window, cache, f"{key}|seed+0", 0, seed)
                if len(noise) < noise_replays:
                    again = _measure(ctx, case, baseline, window, cache, f"{key}|seed+1", 1, seed)
                    noise.append({"key": case.key, "first": row["measured"]["points"], "second": again["points"]})
                results.append(row)
                say(f"{folder.name} [{i + 1}/{len(cases)}] {case.key}: measured {row['measured']['points']:.1f}"
                    + (" (cached)" if row["measured"]["cached"] else ""))
        finally:
            ctx.close()
    return {"cases": results, "replay_noise": noise, "replay_code_version": version,
            "suites": [str(f) for f, *_ in suites], "seed": seed,
            "load_average": [round(x, 2) for x in os.getloadavg()], "full_range": FULL_RANGE}


def suite_report(folders: list, slo_path, *, methods=METHODS, max_cases: int | None = None, seed: int = 0,
                 out_dir: Path | None = None, noise_replays: int = 0, calibration: dict | None = None,
                 progress: Callable[[str], None] | None = None) -> dict:
    """:func:`evaluate_suites`, then the conformalised intervals, the scores, the best method and its misses.

    ``calibration``: a previous report (on development suites) whose cases set the conformal margins; without
    it the margins are leave-one-incident-out over these cases."""
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
    added = add_conformal(cases, base, margins)
    scores = score_points(cases, [*methods, *added])
    best = best_method(scores)
    pairs = raw["replay_noise"]
    noise = {"pairs": pairs, "median_abs_difference": float(np.median([abs(p["first"] - p["second"]) for p in pairs]))
             if pairs else None}
    return {**raw, "units": "burn points: percentage points of the bad-event share (0-100)",
            "scores": scores, "targets": TARGETS, "best_method": best, "failures": failures(cases, best) if best else [],
            "unobserved_cases": sum(1 for c in cases if not c["value_observed"]), "replay_noise": noise,
            "conformal": {"source": "calibrate-from" if margins is not None else "leave one incident out",
                          "margins": margins}}

"""What-if cases built from a generated suite's ground truth (``causalsre eval whatif --data DIR``).

Per kept fault scenario of ``eval generate`` (truth.json + manifest.json + suite.duckdb), the incident window is
intervened on in two ways, each then replayed through the harness to measure what really happens:

- ``revert``: each true cause set back to its baseline value. A knob (pushed by a ``config_push``, or the KV
  cache a ``kv_shrink`` shrank) takes the value the run's own config gave it before the push (the ground truth,
  from the manifest's recorded config); a hardware fault (``step_delay``, ``cpu_contention``, ``fewer_threads``)
  is removed; a workload cause (rate, lengths, tenant mix, burstiness) is reverted in the replayed requests as
  ``postmortem --verify`` does (:func:`causalsre.causal.verify._revert_workload`).
- ``push``: where the cause is a pushable knob, one more value inside the range the suite observed: an observed
  value strictly between the baseline and the pushed value when there is one, else another observed value,
  else the midpoint (never observed: flagged ``value_observed = False``, and the predictions widened).

The models see the same intervention: a knob or hardware factor set to one value in every request of the window;
a workload cause as the window's requests with that cause's columns drawn from the baseline's requests (rows
resampled jointly, seeded), since the replay gives them the baseline's rate, lengths or mix.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from causalsre.errors import UserError

HARDWARE_BASELINE = {"step_delay_s": 0.0, "cpu_contention": 0.0}   # the value with no fault injected
# Workload cause -> the analysis-table columns the replay changes with it (a thinned flood also lowers the rate).
WORKLOAD_COLUMNS = {
    "arrival_rate": ("arrival_rate", "offered_rate"),
    "tenant": ("tenant", "arrival_rate", "offered_rate"),
    "burstiness": ("burstiness",),
    "prompt_tokens": ("prompt_tokens", "recent_prompt_tokens"),
    "output_tokens": ("output_tokens", "recent_output_tokens"),
}


@dataclass(frozen=True)
class WhatIfCase:
    suite: str               # the suite folder's name
    scenario: str
    run_id: str
    cause: str               # the true cause (graph factor) this case intervenes on
    kind: str                # "revert" or "push"
    family: str              # "knob", "hardware" or "workload"
    value: object = None     # the knob's value (None: a fault removed, or a workload reverted)
    value_observed: bool = True   # whether the suite's data has this knob value anywhere

    @property
    def window(self) -> str:
        return f"phase:incident@{self.run_id}"

    @property
    def key(self) -> str:
        value = "" if self.value is None else f"={self.value:g}" if isinstance(self.value, float) else f"={self.value}"
        return f"{self.suite}/{self.scenario}/{self.kind}:{self.cause}{value}"

    def to_json(self) -> dict:
        return {**asdict(self), "window": self.window, "key": self.key}


def load_suite(folder: str | Path) -> tuple[dict, dict, Path]:
    """(truth, manifest, database) of a folder made by ``eval generate``; one-line errors for anything else."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--data {folder} is not a folder", "pass a suite folder made by `causalsre eval generate`")
    files = {name: folder / name for name in ("truth.json", "manifest.json", "suite.duckdb")}
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        raise UserError(f"--data {folder} is not a generated suite (no {', '.join(missing)})",
                        "pass a folder made by `causalsre eval generate` (truth.json, manifest.json, suite.duckdb)")
    try:
        truth, manifest = (json.loads(files[n].read_text()) for n in ("truth.json", "manifest.json"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"--data {folder}: truth.json or manifest.json is not valid JSON ({exc})",
                        "regenerate the suite with `causalsre eval generate`") from None
    if not isinstance(manifest, dict) or manifest.get("generator") != "causalsre eval generate" or not isinstance(truth, dict):
        raise UserError(f"--data {folder} was not made by `causalsre eval generate` (its manifest says otherwise)",
                        "generate a suite first: causalsre eval generate --seed N --count K --out DIR")
    return truth, manifest, files["suite.duckdb"]


def _baseline_setting(entry: dict, knob: str):
    from harness.settings import REPLAY_KNOBS

    section, name = REPLAY_KNOBS[knob][0].split(".", 1)
    return entry["config"][section][name]


def _pushed_value(entry: dict, knob: str):
    for fault in entry["config"].get("faults", []):
        if fault["kind"] == "config_push" and knob in (fault.get("knobs") or {}):
            return fault["knobs"][knob]
        if fault["kind"] == "kv_shrink" and knob == "num_kv_blocks" and fault.get("num_kv_blocks") is not None:
            return fault["num_kv_blocks"]
        if fault["kind"] == "fewer_threads" and knob == "num_threads" and fault.get("num_threads") is not None:
            return fault["num_threads"]
    return None


def _typed(value, column: pd.Series):
    if isinstance(value, bool) or not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return value if isinstance(value, bool) else str(value)
    return float(value)


def _other_value(knob: str, baseline, pushed, column: pd.Series):
    """(value, observed) for the ``push`` case, or None when the knob has no third value worth trying."""
    from harness.settings import INTEGER_KNOBS

    seen = [v for v in column.dropna().unique().tolist() if v not in (baseline, pushed)]
    if not isinstance(baseline, float) or not isinstance(pushed, float):
        return (sorted(map(str, seen))[0], True) if seen else None   # a category: another observed one only
    low, high = sorted((baseline, pushed))
    between = sorted(float(v) for v in seen if low < float(v) < high)
    if between:
        return between[len(between) // 2], True
    if seen:
        return sorted(float(v) for v in seen)[0], True
    middle = (baseline + pushed) / 2.0
    if knob in INTEGER_KNOBS:
        middle = float(round(middle))
    return (middle, False) if low < middle < high else None


def build_cases(suite: str, truth: dict, manifest: dict, table: pd.DataFrame) -> list[WhatIfCase]:
    """The cases of one suite, in scenario order: a revert per true cause, a push per pushable knob cause."""
    from harness.settings import REPLAY_KNOBS

    cases = []
    entries = manifest.get("scenarios", {})
    for name in sorted(truth):
        row, entry = truth[name], entries.get(name)
        causes = row.get("root_cause_factors") or []
        if not causes:
            continue   # a no-fault control: nothing to revert
        run_id = row["run_id"]
        for cause in sorted(causes):
            if cause in REPLAY_KNOBS and entry is not None:
                column = table[cause] if cause in table.columns else pd.Series(dtype=float)
                baseline = _typed(_baseline_setting(entry, cause), column)
                cases.append(WhatIfCase(suite, name, run_id, cause, "revert", "knob", baseline,
                                        bool((column == baseline).any())))
                pushed = _pushed_value(entry, cause)
                other = None if pushed is None else _other_value(cause, baseline, _typed(pushed, column), column)
                if other is not None:
                    cases.append(WhatIfCase(suite, name, run_id, cause, "push", "knob", other[0], other[1]))
            elif cause in HARDWARE_BASELINE:
                cases.append(WhatIfCase(suite, name, run_id, cause, "revert", "hardware"))
            elif cause in WORKLOAD_COLUMNS:
                cases.append(WhatIfCase(suite, name, run_id, cause, "revert", "workload"))
    return cases


def model_intervention(case: WhatIfCase, baseline: pd.DataFrame, window: pd.DataFrame, seed: int = 0) -> dict:
    """What the models are asked: {column: value} (one value for the window, or one per request)."""
    if case.family == "knob":
        return {case.cause: case.value}
    if case.family == "hardware":
        return {case.cause: HARDWARE_BASELINE[case.cause]}
    columns = [c for c in WORKLOAD_COLUMNS[case.cause] if c in window.columns and c in baseline.columns]
    if baseline.empty:
        raise UserError(f"{case.run_id} has no baseline requests to revert {case.cause} to",
                        "regenerate the suite (every kept scenario has a baseline phase)")
    rows = np.random.default_rng(seed).integers(0, len(baseline), size=len(window))
    return {c: baseline[c].to_numpy()[rows] for c in columns}


def replay_change(case: WhatIfCase, baseline: pd.DataFrame, incident: pd.DataFrame, seed: int = 0):
    """(replay config, run id) -> the config with the case's intervention, for :func:`whatif.verify.replay`."""
    from causalsre.causal.verify import HARDWARE_FAULTS, _revert_workload
    from causalsre.whatif.verify import intervened_config_from

    if case.family == "knob":
        return lambda cfg, run: intervened_config_from(cfg, {case.cause: case.value})
    if case.family == "hardware":
        kinds = HARDWARE_FAULTS[case.cause]
        return lambda cfg, run: cfg.with_overrides({"faults": [f.model_dump() for f in cfg.faults if f.kind not in kinds]})
    rng = np.random.default_rng(seed)
    return lambda cfg, run: _revert_workload(cfg, case.cause, baseline, incident, rng)

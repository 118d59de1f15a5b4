"""A server's configuration from its own exposition: info gauges -> recorded settings (``run_settings``).

vLLM exposes its KV-cache configuration as the labels of a constant-1 gauge, ``vllm:cache_config_info``
(``num_gpu_blocks``, ``block_size``, ...). Those labels are settings in force since the server process
started, so they are recorded with the start time of the process (``process_start_time_seconds`` in the
same scrape) where the scrape has it, else from the scrape's own time. A restart with another
``--num-gpu-blocks-override`` then shows in the postmortem's "what changed" as ``num_kv_blocks 256 -> 40``,
and attribution can name it. Only labels that are graph nodes (models/serving.yaml) are read: an unknown
setting that changed would make the postmortem refuse the graph.
"""

from __future__ import annotations

import json

import pandas as pd

# info gauge (vLLM's name; an OpenMetrics scrape escapes ':' to '_') -> {label: recorded setting}
INFO_SETTINGS = {
    "vllm:cache_config_info": {"num_gpu_blocks": "num_kv_blocks", "block_size": "block_size"},
}
PROCESS_START = "process_start_time_seconds"
# Labels of the same gauge that are server settings with no graph node: kept in the run's config and said at
# import when not vLLM's default, since a change of them shows only as an unexplained change of the queue
# (a real restart with --no-enable-prefix-caching: +14.7 points "waiting (unexplained)", no cause named).
UNMODELLED = {"vllm:cache_config_info": {"enable_prefix_caching": "True"}}  # label -> vLLM's default


def _canonical(metric: str) -> str:
    return "vllm:" + metric[5:] if metric.startswith("vllm_") else metric


def info_settings(samples: pd.DataFrame) -> tuple[pd.DataFrame | None, int]:
    """(``Batch.settings`` rows or None, label sets skipped because engines disagreed).

    ``samples`` has ts_s, metric, labels_json, value, source (the importer's rows). One row per setting
    and value change: repeated scrapes of one server give one row, a restart with a new value another.
    """
    metric = samples["metric"].map(_canonical)
    info = samples[metric.isin(list(INFO_SETTINGS))]
    if info.empty:
        return None, 0
    starts = samples[samples["metric"] == PROCESS_START].groupby("ts_s")["value"].min()
    found: dict[tuple[float, str], set] = {}
    for ts, name, labels in zip(info["ts_s"], metric[info.index], info["labels_json"]):
        values = json.loads(labels)
        for label, setting in INFO_SETTINGS[name].items():
            number = _number(values.get(label))
            if number is not None:
                found.setdefault((float(ts), setting), set()).add(number)
    rows, conflicts = [], 0
    for (ts, setting), values in sorted(found.items()):
        if len(values) > 1:  # data-parallel engines with different pools: no one value per request
            conflicts += 1
            continue
        start = float(starts.get(ts, ts))
        rows.append((setting, min(start, ts), values.pop()))
    if not rows:
        return None, conflicts
    frame = pd.DataFrame(rows, columns=["setting", "ts_s", "value"]).sort_values(["setting", "ts_s"])
    # A value holds until it changes: keep each setting's first row and every change of value.
    frame = frame.drop_duplicates(subset=["setting", "ts_s"], keep="first")
    changed = frame.groupby("setting")["value"].transform(lambda v: v.ne(v.shift()))
    frame = frame[changed].reset_index(drop=True)
    return frame.assign(value_text=pd.Series([None] * len(frame), dtype="string")), conflicts


def _number(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if value == value and value >= 0 else None  # "None" and NaN labels: not set


def unmodelled_settings(samples: pd.DataFrame) -> dict[str, list[str]]:
    """{label: its values in the order scraped} for the UNMODELLED labels the run's info gauges carry."""
    metric = samples["metric"].map(_canonical)
    seen: dict[str, list[str]] = {}
    for name, labels in UNMODELLED.items():
        rows = samples[metric == name].sort_values("ts_s")
        for text in rows["labels_json"]:
            values = json.loads(text)
            for label in labels:
                if label in values and str(values[label]) not in seen.setdefault(label, []):
                    seen[label].append(str(values[label]))
    return {label: values for label, values in seen.items() if values}


def unmodelled_notes(seen: dict[str, list[str]]) -> list[str]:
    """A note per unmodelled setting that is off its default or changed within the run."""
    defaults = {label: default for labels in UNMODELLED.values() for label, default in labels.items()}
    return [f"the server's vllm:cache_config_info says {label}={' -> '.join(values)} (vLLM's default: "
            f"{defaults[label]}): the causal graph has no node for it, so if the other run's server differs the "
            "postmortem can show it only as an unexplained change of the queue, naming no cause"
            for label, values in seen.items() if values != [defaults[label]]]

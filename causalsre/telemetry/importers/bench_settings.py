"""Server settings a benchmark result records: ``vllm bench serve --metadata KEY=VALUE`` -> ``run_settings``.

vLLM's ``/metrics`` does not expose the scheduler's flags (``--max-num-seqs``, ``--max-num-batched-tokens``,
...), and a bench result holds only the client's settings; ``--metadata`` is vLLM's own way to keep the
server's flags with a result ("for record keeping purposes"), written as top-level string keys. A key that
names a graph knob, in our spelling or vLLM's flag spelling (``max_num_seqs``, ``max-num-seqs``,
``--num-gpu-blocks-override``), is recorded as a setting in force for the whole run; other keys stay in the
run's config only. A value that is not a valid value of the knob is refused, naming the key.
"""

from __future__ import annotations

import pandas as pd

from causalsre.errors import UserError

# vLLM flag (without dashes, '-' as '_') -> our setting, where the names differ (harness/peers/vllm_server.py)
VLLM_FLAGS = {"num_gpu_blocks_override": "num_kv_blocks", "long_prefill_token_threshold": "chunk_size",
              "scheduling_policy": "policy"}
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _knobs() -> dict:
    from harness.settings import ENGINE_SETTINGS  # the settings table (names, kinds, graph nodes)

    return {s.name: s for s in ENGINE_SETTINGS if s.graph is not None}


def setting_name(key: str) -> str | None:
    """Our setting for a metadata key, or None when it is not a knob of the graph."""
    name = str(key).strip().lstrip("-").replace("-", "_").lower()
    name = VLLM_FLAGS.get(name, name)
    return name if name in _knobs() else None


def metadata_settings(doc: dict, where: str, ts_s: float) -> pd.DataFrame | None:
    """``Batch.settings`` rows (setting, ts_s, value, value_text) for the knobs among the result's keys."""
    knobs, rows = _knobs(), []
    for key, raw in doc.items():
        name = setting_name(key)
        if name is None or isinstance(raw, (list, dict)) or raw is None:
            continue
        setting = knobs[name]
        text = str(raw).strip()
        if setting.kind in ("choice", "device", "preset"):
            rows.append((name, ts_s, None, text))
            continue
        if setting.kind == "bool":
            if text.lower() not in _TRUE + _FALSE:
                raise UserError(f"{where}: {key}={text!r} is not true or false", f"record --metadata {key}=true")
            rows.append((name, ts_s, 1.0 if text.lower() in _TRUE else 0.0, None))
            continue
        try:
            value = float(text)
        except ValueError:
            raise UserError(f"{where}: {key}={text!r} is not a number",
                            f"record the server's flag as a number, e.g. --metadata {key}=16") from None
        low, high = getattr(setting, "low", None), getattr(setting, "high", None)
        if value != value or (low is not None and value < low) or (high is not None and value > high):
            raise UserError(f"{where}: {key}={text} is outside {name}'s range", "record the server's real flag")
        rows.append((name, ts_s, value, None))
    if not rows:
        return None
    frame = pd.DataFrame(rows, columns=["setting", "ts_s", "value", "value_text"])
    return frame.drop_duplicates(subset=["setting"], keep="last").reset_index(drop=True)


def with_concurrency(settings: pd.DataFrame | None, concurrency: int, ts_s: float) -> pd.DataFrame:
    """``settings`` plus the client's ``max_concurrency`` of a closed-loop result: the load a closed loop
    offers is its clients (the graph's workload node; causalsre/causal/load_mode.py)."""
    row = pd.DataFrame([("max_concurrency", ts_s, float(concurrency), None)],
                       columns=["setting", "ts_s", "value", "value_text"])
    return row if settings is None else pd.concat([settings, row], ignore_index=True)

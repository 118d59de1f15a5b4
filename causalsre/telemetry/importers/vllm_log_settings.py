"""A vLLM server's settings from its start-up lines, and what a restart changed.

Each start of the server (:class:`Start`) logs its flags: ``non-default args: {...}`` from 0.8 on (only the
flags given), ``args: Namespace(...)`` before (every flag, defaults too). Flags that are graph knobs
(``--max-num-seqs``, ``--max-num-batched-tokens``, ``--num-gpu-blocks-override``...) are read by the same rule
as a bench result's ``--metadata`` (:func:`.bench_settings.metadata_settings`). Where the flags are silent the
engine's own lines still say the value in force: ``Chunked prefill is enabled with max_num_batched_tokens=N``,
the KV pool (``# GPU blocks: N`` in V0; ``GPU KV cache size: N tokens`` over the block size in V1), and the
config line's ``enable_chunked_prefill=``. A second start in one log is a restart: a new configuration from
that instant (``run_settings``) and an operator event saying what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from causalsre.telemetry.importers.bench_settings import metadata_settings

# Server settings with no graph node, kept in the run's config ("server_config", as the Prometheus importer
# keeps vllm:cache_config_info's) and said when not vLLM's default: label -> vLLM's default
UNMODELLED = {"enable_prefix_caching": "True"}


@dataclass(slots=True)
class Start:
    """One start of the server process, as its log says it."""

    number: int  # 1 for the first start in the log
    ts_s: float
    where: str  # file and line, for errors and notes
    version: str | None = None
    args: dict | None = None
    config: dict = field(default_factory=dict)  # the engine's "with config:" pairs, as text
    facts: dict = field(default_factory=dict)  # numbers the engine logged: max_num_batched_tokens, gpu blocks, kv tokens
    seen: set = field(default_factory=set)  # which start-up lines it has had ("version", "args", "config")
    preemptions: float = 0.0  # V1's per-interval counts, summed: vllm:num_preemptions_total of this process

    def served_name(self) -> str | None:
        name = (self.args or {}).get("served_model_name") or self.config.get("served_model_name")
        if isinstance(name, (list, tuple)):
            name = name[0] if name else None
        return str(name) if name else None


def settings_of(start: Start) -> dict[str, tuple[float | None, str | None]]:
    """{setting: (value, value_text)} in force from this start."""
    found: dict[str, tuple[float | None, str | None]] = {}
    frame = metadata_settings(dict(start.args or {}), f"{start.where}: the start-up flags", start.ts_s)
    if frame is not None:
        for row in frame.itertuples():
            found[row.setting] = (None if pd.isna(row.value) else float(row.value), row.value_text)
    if "max_num_batched_tokens" not in found and "max_num_batched_tokens" in start.facts:
        found["max_num_batched_tokens"] = (start.facts["max_num_batched_tokens"], None)
    if "num_kv_blocks" not in found:
        blocks = start.facts.get("num_gpu_blocks")
        block = found.get("block_size", (None, None))[0] or _number(start.config.get("block_size"))
        if blocks is None and start.facts.get("kv_tokens") and block:
            blocks = start.facts["kv_tokens"] / block
        if blocks:
            found["num_kv_blocks"] = (float(round(blocks)), None)
    chunked = str(start.config.get("enable_chunked_prefill", "")).lower()
    if "enable_chunked_prefill" not in found and chunked in ("true", "false"):
        found["enable_chunked_prefill"] = (1.0 if chunked == "true" else 0.0, None)
    return found


def _number(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if value > 0 else None


def server_config(starts: list[Start]) -> dict[str, list[str]]:
    """{unmodelled setting: its values in start order} (prefix caching on or off)."""
    seen: dict[str, list[str]] = {}
    for start in starts:
        for name in UNMODELLED:
            value = (start.args or {}).get(name, start.config.get(name))
            if value is not None and str(value) not in seen.setdefault(name, []):
                seen[name].append(str(value))
    return {name: values for name, values in seen.items() if values}


def timeline(starts: list[Start]) -> tuple[pd.DataFrame | None, list[tuple[float, str]], list[str]]:
    """(``run_settings`` rows, restart events (time, what changed), notes) over the starts in log order.

    A value holds until a later start gives another; a setting a later start no longer names went back to
    vLLM's default, which the log does not say: its timeline ends there with an unknown value (NULL)
    rather than keeping the old one.
    """
    rows, events, notes = [], [], []
    held: dict[str, tuple[float | None, str | None]] = {}
    for start in starts:
        now = settings_of(start)
        if start.number > 1 or held:
            changes = [f"{name} {_show(held.get(name))} -> {_show(now.get(name))}"
                       for name in sorted(set(held) | set(now)) if held.get(name) != now.get(name)]
            events.append((start.ts_s, "; ".join(changes)[:200] or "the same settings"))
        for name in sorted(set(held) - set(now)):
            if held[name] != (None, None):
                notes.append(f"start {start.number} ({start.where}) does not name {name} (start {start.number - 1}: "
                             f"{_show(held[name])}): vLLM's default for its version and hardware applies, which the "
                             "log does not say, so it is recorded as unknown from then on")
            now[name] = (None, None)
        for name, value in sorted(now.items()):
            if held.get(name) != value:
                rows.append((name, start.ts_s, value[0], value[1]))
        held = now
    frame = pd.DataFrame(rows, columns=["setting", "ts_s", "value", "value_text"]) if rows else None
    if frame is not None:
        frame["value_text"] = frame["value_text"].astype("string")
    return frame, events, notes


def _show(value: tuple[float | None, str | None] | None) -> str:
    if value is None or value == (None, None):
        return "?"
    number, text = value
    return text if text is not None else f"{number:g}"

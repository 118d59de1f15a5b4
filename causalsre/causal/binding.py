"""Caps that never bound: a changed limit the recorded telemetry shows could not have acted.

A limit acts only where the engine reaches it. Raising ``max_num_seqs`` from 16 to 64 changes nothing while
no more than 9 sequences ever run; neither does a queue limit no queue came near, a token budget no step
filled, or a timeout no request lived long enough to meet. Such a push is often made at the same instant as
the real fault (one deploy), and then two windows alone cannot tell it from the fault: both hold one value per
window and change at the boundary, so they would share the burn equally (``players.merge_collinear``).
The per-step and per-request telemetry can tell them apart: if, in *both* windows, usage stayed below the
*lower* of the values the cap took (and nothing was refused, timed out or preempted for it), then no value
between them could have changed a single scheduling decision, and the cap gets no share of the burn.

A cap is judged on the lowest value it took in either window: a raise from a to b is idle when usage stayed
below a in the window that had b (the old limit would not have bound there either) and in the one that had a.
Only runs with per-step telemetry (``steps``) are judged; anything else is left to the attribution.
"""

from __future__ import annotations

import math

import pandas as pd

# setting -> what its usage is, for the report line
CAPS = {"max_num_seqs": "running sequences", "max_num_batched_tokens": "tokens in one step",
        "max_queue_len": "waiting requests", "num_kv_blocks": "KV blocks in use",
        "request_timeout_s": "seconds a request lived", "chunk_size": "prompt tokens"}

_USAGE_SQL = """
WITH spans AS (
    SELECT k.run_id, min(COALESCE(q.scheduled_arrival_ns, q.enqueue_ns)) AS first_ns,
           max(COALESCE(q.finish_ns, q.last_token_ns, q.first_token_ns, q.enqueue_ns)) AS last_ns
    FROM _binding_keys k JOIN requests q USING (run_id, request_id) GROUP BY k.run_id
)
SELECT count(*) AS n_steps, max(s.num_running) AS seqs, max(s.num_prefill_tokens + s.num_decode_tokens) AS tokens,
       max(s.num_waiting) AS waiting, max(s.num_kv_blocks_used) AS kv_used,
       COALESCE(sum(s.num_preemptions), 0) AS preemptions
FROM steps s JOIN spans p ON s.run_id = p.run_id AND s.start_ns BETWEEN p.first_ns AND p.last_ns
"""

_REQUESTS_SQL = """
SELECT max(prompt_tokens + COALESCE(target_output_tokens, output_tokens, 0)) AS tokens_per_request,
       max(prompt_tokens) AS prompt, max((COALESCE(finish_ns, last_token_ns) - enqueue_ns) / 1e9) AS lived_s,
       count(*) FILTER (WHERE finish_reason = 'queue_full' OR status = 'rejected') AS refused,
       count(*) FILTER (WHERE finish_reason = 'timeout' OR status = 'timeout') AS timed_out
FROM _binding_keys k JOIN requests q USING (run_id, request_id)
"""


def window_usage(con, table: pd.DataFrame) -> dict | None:
    """The peak usage of every cap over one window's requests and the engine steps of their lifetimes; None
    when the window's runs have no per-step telemetry (imports, a real vLLM)."""
    keys = table[["run_id", "request_id"]]
    if keys.empty:
        return None
    con.register("_binding_keys", keys)
    try:
        steps = con.execute(_USAGE_SQL).df().iloc[0].to_dict()
        reqs = con.execute(_REQUESTS_SQL).df().iloc[0].to_dict()
    finally:
        con.unregister("_binding_keys")
    if not steps["n_steps"]:
        return None
    return {**{k: _num(v) for k, v in steps.items()}, **{k: _num(v) for k, v in reqs.items()}}


def _num(value) -> float:
    return 0.0 if value is None or pd.isna(value) else float(value)


def _values(change: dict) -> list:
    out = []
    for side in ("baseline", "incident"):
        v = change.get(side)
        out += v if isinstance(v, list) else [v]
    return out


def _lowest(values: list) -> float | None:
    """The lowest value a cap took (no timeout at all is an infinite one); None if any is not a number."""
    numbers = []
    for v in values:
        if v is None:
            numbers.append(math.inf)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            numbers.append(float(v))
        else:
            return None
    return min(numbers) if numbers else None


def idle_caps(con, changes: list[dict], base: pd.DataFrame, inc: pd.DataFrame,
              chunked: bool | None = None, block_size: float = 16.0) -> dict[str, dict]:
    """Changed cap settings that never bound in either window: {setting: {"usage", "limit", "why"}}.

    ``chunked``: whether chunked prefill was on in both windows (None: unknown, so the token budget and the
    chunk size are not judged)."""
    candidates = [c for c in changes if c.get("kind") == "setting" and c["name"] in CAPS]
    if not candidates:
        return {}
    usage = [window_usage(con, base), window_usage(con, inc)]
    if any(u is None for u in usage):
        return {}
    peak = {k: max(u[k] for u in usage) for k in usage[0]}
    out = {}
    for change in candidates:
        name, bound = change["name"], _lowest(_values(change))
        if bound is None:
            continue
        verdict = _judge(name, bound, peak, chunked, block_size)
        if verdict is not None:
            used, extra = verdict
            limit = "no timeout" if math.isinf(bound) else f"{bound:g}"
            out[name] = {"usage": used, "limit": bound, "why": (
                f"never bound: {CAPS[name]} peaked at {used:g} in the two windows, below the lower value "
                f"({limit}){extra}, so no value between them changes a scheduling decision; given no share")}
    return out


def _judge(name: str, bound: float, peak: dict, chunked: bool | None, block_size: float):
    """(peak usage, extra words) when the cap at ``bound`` cannot have bound, else None."""
    if name == "max_num_seqs" and peak["seqs"] < bound:
        return peak["seqs"], ""
    if name == "max_queue_len" and peak["waiting"] < bound and not peak["refused"]:
        return peak["waiting"], " and no request was refused as queue_full"
    if name == "request_timeout_s" and peak["lived_s"] < bound and not peak["timed_out"]:
        return round(peak["lived_s"], 2), " and no request timed out"
    if name == "num_kv_blocks" and not peak["preemptions"]:
        # Admission needs the blocks of a whole request: usage one request short of the pool may have blocked.
        need = math.ceil(peak["tokens_per_request"] / block_size)
        if peak["kv_used"] + need < bound:
            return peak["kv_used"], f" even with the largest request's {need} blocks added, and nothing was preempted"
    if name == "max_num_batched_tokens" and chunked and peak["tokens"] < bound:
        return peak["tokens"], " (chunked prefill: a chunk is cut only by a full budget)"
    if name == "chunk_size" and chunked is False:
        return peak["prompt"], " - chunked prefill was off, so the chunk size was never used"
    if name == "chunk_size" and chunked and peak["prompt"] <= bound:
        return peak["prompt"], " (no prompt was long enough to be cut into chunks)"
    return None


def mark_idle_caps(con, changes: list[dict], base: pd.DataFrame, inc: pd.DataFrame) -> dict:
    """:func:`idle_caps` with the windows' chunked-prefill flag and block size; marks each idle
    setting's entry of "what changed" (``binds`` False and why) so every report prints the reason."""
    both = pd.concat([base, inc], ignore_index=True)
    chunked = None
    if "enable_chunked_prefill" in both.columns and both["enable_chunked_prefill"].notna().all():
        flags = set(both["enable_chunked_prefill"].astype(float))
        chunked = True if flags == {1.0} else False if flags == {0.0} else None
    block = float(both["block_size"].max()) if "block_size" in both.columns and both["block_size"].notna().any() \
        else 16.0
    idle = idle_caps(con, changes, base, inc, chunked=chunked, block_size=block)
    for change in changes:
        if change.get("kind") == "setting" and change["name"] in idle:
            change["binds"], change["binding"] = False, idle[change["name"]]["why"]
    return idle

"""vLLM's Prometheus metric names -> causal-graph nodes, written down once; and the as-of join that uses them.

When a run has no per-step telemetry (a real vLLM, an imported deployment), its engine-state mediators come
from the server's scraped metrics instead: :func:`metric_mediators` joins the samples in ``metric_samples``
as-of onto each request of a window. The join follows Prometheus's own rules: the latest sample at or
before the instant counts, unless it is older than ``max_age_s`` (Prometheus's 5-minute lookback);
counters are read as increases, a drop being a restart. The table of mappings is rendered into
docs/importers/vllm-mapping.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from causalsre.windows import Window

LOOKBACK_S = 300.0  # Prometheus's default lookback delta: an older sample is stale
# A gauge scraped less often than this says little about the engine at one request's arrival (requests live
# for about a second here): in a run whose scrapes are sparser, the per-request gauges are left unknown (NaN)
# and the graph's latent projection bridges them, as for a bench file with no scrapes. Measured on the real
# vLLM fixtures thinned to Prometheus's default 15 s: the gauges 0-15 s stale took the surge's arrival_rate
# from +90.6 points (no scrapes) to +11.7 of 92.5, and --max-num-seqs 1 from +56.8 to +16.7 of 55, the rest
# an "unexplained" change of the stale waiting gauge; one scrape in ~7 s did the same (evaluation.md).
STATE_MAX_INTERVAL_S = 5.0
GAUGES = ("queue_depth_at_arrival", "kv_utilization_at_arrival", "mean_batch_size")


@dataclass(frozen=True, slots=True)
class MetricNode:
    node: str  # the graph node (models/serving.yaml)
    metrics: tuple[str, ...]  # vLLM series, the current name first, then older names
    how: str  # how the samples become a per-request value
    joined: bool  # True: metric_mediators computes it; False: documented for people reading the metrics


VLLM_METRIC_NODES: tuple[MetricNode, ...] = (
    MetricNode("queue_depth_at_arrival", ("vllm:num_requests_waiting",),
               "latest sample at or before the arrival, summed over engines", True),
    MetricNode("kv_utilization_at_arrival", ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
               "latest sample at or before the arrival (a fraction 0-1), averaged over engines", True),
    MetricNode("mean_batch_size", ("vllm:num_requests_running",),
               "mean of the samples from arrival to finish, summed over engines; the value at arrival "
               "when no scrape fell inside the request", True),
    MetricNode("num_preemptions", ("vllm:num_preemptions_total",),
               "counter increase from arrival to finish divided by the mean running requests: the "
               "request's expected share of the preemptions during its life", True),
    MetricNode("queue_s", ("vllm:request_queue_time_seconds",), "histogram (_bucket/_sum/_count)", False),
    MetricNode("ttft_s", ("vllm:time_to_first_token_seconds",), "histogram", False),
    MetricNode("tpot_s", ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
               "histogram", False),
    MetricNode("e2e_s", ("vllm:e2e_request_latency_seconds",), "histogram", False),
    MetricNode("prompt_tokens", ("vllm:request_prompt_tokens", "vllm:prompt_tokens_total"),
               "histogram per request; counter of all prompt tokens", False),
    MetricNode("output_tokens", ("vllm:request_generation_tokens", "vllm:generation_tokens_total"),
               "histogram per request; counter of all generated tokens", False),
    MetricNode("num_kv_blocks", ("vllm:cache_config_info",), "label num_gpu_blocks of an info gauge", False),
)
MEDIATORS = tuple(m.node for m in VLLM_METRIC_NODES if m.joined)
_BY_NODE = {m.node: m for m in VLLM_METRIC_NODES}

_SQL = """
WITH w AS (
    SELECT rm.run_id, rm.request_id, rm.arrival_ns, q.finish_ns
    FROM request_metrics rm JOIN requests q USING (run_id, request_id)
    WHERE {condition}
),
runs_in AS (SELECT DISTINCT run_id FROM w),
ms AS (  -- an OpenMetrics scrape escapes vLLM's ':' to '_' (vllm_num_requests_waiting): one name for both
    SELECT run_id, ts_ns, labels_json, value,
           CASE WHEN starts_with(metric, 'vllm_') THEN 'vllm:' || substr(metric, 6) ELSE metric END AS metric
    FROM metric_samples WHERE run_id IN (SELECT run_id FROM runs_in)
),
s AS (  -- one value per run, series name and scrape: summed and averaged over the label sets (engines)
    SELECT run_id, metric, ts_ns, sum(value) AS total, avg(value) AS mean
    FROM ms GROUP BY run_id, metric, ts_ns
),
waiting AS (SELECT run_id, ts_ns, total AS v FROM s WHERE metric = $waiting),
kv AS (  -- the current name wins over the older one at the same scrape
    SELECT run_id, ts_ns, mean AS v FROM s WHERE metric IN ($kv, $kv_old)
    QUALIFY row_number() OVER (PARTITION BY run_id, ts_ns ORDER BY (metric = $kv) DESC) = 1
),
running AS (
    SELECT run_id, ts_ns, total AS v, sum(total) OVER o AS cum_v, count(*) OVER o AS cum_n
    FROM s WHERE metric = $running
    WINDOW o AS (PARTITION BY run_id ORDER BY ts_ns ROWS UNBOUNDED PRECEDING)
),
pre_series AS (  -- per-series increases; a drop is a restart, so the new value is the increase
    SELECT run_id, ts_ns,
           CASE WHEN prev IS NULL THEN 0 WHEN value < prev THEN value ELSE value - prev END AS inc
    FROM (SELECT run_id, ts_ns, value,
                 lag(value) OVER (PARTITION BY run_id, labels_json ORDER BY ts_ns) AS prev
          FROM ms WHERE metric = $preemptions)
),
pre AS (
    SELECT run_id, ts_ns, sum(sum(inc)) OVER (PARTITION BY run_id ORDER BY ts_ns ROWS UNBOUNDED PRECEDING) AS cum
    FROM pre_series GROUP BY run_id, ts_ns
),
j AS (
    SELECT w.run_id, w.request_id, w.arrival_ns,
           CASE WHEN w.arrival_ns - a.ts_ns <= $max_age THEN a.v END AS queue_depth_at_arrival,
           CASE WHEN w.arrival_ns - k.ts_ns <= $max_age THEN k.v END AS kv_utilization_at_arrival,
           CASE WHEN r1.cum_n - COALESCE(r0.cum_n, 0) > 0
                THEN (r1.cum_v - COALESCE(r0.cum_v, 0)) / (r1.cum_n - COALESCE(r0.cum_n, 0))
                WHEN w.arrival_ns - r0.ts_ns <= $max_age THEN r0.v END AS mean_batch_size,
           p1.cum - COALESCE(p0.cum, 0) AS preemptions_during,
           (w.arrival_ns - a.ts_ns) / 1e9 AS sample_age_s
    FROM w
    ASOF LEFT JOIN waiting a ON w.run_id = a.run_id AND w.arrival_ns >= a.ts_ns
    ASOF LEFT JOIN kv k ON w.run_id = k.run_id AND w.arrival_ns >= k.ts_ns
    ASOF LEFT JOIN running r0 ON w.run_id = r0.run_id AND w.arrival_ns >= r0.ts_ns
    ASOF LEFT JOIN running r1 ON w.run_id = r1.run_id AND w.finish_ns >= r1.ts_ns
    ASOF LEFT JOIN pre p0 ON w.run_id = p0.run_id AND w.arrival_ns >= p0.ts_ns
    ASOF LEFT JOIN pre p1 ON w.run_id = p1.run_id AND w.finish_ns >= p1.ts_ns
)
SELECT run_id, request_id, queue_depth_at_arrival, kv_utilization_at_arrival, mean_batch_size,
       preemptions_during / greatest(COALESCE(mean_batch_size, 1.0), 1.0) AS num_preemptions,
       sample_age_s
FROM j ORDER BY run_id, arrival_ns, request_id
"""


def metric_mediators(con: duckdb.DuckDBPyConnection, window: Window, *, max_age_s: float = LOOKBACK_S,
                     max_interval_s: float = STATE_MAX_INTERVAL_S) -> pd.DataFrame:
    """Engine-state mediators of the window's requests, from scraped vLLM metrics.

    One row per request: ``run_id, request_id``, then MEDIATORS (``queue_depth_at_arrival``,
    ``kv_utilization_at_arrival``, ``mean_batch_size``, ``num_preemptions``) and ``sample_age_s`` (how old
    the queue sample was at arrival). A value is NULL (NaN) when its series was never scraped in the run or
    its latest sample is older than ``max_age_s``; a run without metric samples gives an all-NULL frame. The
    gauges (all but ``num_preemptions``, a counter read as an increase) are NULL for a run whose median scrape
    interval exceeds ``max_interval_s`` (:func:`scrape_intervals`).
    """
    condition, params = window.where("rm")
    named = {
        "waiting": _BY_NODE["queue_depth_at_arrival"].metrics[0],
        "kv": _BY_NODE["kv_utilization_at_arrival"].metrics[0],
        "kv_old": _BY_NODE["kv_utilization_at_arrival"].metrics[1],
        "running": _BY_NODE["mean_batch_size"].metrics[0],
        "preemptions": _BY_NODE["num_preemptions"].metrics[0],
        "max_age": int(max_age_s * 1e9),
    }
    # The window's condition uses positional ? parameters; bind them by name too so both styles mix.
    for i, value in enumerate(params):
        named[f"w{i}"] = value
    for i in range(len(params)):
        condition = condition.replace("?", f"$w{i}", 1)
    frame = con.execute(_SQL.format(condition=condition), named).df()
    if frame.empty:
        return frame
    intervals = scrape_intervals(con, sorted(frame["run_id"].unique()))
    sparse = [run for run, gap in intervals.items() if gap > max_interval_s]
    if sparse:
        frame.loc[frame["run_id"].isin(sparse), list(GAUGES)] = float("nan")
    return frame


# The real scrape interval. A run's samples are every ~1 s in two cases: a server scraped every second, and a
# Prometheus `query_range` export at a 1 s step of a server scraped every 15 s, where each step repeats the
# latest real sample (the stale value). Between two real scrapes no series changes, so the instants at which
# some series changed value are the real scrapes: the interval is the lower quartile of the gaps between them
# (an idle stretch of a truly 1 s scrape changes nothing and lengthens some gaps; a quartile stays at the
# busy stretches' 1 s), and never less than the median gap between the request gauges' timestamps.
_INTERVAL_SQL = """
WITH ms AS (
    SELECT run_id, ts_ns, metric, labels_json, value FROM metric_samples WHERE run_id IN (SELECT unnest($runs))
),
stamps AS (  -- the request gauges' scrape instants (either spelling of the names)
    SELECT DISTINCT run_id, ts_ns FROM ms
    WHERE metric IN ($waiting, $running, 'vllm_num_requests_waiting', 'vllm_num_requests_running')
),
stamp_gaps AS (
    SELECT run_id, median(gap) AS gap FROM (
        SELECT run_id, ts_ns - lag(ts_ns) OVER (PARTITION BY run_id ORDER BY ts_ns) AS gap FROM stamps
    ) WHERE gap IS NOT NULL GROUP BY run_id
),
changes AS (  -- instants where a series first appears or its value differs from its previous sample
    SELECT DISTINCT run_id, ts_ns FROM (
        SELECT run_id, ts_ns, value,
               lag(value) OVER (PARTITION BY run_id, metric, labels_json ORDER BY ts_ns) AS prev
        FROM ms
    ) WHERE prev IS NULL OR value IS DISTINCT FROM prev
),
change_gaps AS (
    SELECT run_id, quantile_cont(gap, 0.25) AS gap FROM (
        SELECT run_id, ts_ns - lag(ts_ns) OVER (PARTITION BY run_id ORDER BY ts_ns) AS gap FROM changes
    ) WHERE gap IS NOT NULL GROUP BY run_id
)
SELECT s.run_id, greatest(s.gap, COALESCE(c.gap, s.gap)) / 1e9 AS interval_s
FROM stamp_gaps s LEFT JOIN change_gaps c USING (run_id)
"""


def scrape_intervals(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[str, float]:
    """Each run's real seconds between scrapes of vLLM's request gauges (runs with fewer than two: absent):
    the gaps between instants at which a series changed (a 1 s export of 15 s scrapes repeats stale values),
    at least the median gap between the gauges' timestamps (a fixture or an operator's export may leave out
    idle stretches between busy ones)."""
    rows = con.execute(_INTERVAL_SQL, {"runs": list(run_ids), "waiting": _BY_NODE["queue_depth_at_arrival"].metrics[0],
                                       "running": _BY_NODE["mean_batch_size"].metrics[0]}).fetchall()
    return {run: float(gap) for run, gap in rows}


def samples_interval(samples: pd.DataFrame) -> float | None:
    """:func:`scrape_intervals` of one run's samples not yet written (columns ts_s, metric, labels_json,
    value), as the import reports it: the same query over the frame."""
    frame = pd.DataFrame({"run_id": "import", "ts_ns": (samples["ts_s"].astype(float) * 1e9).round().astype("int64"),
                          "metric": samples["metric"], "labels_json": samples["labels_json"],
                          "value": samples["value"].astype(float)})
    con = duckdb.connect()
    try:
        con.register("metric_samples", frame)
        return scrape_intervals(con, ["import"]).get("import")
    finally:
        con.close()


def mapping_markdown() -> str:
    """The mapping as a Markdown table (docs/importers/vllm-mapping.md embeds it)."""
    lines = ["| graph node | vLLM series (current name first) | how | joined onto requests |",
             "| --- | --- | --- | --- |"]
    for m in VLLM_METRIC_NODES:
        names = ", ".join(f"`{name}`" for name in m.metrics)
        lines.append(f"| `{m.node}` | {names} | {m.how} | {'yes' if m.joined else 'no (reference)'} |")
    return "\n".join(lines) + "\n"

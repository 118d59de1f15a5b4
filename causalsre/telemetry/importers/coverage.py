"""What an import can and cannot tell the postmortem, said when the files are imported, not after minutes of work.

Operators' files differ from a full recording (bench JSON with ``--save-detailed`` and ``--metadata``, plus
``/metrics`` scraped every second). Each gap changes what the postmortem can say, and the import says so in
``notes`` (printed on stderr, listed under ``--json``, kept in the run's config):

* scrapes and no bench file: no per-request rows, so no bad-event rate per request and no attribution; the
  latency histograms still give the run's request count and quantiles (:func:`histogram_summary`,
  Prometheus's ``histogram_quantile`` over the increase between the first and last scrape);
* scrapes sparser than ``mapping.STATE_MAX_INTERVAL_S``: the per-request gauges are not joined;
* scrapes of several servers (other ``model_name`` or ``instance`` labels, not only other ``engine``s):
  the join adds their queues up as one server's (:func:`servers_note`);
* a bench file with no server settings in ``--metadata``: a server-side change shows only as an
  "unexplained" change of the engine state (docs/importers/vllm-bench.md).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from causalsre.telemetry.importers.mapping import STATE_MAX_INTERVAL_S, samples_interval

# Per-request histograms of vLLM (current names), in the order the summary lists them.
HISTOGRAMS = {"ttft_s": "vllm:time_to_first_token_seconds", "tpot_s": "vllm:request_time_per_output_token_seconds",
              "e2e_s": "vllm:e2e_request_latency_seconds", "queue_s": "vllm:request_queue_time_seconds"}
QUANTILES = (0.5, 0.9, 0.99)
GAUGES = ("vllm:num_requests_waiting", "vllm:num_requests_running")


def _canonical(metric: pd.Series) -> pd.Series:
    return metric.where(~metric.str.startswith("vllm_"), "vllm:" + metric.str[5:])


def _increase(series: pd.DataFrame) -> float:
    """Prometheus's ``increase()`` of one counter series over its samples: a drop is a restart."""
    values = series.sort_values("ts_s")["value"].to_numpy(dtype=float)
    steps = np.diff(values)
    return float(np.where(steps < 0, values[1:], steps).sum()) if len(values) > 1 else 0.0


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """``histogram_quantile``: linear within the bucket the rank falls in; None without observations."""
    buckets = sorted(buckets)
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower  # in the +Inf bucket: the largest finite bound, as Prometheus answers
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = upper, count
    return lower


def histogram_summary(samples: pd.DataFrame) -> dict:
    """The run's requests and latency quantiles from vLLM's histograms (the increase over the samples)."""
    metric = _canonical(samples["metric"])
    summary: dict = {}
    for node, name in HISTOGRAMS.items():
        rows = samples[metric == f"{name}_bucket"]
        if rows.empty:
            continue
        by_le: dict[float, float] = {}
        for labels, series in rows.groupby("labels_json"):
            le = json.loads(labels).get("le")
            try:
                bound = float(le)
            except (TypeError, ValueError):
                continue
            by_le[bound] = by_le.get(bound, 0.0) + _increase(series)  # summed over engines
        buckets = sorted(by_le.items())
        if not buckets or buckets[-1][1] <= 0:
            continue
        summary.setdefault("requests", int(round(buckets[-1][1])))
        summary[node] = {f"p{round(q * 100):d}": _quantile(buckets, q) for q in QUANTILES}
    for name in GAUGES:
        values = samples.loc[metric == name].groupby("ts_s")["value"].sum()
        if not values.empty:
            summary[f"mean_{name.split(':')[1]}"] = round(float(values.mean()), 3)
    preempted = samples[metric == "vllm:num_preemptions_total"]
    if not preempted.empty:
        summary["preemptions"] = sum(_increase(s) for _, s in preempted.groupby("labels_json"))
    return summary


def scrape_interval(samples: pd.DataFrame) -> float | None:
    """Real seconds between scrapes of the request gauges (None with fewer than two): stale repeats of a
    ``query_range`` export at a finer step than the server was scraped count as one scrape
    (:func:`mapping.samples_interval`)."""
    return samples_interval(samples)


def servers(samples: pd.DataFrame) -> list[dict]:
    """The distinct label sets of the request gauges once ``engine`` is set aside: one per vLLM server.

    vLLM labels its series ``model_name`` and (V1) ``engine``, one ``engine`` value per data-parallel engine
    of one server (vllm/v1/metrics/loggers.py, make_per_engine); a second ``model_name``, or the ``instance``
    / ``pod`` a Prometheus query_range or /federate export adds, is another server.
    """
    rows = samples.loc[_canonical(samples["metric"]).isin(GAUGES), "labels_json"].drop_duplicates()
    found = {json.dumps({k: v for k, v in json.loads(text).items() if k != "engine"}, sort_keys=True)
             for text in rows}
    return [json.loads(text) for text in sorted(found)]


def servers_note(samples: pd.DataFrame) -> str | None:
    """A note when the scrapes hold several servers, whose queues the join would add up as one's."""
    found = servers(samples)
    if len(found) < 2:
        return None
    keys = sorted({k for labels in found for k in labels if len({str(s.get(k)) for s in found}) > 1})
    differ = ", ".join(f"{k} ({len({str(s.get(k)) for s in found})} values)" for k in keys)
    return (f"the scrapes hold {len(found)} servers (label sets differing in {differ}): the join adds their "
            "waiting and running requests up as the engines of one server, which a request saw only one of; "
            "import each server's series into its own run (a query_range filtered on that label)")


def scrape_notes(samples: pd.DataFrame, *, attached: bool) -> tuple[list[str], dict]:
    """(notes, histogram summary) for a Prometheus import; ``attached``: joined onto a run with requests."""
    notes, summary = [], histogram_summary(samples)
    if (several := servers_note(samples)) is not None:
        notes.append(several)
    interval = scrape_interval(samples)
    if interval is not None and interval > STATE_MAX_INTERVAL_S:
        notes.append(f"the request gauges were scraped every ~{interval:.0f} s (more than {STATE_MAX_INTERVAL_S:g} s): "
                     "too sparse to say the engine state at one request's arrival, so the postmortem leaves "
                     "waiting/running requests and KV usage unmeasured; scrape every 1-5 s for them")
    if not attached:
        seen = ", ".join(f"{node} p50 {v['p50']:.3g} s, p99 {v['p99']:.3g} s" for node, v in summary.items()
                         if isinstance(v, dict) and v.get("p50") is not None)
        counted = f"{summary['requests']} requests in the histograms ({seen})" if "requests" in summary \
            else "no request histograms"
        notes.append(f"metric samples only, no per-request rows: {counted}; the postmortem needs each request's "
                     "times to count bad events and attribute them, so import the bench JSON (`db import "
                     "vllm-bench`) and add these scrapes to its run with --run")
    return notes, summary


# The scheduler's flags that neither the bench file nor /metrics records unless --metadata names them.
SERVER_KNOBS = ("max_num_seqs", "max_num_batched_tokens")


def bench_notes(settings: pd.DataFrame | None) -> list[str]:
    """Notes for a bench result: the server settings its ``--metadata`` did not record."""
    recorded = set() if settings is None else set(settings["setting"])
    missing = [k for k in SERVER_KNOBS if k not in recorded]
    if not missing:
        return []
    return [f"the result does not record {' or '.join(missing)} (--metadata): vLLM's /metrics does not expose "
            "them, so a change of them between runs can show only as an unexplained change of the queue; "
            f"rerun with --metadata {' '.join(f'{k}=N' for k in missing)}"]


APPROXIMATE_NOTE = ("the result has no per-request send times (benchmarks/benchmark_serving.py before "
                    "start_times): its arrivals are spread evenly over its duration, so the arrival rate is the "
                    "run's mean only and the gaps between them are not measured (the recorded --burstiness still "
                    "is; against a run with measured arrivals the postmortem's test of gaps compares an even "
                    "spacing); rerun with "
                    "`vllm bench serve --save-result --save-detailed` (0.10 or later) for exact arrivals")


def closed_loop_note(concurrency: int, tool: str = "vLLM", client_wait: bool = True) -> str:
    """The note of a closed-loop bench result (``--request-rate inf --max-concurrency N``)."""
    kept = "; the client's wait is kept as client_queue_s" if client_wait else ""
    return (f"a closed-loop benchmark (--request-rate inf, --max-concurrency {concurrency}): the client queued every "
            f"request at once, so each is taken to arrive when it was sent ({tool}'s own TTFT{kept}), and its "
            "arrival rate follows the server's speed: a change of it between two such runs is an effect of the "
            "server, not of the load, and the postmortem reads it as one (the client's concurrency is the "
            "workload's setting, max_concurrency); rerun with --request-rate R to measure the waiting a real "
            "arrival rate causes")


def summary_only_description(doc: dict) -> str:
    """What a result saved without --save-detailed holds: its aggregates, in one clause."""
    parts = [f"{doc[k]} {k}" for k in ("completed", "failed") if isinstance(doc.get(k), (int, float))]
    for key, label in (("median_ttft_ms", "median TTFT"), ("p99_ttft_ms", "p99 TTFT"),
                       ("median_tpot_ms", "median TPOT"), ("p99_tpot_ms", "p99 TPOT")):
        value = doc.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            parts.append(f"{label} {value:.0f} ms")
    return ", ".join(parts) or "aggregates only"

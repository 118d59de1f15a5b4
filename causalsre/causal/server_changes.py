"""Server settings the importers read but the causal graph has no node for (``runs.config_json`` key
``server_config``: e.g. ``enable_prefix_caching`` from ``vllm:cache_config_info``), compared between the windows'
runs. They cannot be attributed, so the postmortem cannot size them; but a server restarted with prefix caching
off is the first thing an SRE wants to see, so "what changed" lists them as prime suspects instead of leaving
the burn to an unexplained change of the queue with nothing said. Also read from the same config: whether a run
was a closed-loop benchmark, whose measured arrival rate is then an effect of the server's speed."""

from __future__ import annotations

import json

import pandas as pd


def server_config_changes(con, base: pd.DataFrame, inc: pd.DataFrame) -> list[dict]:
    """One change per unmodelled server setting whose values differ between the baseline's and the incident's
    runs (a setting recorded on one side only is left out: a missing info gauge says nothing of its value)."""
    before, after = _server_config(con, base), _server_config(con, inc)
    out = []
    for name in sorted(set(before) & set(after)):
        if before[name] != after[name]:
            out.append({"kind": "server_setting", "name": name, "baseline": _one(before[name]),
                        "incident": _one(after[name]), "in_graph": False, "significant": True,
                        "source": "the server's info gauges (vllm:cache_config_info)"})
    return out


def closed_loop(con, base: pd.DataFrame, inc: pd.DataFrame) -> bool:
    """Whether a window's run is a closed loop, whose arrival rate is the server's speed: a bench import of
    ``--request-rate inf --max-concurrency N`` (``config_json.closed_loop``, written by the vLLM and sglang
    bench importers) or a harness run of the ``closed`` workload (``runs.arrival_process``)."""
    if any(isinstance(config.get("closed_loop"), dict) for config in _configs(con, base) + _configs(con, inc)):
        return True
    runs = sorted({str(r) for t in (base, inc) if "run_id" in t.columns for r in t["run_id"].dropna().unique()})
    return bool(runs) and bool(con.execute("SELECT count(*) FROM runs WHERE list_contains(?, run_id) AND "
                                           "arrival_process = 'closed'", [runs]).fetchall()[0][0])


def unmeasured_gaps(con, base: pd.DataFrame, inc: pd.DataFrame) -> bool:
    """Whether a window's run has no measured arrival times (``config_json.arrivals`` ``approximate``: spread
    evenly over the run by an importer, as for sglang.bench_serving and benchmark_serving.py up to vLLM 0.8):
    its gaps between arrivals are the importer's, so a test of burstiness would compare rounding noise."""
    return any(config.get("arrivals") in ("approximate", "all_at_once")
               for config in _configs(con, base) + _configs(con, inc))


def _configs(con, table: pd.DataFrame) -> list[dict]:
    runs = sorted(table["run_id"].dropna().unique()) if "run_id" in table.columns else []
    out = []
    for (text,) in con.execute("SELECT config_json FROM runs WHERE run_id IN (SELECT unnest(?))",
                               [list(map(str, runs))]).fetchall():
        try:
            config = json.loads(text) if text else {}
        except ValueError:
            continue
        if isinstance(config, dict):
            out.append(config)
    return out


def _server_config(con, table: pd.DataFrame) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for config in _configs(con, table):
        server = config.get("server_config")
        if not isinstance(server, dict):
            continue
        for name, values in server.items():
            for value in values if isinstance(values, list) else [values]:
                if str(value) not in seen.setdefault(str(name), []):
                    seen[str(name)].append(str(value))
    return {name: sorted(values) for name, values in seen.items()}


def _one(values: list[str]):
    return values[0] if len(values) == 1 else values

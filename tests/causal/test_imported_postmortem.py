"""The postmortem on telemetry it did not record: imported per-request rows (no steps, no settings) and a real
vLLM's bench file joined with its /metrics scrape."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causalsre.causal import build_analysis_table, load_graph
from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly
from causalsre.windows import parse_window

VLLM = Path(__file__).resolve().parents[1] / "fixtures" / "vllm"
START = pd.Timestamp("2026-03-01T10:00:00")


def _requests_csv(path: Path, seed: int = 0) -> None:
    """Two minutes of a service whose prompts grow fivefold after the first; first-token time follows the
    prompt work of the last ten seconds (everyone's prefill shares the engine), so queueing breaks the SLO."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(5 * 120)
    t = np.sort(rng.uniform(0, 120, n))
    prompt = rng.integers(20, 200, n) * np.where(t >= 60, 5, 1)
    recent = pd.Series(prompt, index=pd.to_datetime(t, unit="s")).rolling("10s").mean().to_numpy()
    ttft = 0.05 + recent / 500 * rng.lognormal(0, 0.2, n)
    output = rng.integers(10, 60, n)
    pd.DataFrame({"arrival_time": [(START + pd.Timedelta(seconds=float(s))).isoformat() + "Z" for s in t],
                  "ttft_s": ttft, "e2e_s": ttft + 0.02 * output, "prompt_tokens": prompt,
                  "output_tokens": output, "status": "ok",
                  "tenant": rng.choice(["web", "api"], n)}).to_csv(path, index=False)


SLO = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: ttft}
spec:
  service: imported
  indicator:
    metadata: {name: ttft}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: causalsre, spec: {conditions: [{metric: ttft_s, op: lte, value: 0.5}]}}}
        total: {metricSource: {type: causalsre}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
"""


def test_postmortem_names_longer_prompts_on_imported_requests(tmp_path, capsys):
    csv, db, slo = tmp_path / "prod.csv", tmp_path / "t.duckdb", tmp_path / "slo.yaml"
    _requests_csv(csv)
    slo.write_text(SLO)
    assert main(["db", "import", "requests", str(csv), "--db", str(db)]) == 0
    capsys.readouterr()
    code = main(["postmortem", "--db", str(db), "--slo", str(slo), "--baseline",
                 "2026-03-01T10:00:00Z/2026-03-01T10:01:00Z", "--incident",
                 "2026-03-01T10:01:00Z/2026-03-01T10:02:00Z", "--json", "--pairs", "400"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    causes = [a for a in result["attributions"] if a["role"] == "cause"]
    assert causes[0]["factor"] == "prompt_tokens" and causes[0]["ci_low"] > 0
    assert not [c for c in result["changes"] if c["kind"] == "setting"]  # an import records no settings
    shifted = {c["name"]: c for c in result["changes"]}
    assert shifted["prompt_tokens"]["significant"] and not shifted["arrival_rate"]["significant"]


@pytest.mark.skipif(not (VLLM / "bench_serve_detailed.json").exists(), reason="real vLLM fixtures absent")
def test_a_real_vllm_runs_engine_state_comes_from_its_scrape(tmp_path, capsys):
    db = tmp_path / "v.duckdb"
    assert main(["db", "import", "vllm-bench", str(VLLM / "bench_serve_detailed.json"), "--db", str(db),
                 "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["runs"][0]["run_id"]
    con = connect_readonly(db)
    window = parse_window(f"run:{run_id}", con)
    bare = build_analysis_table(con, None, window=window, graph=load_graph())
    first = con.execute("SELECT min(arrival_ts) FROM request_metrics").fetchone()[0]
    con.close()
    # No steps and no scrape: the engine state is unknown, not zero.
    assert "queue_depth_at_arrival" not in bare.columns and "mean_batch_size" not in bare.columns
    assert main(["db", "import", "prometheus", str(VLLM / "metrics_under_load.txt"), "--at",
                 first.isoformat() + "Z", "--run", run_id, "--db", str(db)]) == 0
    con = connect_readonly(db)
    joined = build_analysis_table(con, None, window=parse_window(f"run:{run_id}", con), graph=load_graph())
    con.close()
    assert joined["queue_depth_at_arrival"].notna().all() and (joined["mean_batch_size"] > 0).all()

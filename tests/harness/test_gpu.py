"""device = "cuda" runs end to end (only where a GPU is present)."""

from __future__ import annotations

import duckdb
import pytest

torch = pytest.importorskip("torch")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_run_writes_telemetry(tmp_path, tiny):
    from harness.runner import run

    cfg = tiny(duration_s=2.0, engine={"device": "cuda", "dtype": "bfloat16"},
               faults=[{"kind": "config_push", "at_s": 1.0, "knobs": {"max_num_seqs": 2}}])
    db = tmp_path / "gpu.duckdb"
    run(cfg, db)
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT device, dtype, status FROM runs").fetchone() == ("cuda", "bfloat16", "complete")
    assert con.execute("SELECT count(*) FROM request_metrics WHERE is_ok").fetchone()[0] > 0
    assert con.execute("SELECT hardware_json->>'gpu' FROM runs").fetchone()[0]
    con.close()

"""`causalsre db import table FILE --map COLUMN=FIELD --unit FIELD=ms`: a gateway-style CSV/Parquet with its
own column names and milliseconds becomes the same rows as `db import requests` of the converted file.

Known answer: the file is generated (seeded) from values in seconds, written in ms under other names; the
import must give back the seconds, and the unmapped columns as request attributes.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from causalsre.cli.main import main

MAPS = ["--map", "ts_ms=arrival_time", "--map", "first_token_ms=ttft_s", "--map", "latency_ms=e2e_s",
        "--map", "in_tok=prompt_tokens", "--map", "out_tok=output_tokens", "--map", "result=status",
        "--map", "customer=tenant", "--unit", "ttft_s=ms", "--unit", "e2e_s=ms", "--unit", "arrival_time=ms"]


def _gateway(n: int = 40, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the truth in seconds, the same requests as a gateway writes them: other names, milliseconds)."""
    rng = np.random.default_rng(seed)
    arrival = 1_767_225_600.0 + np.cumsum(rng.exponential(0.5, n))
    ttft = rng.uniform(0.05, 0.8, n).round(3)
    e2e = (ttft + rng.uniform(0.2, 2.0, n)).round(3)
    truth = pd.DataFrame({"arrival": arrival.round(3), "ttft_s": ttft, "e2e_s": e2e,
                          "prompt_tokens": rng.integers(8, 200, n), "output_tokens": rng.integers(2, 64, n),
                          "status": np.where(rng.random(n) < 0.9, "ok", "error"),
                          "tenant": rng.choice(["acme", "globex"], n), "gpu_type": rng.choice(["a100", "t4"], n)})
    gateway = pd.DataFrame({"ts_ms": (truth["arrival"] * 1000).round().astype("int64"),
                            "first_token_ms": (truth["ttft_s"] * 1000).round(1),
                            "latency_ms": (truth["e2e_s"] * 1000).round(1),
                            "in_tok": truth["prompt_tokens"], "out_tok": truth["output_tokens"],
                            "result": truth["status"], "customer": truth["tenant"], "gpu_type": truth["gpu_type"]})
    return truth, gateway


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_mapped_columns_and_units_give_back_the_seconds_and_keep_extra_columns(tmp_path, capsys, suffix):
    truth, gateway = _gateway()
    path = tmp_path / f"gateway{suffix}"
    gateway.to_csv(path, index=False) if suffix == ".csv" else gateway.to_parquet(path, index=False)
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "table", str(path), "--db", str(db), *MAPS, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runs"][0]["requests"] == len(truth)
    con = duckdb.connect(str(db), read_only=True)
    try:
        got = con.execute("SELECT ttft_s, e2e_s, prompt_tokens, output_tokens, status, tenant, attributes, "
                          "epoch(arrival_ts) FROM request_metrics ORDER BY arrival_ns").fetchall()
        config = json.loads(con.execute("SELECT config_json FROM runs").fetchone()[0])
    finally:
        con.close()
    assert [round(r[0], 6) for r in got] == pytest.approx(list(truth["ttft_s"]), abs=1e-6)
    ok = truth["status"] == "ok"
    assert [round(r[1], 6) for r in got] == pytest.approx(list(truth["e2e_s"]), abs=1e-6)
    assert [r[2] for r in got] == list(truth["prompt_tokens"]) and [r[3] for r in got] == list(truth["output_tokens"])
    assert [r[4] == "ok" for r in got] == list(ok) and [r[5] for r in got] == list(truth["tenant"])
    assert [json.loads(r[6]) for r in got] == [{"gpu_type": g} for g in truth["gpu_type"]]
    assert got[-1][7] - got[0][7] == pytest.approx(truth["arrival"].iloc[-1] - truth["arrival"].iloc[0], abs=2e-3)
    assert config["factors"] == ["gpu_type"] and config["units"]["e2e_s"] == "ms"


@pytest.mark.parametrize("args, message", [
    (["--map", "nope=ttft_s"], "has no column 'nope'"),
    (["--map", "latency_ms=latency"], "unknown field 'latency'"),
    (["--map", "latency_ms=e2e_s", "--map", "first_token_ms=e2e_s"], "maps two columns to e2e_s"),
    (["--map", "latency_ms"], "bad --map"),
    (["--unit", "ttft_s=minutes"], "unknown unit 'minutes'"),
    (["--unit", "prompt_tokens=ms"], "'prompt_tokens' has no unit"),
    (["--map", "ts_ms=arrival_time"], "has no column for ttft_s"),
])
def test_bad_maps_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    _, gateway = _gateway(n=5)
    path = tmp_path / "gateway.csv"
    gateway.to_csv(path, index=False)
    db = tmp_path / "never.duckdb"
    code = main(["db", "import", "table", str(path), "--db", str(db), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not db.exists()


def test_milliseconds_left_as_seconds_are_refused_not_imported(tmp_path, capsys):
    """Without --unit the ms latencies read as seconds: a week-long "latency" is a unit mistake, refused."""
    _, gateway = _gateway(n=5)
    gateway["latency_ms"] = gateway["latency_ms"] * 1e3  # microseconds written as if ms: far above a week in s
    path = tmp_path / "gateway.csv"
    gateway.to_csv(path, index=False)
    db = tmp_path / "t.duckdb"
    maps = MAPS[:MAPS.index("--unit")] + ["--unit", "ttft_s=ms", "--unit", "arrival_time=ms"]  # no e2e_s=ms
    code = main(["db", "import", "table", str(path), "--db", str(db), *maps])
    err = capsys.readouterr().err
    assert code == 2 and "e2e_s" in err and not db.exists(), err

"""The modelled clock: the step-cost fit recovers known coefficients; a run on it gives the same per-request
timings however busy the machine is; time follows the model exactly; bad clock settings are one line."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly
from harness.clock_fit import fit_samples
from harness.config import parse_run_config
from harness.engine.clock import StepCostModel, StepFeatures
from harness.engine.errors import UserError
from harness.runner import run

MODEL = {"base_s": 0.004, "prefill_token_s": 0.0003, "decode_seq_s": 0.0008, "kv_token_s": 0.000004}


def test_the_fit_recovers_known_step_costs_despite_noise_and_slow_outliers():
    rng = np.random.default_rng(3)
    truth = StepCostModel(**MODEL)
    samples = []
    for _ in range(400):
        decode = int(rng.integers(0, 17))
        prefill = int(rng.choice([0, 0, 0, int(rng.integers(1, 257))]))
        context = decode * int(rng.integers(20, 400)) + prefill * int(rng.integers(1, 3))
        features = StepFeatures(prefill, decode, max(context, 1))
        seconds = truth.cost_ns(features) / 1e9 * (1 + rng.normal(0, 0.03))
        samples.append((features, seconds))
    for i in range(0, 400, 40):   # a noisy neighbour: every 40th step three times slower
        samples[i] = (samples[i][0], samples[i][1] * 3)
    model, quality = fit_samples(samples)
    for name, value in MODEL.items():
        assert getattr(model, name) == pytest.approx(value, rel=0.1), name
    assert quality["outliers_dropped"] >= 8 and quality["r2"] > 0.95 and quality["steps"] == 400


def _config(clock=MODEL, **extra):
    data = {"name": "clock", "seed": 4, "duration_s": 1.5, "drain_timeout_s": 5.0,
            "engine": {"model": "tiny", "max_num_seqs": 4, "max_num_batched_tokens": 64, "chunk_size": 32,
                       "num_kv_blocks": 64, "request_timeout_s": None},
            "workload": {"arrival": "poisson", "rate": 12.0, "prompt": {"dist": "uniform", "low": 8, "high": 60},
                         "output": {"dist": "uniform", "low": 2, "high": 12}}}
    if clock is not None:
        data["clock"] = {"mode": "modelled", **clock}
    data.update(extra)
    return parse_run_config(data, source="test")


def _timings(db):
    con = connect_readonly(db)
    try:
        requests = con.execute("SELECT request_id, scheduled_arrival_ns, enqueue_ns, first_scheduled_ns, "
                               "first_token_ns, last_token_ns, finish_ns, output_tokens, status, num_preemptions "
                               "FROM requests ORDER BY request_id").fetchall()
        steps = con.execute("SELECT step_id, start_ns, end_ns, num_prefill_tokens, num_decode_seqs "
                            "FROM steps ORDER BY step_id").fetchall()
    finally:
        con.close()
    return requests, steps


def _busy(stop: threading.Event) -> None:
    x = 0
    while not stop.is_set():
        x += 1   # holds the interpreter and a core: the engine's steps run slower in wall time


def test_the_same_run_under_cpu_load_gives_identical_timings(tmp_path):
    cfg = _config()
    run(cfg, tmp_path / "quiet.duckdb")
    stop = threading.Event()
    hogs = [threading.Thread(target=_busy, args=(stop,), daemon=True) for _ in range(2)]
    for hog in hogs:
        hog.start()
    try:
        run(cfg, tmp_path / "busy.duckdb")
    finally:
        stop.set()
        for hog in hogs:
            hog.join()
    quiet, busy = _timings(tmp_path / "quiet.duckdb"), _timings(tmp_path / "busy.duckdb")
    assert len(quiet[0]) > 10 and all(r[8] == "ok" for r in quiet[0])
    assert quiet == busy


def test_time_follows_the_step_cost_model_and_idle_time_jumps_to_the_next_arrival(tmp_path):
    model = StepCostModel(**MODEL)
    # two lone requests far apart: each is prefilled in one step the moment it arrives, then decoded alone
    cfg = _config(duration_s=30.0, workload={"requests": [[1.0, 30, 3, None, 0, 0], [25.0, 20, 2, None, 0, 1]],
                                             "arrival": "trace"})
    run(cfg, tmp_path / "two.duckdb")
    requests, steps = _timings(tmp_path / "two.duckdb")
    for (rid, arrival, enqueue, scheduled, first, last, finish, out, status, _), prompt in zip(requests, (30, 20)):
        assert arrival == enqueue == scheduled           # admitted at its arrival: the clock jumped there
        assert first - arrival == model.cost_ns(StepFeatures(prompt, 0, prompt))
        decode = [model.cost_ns(StepFeatures(0, 1, prompt + k + 1)) for k in range(out - 1)]
        assert last - first == sum(decode) and finish == last and status == "ok"
    assert all(end > start for _, start, end, _, _ in steps)


def test_a_step_delay_fault_adds_its_seconds_to_the_modelled_step(tmp_path):
    delay = {"faults": [{"kind": "step_delay", "at_s": 0.0, "delay_s": 0.05}],
             "workload": {"requests": [[0.5, 16, 2, None, 0, 0]], "arrival": "trace"}}
    run(_config(duration_s=3.0, **delay), tmp_path / "slow.duckdb")
    requests, _ = _timings(tmp_path / "slow.duckdb")
    model = StepCostModel(**MODEL)
    assert requests[0][4] - requests[0][1] == model.cost_ns(StepFeatures(16, 0, 16)) + 50_000_000


@pytest.mark.parametrize("clock, needle", [
    ({"base_s": 0.01}, "needs base_s, prefill_token_s"),
    ({**MODEL, "kv_token_s": -1.0}, "kv_token_s"),
])
def test_bad_clock_sections_are_user_errors(clock, needle):
    with pytest.raises(UserError, match=needle):
        _config(clock=clock)
    with pytest.raises(UserError, match="for clock.mode = 'modelled'"):
        parse_run_config({"clock": {"mode": "wall", "base_s": 0.1}}, source="test")


@pytest.mark.parametrize("flags, needle", [
    (["--target", "vllm", "--clock", "modelled"], "--clock modelled is for the embedded engine"),
    (["--clock", "wall", "--clock-model", "x.json"], "--clock-model is the modelled clock's"),
    (["--clock-model", "no-such-file.json"], "does not exist"),
])
def test_bad_clock_flags_are_one_line_and_exit_2(flags, needle, tmp_path, capsys):
    code = main(["eval", "govern", "--out", str(tmp_path / "o"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_clock_model_file_without_coefficients_is_one_line(tmp_path, capsys):
    bad = tmp_path / "govern.json"
    bad.write_text('{"setup": {"clock": {"mode": "wall"}}}')
    code = main(["eval", "govern", "--clock-model", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "not step-cost coefficients" in err

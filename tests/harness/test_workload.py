"""Workload generators: each process and distribution has the statistics it promises (within tolerance)."""

from __future__ import annotations

import numpy as np
import pytest

from causalsre.errors import UserError
from harness.arrivals import base_rate_function, renewal_arrivals
from harness.config import LengthSpec, TraceSpec, parse_run_config
from harness.lengths import mean_length, sample_lengths
from harness.traces import trace_requests
from harness.workload import build_schedule


def _arrivals(kind: str, rate: float, duration: float, seed: int = 0, **kw) -> np.ndarray:
    shape = kw.pop("shape", 1.0)
    fn = base_rate_function(kind, rate, duration, **kw)
    return renewal_arrivals(fn, np.random.default_rng(seed), shape=shape, deterministic=kind == "constant")


def _cv(times: np.ndarray) -> float:
    gaps = np.diff(times)
    return float(gaps.std() / gaps.mean())


@pytest.mark.parametrize("rate", [2.0, 20.0])
def test_poisson_has_the_mean_rate_and_unit_cv(rate):
    times = _arrivals("poisson", rate, 400.0)
    assert len(times) / 400.0 == pytest.approx(rate, rel=0.06)
    assert _cv(times) == pytest.approx(1.0, abs=0.07)


@pytest.mark.parametrize("shape", [0.25, 4.0])
def test_gamma_burstiness_sets_the_cv(shape):
    times = _arrivals("gamma", 10.0, 600.0, shape=shape)
    assert len(times) / 600.0 == pytest.approx(10.0, rel=0.1)
    assert _cv(times) == pytest.approx(1 / np.sqrt(shape), rel=0.12)


def test_constant_arrivals_are_evenly_spaced():
    times = _arrivals("constant", 5.0, 10.0)
    assert len(times) == 49  # arrivals at 0.2, 0.4, ... 9.8 (the one at 10.0 is outside)
    assert np.allclose(np.diff(times), 0.2, atol=2e-3)


def test_onoff_sends_nothing_while_off_and_keeps_the_mean_rate():
    times = _arrivals("onoff", 6.0, 400.0, on_s=1.0, off_s=3.0)
    phase = times % 4.0
    assert np.all(phase < 1.0 + 1e-3)
    assert len(times) / 400.0 == pytest.approx(6.0, rel=0.08)


def test_ramp_rate_rises_linearly():
    times = _arrivals("ramp", 2.0, 300.0, end_rate=20.0)
    first = np.sum(times < 30) / 30
    last = np.sum(times >= 270) / 30
    assert first == pytest.approx(2.0 + 18 * 0.05, rel=0.25)
    assert last == pytest.approx(20.0 - 18 * 0.05, rel=0.12)


def test_length_distributions_have_their_moments():
    rng = np.random.default_rng(1)
    fixed = sample_lengths(LengthSpec(dist="fixed", value=37), rng, 100)
    assert set(fixed) == {37}
    uni = sample_lengths(LengthSpec(dist="uniform", low=10, high=20), rng, 20000)
    assert uni.min() == 10 and uni.max() == 20 and uni.mean() == pytest.approx(15, rel=0.02)
    spec = LengthSpec(dist="lognormal", mean=200, sigma=0.6, max=100000)
    logn = sample_lengths(spec, rng, 50000)
    assert logn.mean() == pytest.approx(200, rel=0.03)
    assert np.log(logn).std() == pytest.approx(0.6, rel=0.05)
    emp = sample_lengths(LengthSpec(dist="empirical", values=[8, 64], weights=[3, 1]), rng, 20000)
    assert np.mean(emp == 8) == pytest.approx(0.75, abs=0.02)
    assert mean_length(LengthSpec(dist="empirical", values=[8, 64], weights=[3, 1])) == pytest.approx(22.0)
    clipped = sample_lengths(LengthSpec(dist="lognormal", mean=500, min=16, max=64), rng, 1000)
    assert clipped.min() >= 16 and clipped.max() <= 64


def test_schedule_is_seeded_and_records_tenants_surges_and_floods():
    cfg = parse_run_config({
        "duration_s": 200, "workload": {
            "arrival": "poisson", "rate": 5.0, "prompt": {"dist": "fixed", "value": 50},
            "tenants": [{"name": "a", "weight": 3}, {"name": "b", "weight": 1, "priority": 2}]},
        "faults": [{"kind": "rate_surge", "at_s": 100, "end_s": 150, "factor": 3.0},
                   {"kind": "longer_prompts", "at_s": 100, "factor": 2.0},
                   {"kind": "tenant_flood", "at_s": 150, "tenant": "flood", "rate": 4.0}]})
    sched = build_schedule(cfg, seed=3, rate=5.0)
    assert sched == build_schedule(cfg, seed=3, rate=5.0)
    assert sched != build_schedule(cfg, seed=4, rate=5.0)
    t = np.array([r.arrival_ns for r in sched]) / 1e9
    base = np.array([r.tenant != "flood" for r in sched])
    assert np.sum(base & (t < 100)) / 100 == pytest.approx(5.0, rel=0.12)
    assert np.sum(base & (t >= 100) & (t < 150)) / 50 == pytest.approx(15.0, rel=0.12)
    assert np.sum(~base) / 50 == pytest.approx(4.0, rel=0.25)
    assert all(r.prompt_tokens == (100 if r.arrival_ns >= 100e9 else 50) for r in sched if r.tenant != "flood")
    share_a = np.mean([r.tenant == "a" for r in sched if r.tenant != "flood"])
    assert share_a == pytest.approx(0.75, abs=0.04)
    assert {r.priority for r in sched if r.tenant == "b"} == {2}
    assert [r.request_id for r in sched] == list(range(len(sched)))
    assert np.all(np.diff(t) >= 0)


def test_burstier_fault_raises_cv_only_inside_its_window():
    cfg = parse_run_config({"duration_s": 600, "workload": {"arrival": "poisson", "rate": 10.0},
                            "faults": [{"kind": "burstier", "at_s": 300, "burstiness": 0.2}]})
    t = np.array([r.arrival_ns for r in build_schedule(cfg, seed=0, rate=10.0)]) / 1e9
    assert _cv(t[t < 300]) == pytest.approx(1.0, abs=0.1)
    assert _cv(t[t >= 300]) > 1.8


def _write_trace(path, rows):
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))


def test_trace_replay_scales_time_and_truncates_lengths(tmp_path):
    trace = tmp_path / "t.csv"
    _write_trace(trace, [(f"2023-11-16 18:00:{s:02d}.0000000", 4000, 10 * s + 1) for s in range(0, 40, 2)])
    reqs = trace_requests(TraceSpec(path=str(trace), time_scale=0.5, length_scale=0.1, max_prompt_tokens=256,
                                    max_output_tokens=16), duration_s=10.0)
    assert np.allclose(reqs.arrival_s, np.arange(0, 10, 1.0))
    assert set(reqs.prompt_tokens) == {256}
    assert list(reqs.output_tokens) == [min(round((10 * s + 1) * 0.1), 16) or 1 for s in range(0, 20, 2)]
    within = trace_requests(TraceSpec(path=str(trace), rate=0.5), duration_s=10.0)  # 5 of the 20 requests
    assert len(within.arrival_s) == 5 and within.arrival_s[-1] < 10.0
    by_rate = trace_requests(TraceSpec(path=str(trace), rate=4.0), duration_s=100.0)  # trace too short
    assert np.diff(by_rate.arrival_s).mean() == pytest.approx(0.25 * 20 / 19, rel=0.01)


def test_real_azure_trace_replays_at_the_asked_rate(shared_dir):
    path = shared_dir / "traces" / "AzureLLMInferenceTrace_conv.csv"
    if not path.exists():
        pytest.skip("conv trace absent")
    reqs = trace_requests(TraceSpec(path=str(path), rate=5.0, max_prompt_tokens=512), duration_s=600.0)
    assert len(reqs.arrival_s) == 3000 and reqs.prompt_tokens.max() <= 512  # 5/s over the 600 s replayed


@pytest.mark.parametrize("content", ["TIMESTAMP,ContextTokens\n2023-11-16 18:00:00,5\n",
                                     "TIMESTAMP,ContextTokens,GeneratedTokens\nnot-a-date,5,5\n",
                                     "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,x,5\n"])
def test_a_trace_that_does_not_parse_is_a_user_error(tmp_path, content):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    with pytest.raises(UserError, match="trace file"):
        trace_requests(TraceSpec(path=str(bad)), duration_s=10)

"""The recorder's load calibration (harness/peers/calibrate.py) against a server of known capacity: the stub
serves 2 requests at once, 4 tokens of 50 ms each, so it completes 10 requests/s; below that the first token
comes in ~0.05-0.2 s, above it the queue grows by the excess every second. The ramp must stop at the first
rate past the capacity and report the rung below it."""

from __future__ import annotations

from harness.peers.calibrate import calibrate_rate
from harness.peers.realfiles import CASES, case_load
from tests.peers.stub_server import StubServer


def test_the_ramp_finds_the_rate_where_ttft_passes_the_objective():
    with StubServer(model="stub", slots=2, token_s=0.05) as stub:
        result = calibrate_rate(stub.url, 8, 4, model="stub", rates=(2.0, 5.0, 20.0, 50.0), step_s=2.0,
                                objective_s=0.5)
    rates = [rung[0] for rung in result["ramp"]]
    assert result["capacity"] == 5.0, result
    assert rates == [2.0, 5.0, 20.0], result  # stopped at the first rung past the capacity
    assert result["ramp"][-1][1] > 0.5 and result["ramp"][1][1] <= 0.5


def test_cases_are_sized_from_the_measured_capacity():
    slow, fast = {"chat": 1.0, "kv": 0.5}, {"chat": 4.0, "kv": 2.0}
    by_name = {c.name: c for c in CASES}
    for capacity in (slow, fast):
        base, surge = case_load(by_name["baseline"], capacity), case_load(by_name["rate_surge"], capacity)
        assert base["rate"] < capacity["chat"] < surge["rate"]  # a clean baseline, an overloading surge
        assert case_load(by_name["kv_shrink"], capacity)["rate"] == case_load(by_name["kv_baseline"], capacity)["rate"]
    assert case_load(by_name["baseline"], fast)["rate"] == 4 * case_load(by_name["baseline"], slow)["rate"]

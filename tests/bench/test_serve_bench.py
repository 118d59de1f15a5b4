"""bench serve: the same requests through the engine in-process and through `causalsre serve` over HTTP."""

from __future__ import annotations

import json

import numpy as np
import pytest

from causalsre.bench.serve import _report, arrivals
from causalsre.cli.main import main

pytest.importorskip("httpx")


@pytest.mark.slow  # starts `causalsre serve` in a process of its own (torch import, engine build): ~30 s
def test_bench_serve_serves_the_same_requests_on_both_sides(capsys):
    code = main(["bench", "serve", "--preset", "tiny", "--num-requests", "6", "--rate", "6", "--rounds", "1",
                 "--prompt-lengths", "8:32", "--output-lengths", "4:12", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["benchmark"] == "serve-overhead" and report["workload"]["num_requests"] == 6
    for side in ("in_process", "http"):
        x = report[side]
        assert x["requests"] == 6 and x["ok"] == 6
        assert 0 < x["p50_ttft_s"] <= x["p99_ttft_s"] and 0 < x["p50_e2e_s"] <= x["p99_e2e_s"]
        assert x["p50_ttft_s"] <= x["p50_e2e_s"]
    # every request produced exactly its output length on both sides, and each was paired with itself
    assert report["same_requests"] is True and report["paired"]["requests"] == 6
    assert 0 <= report["identical_outputs"] <= 6
    r = report["ratio_http_over_in_process"]
    assert r["p50_e2e"] == pytest.approx(report["http"]["p50_e2e_s"] / report["in_process"]["p50_e2e_s"], rel=1e-3)
    assert set(report["targets"]) == {"added_le_5pct"} and report["engine"]["model"] == "tiny"
    assert len(report["rounds_ratio_p50_e2e"]) == 1 and report["rounds_ratio_p50_e2e"][0] == pytest.approx(
        report["http"]["rounds_p50_e2e_s"][0] / report["in_process"]["rounds_p50_e2e_s"][0], rel=1e-3)


def test_arrivals_are_seeded_poisson():
    a, b = arrivals(2000, 4.0, seed=3), arrivals(2000, 4.0, seed=3)
    assert np.array_equal(a, b) and a[0] == 0.0 and np.all(np.diff(a) > 0)
    assert 1 / np.mean(np.diff(a)) == pytest.approx(4.0, rel=0.1)
    assert not np.array_equal(a, arrivals(2000, 4.0, seed=4))


def _requests(lengths):
    from harness.engine.benchmark.workload import BenchRequest

    return [BenchRequest([1, 2, 3], n) for n in lengths]


def _row(e2e, tokens, status="ok"):
    return {"status": status, "ttft_s": e2e / 4, "e2e_s": e2e, "output_tokens": tokens, "text": "x" * tokens}


def test_report_flags_a_side_that_served_different_lengths_and_computes_the_added_latency():
    ctx = {"preset": "tiny", "num_requests": 2, "seed": 0, "rate": 1.0, "threads": 1, "prompt_range": (1, 3),
           "output_range": (4, 5), "rounds": 1, "requests": _requests([4, 5]), "engine": {}, "threads_used": 1}
    ours = [[_row(1.0, 4), _row(2.0, 5)]]
    report = _report(ctx, ours, [[_row(1.1, 4), _row(2.2, 5)]], [0.0, 0.0, 0.0])
    assert report["same_requests"] is True and report["identical_outputs"] == 2
    assert report["paired"]["median_added_e2e_fraction"] == pytest.approx(0.1)
    assert report["targets"]["added_le_5pct"] is False
    short = _report(ctx, ours, [[_row(1.0, 4), _row(2.0, 3, status="finish None")]], [0.0, 0.0, 0.0])
    assert short["same_requests"] is False and short["http"]["ok"] == 1 and short["paired"]["requests"] == 1


class _ClockedEngine:
    """An engine stand-in on a counting clock: each step emits one token per request, stamps it (as the engine
    stamps tokens, at the end of its model run) and then spends 5 more ticks before returning (observers,
    step record), as the real engine does after its stamp."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        self.clock = 0
        self.sequences: dict = {}
        self.observer = SimpleNamespace(on_request_done=None)

    def now_ns(self) -> int:
        self.clock += 1
        return self.clock

    def add_request(self, request_id, prompt, max_tokens, *, arrival_ns) -> bool:
        from types import SimpleNamespace

        self.sequences[request_id] = SimpleNamespace(
            token_ids=list(prompt), num_prompt_tokens=len(prompt), num_output_tokens=0, max_tokens=max_tokens,
            first_token_ns=None, last_token_ns=None, request_id=request_id)
        return True

    def has_unfinished(self) -> bool:
        return any(s.num_output_tokens < s.max_tokens for s in self.sequences.values())

    def step(self) -> None:
        from types import SimpleNamespace

        stamp = self.now_ns()
        for seq in self.sequences.values():
            if seq.num_output_tokens < seq.max_tokens:
                seq.token_ids.append(17 + seq.num_output_tokens)
                seq.num_output_tokens += 1
                seq.first_token_ns = seq.first_token_ns or stamp
                seq.last_token_ns = stamp
                if seq.num_output_tokens == seq.max_tokens:
                    self.observer.on_request_done(SimpleNamespace(request_id=seq.request_id, status="ok"))
        self.clock += 5


def test_in_process_times_are_taken_when_the_caller_holds_the_text_as_the_http_clients_are():
    from causalsre.bench.serve import _drive
    from harness.engine.benchmark.workload import BenchRequest
    from harness.serve.text import token_word

    engine = _ClockedEngine()
    rows = _drive(engine, [BenchRequest([1, 2], 3), BenchRequest([1, 3, 4], 2)], np.zeros(2), id_base=0)
    for row, seq in zip(rows, engine.sequences.values()):
        assert row["status"] == "ok" and row["output_tokens"] == seq.num_output_tokens
        assert row["text"] == "".join(token_word(17 + k) for k in range(seq.num_output_tokens))
        # the round starts at tick 1 (its first clock read), so every request is due at 1; timed by the engine's
        # stamp the latencies would be stamp - 1; the caller holds the text only after the 5 ticks that follow
        ttft_ns, e2e_ns = round(row["ttft_s"] * 1e9), round(row["e2e_s"] * 1e9)
        assert ttft_ns > seq.first_token_ns - 1 + 5 and e2e_ns > seq.last_token_ns - 1 + 5

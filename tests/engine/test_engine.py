"""The engine end to end on the tiny model: greedy tokens and logits equal a plain cache-free forward under
continuous batching, chunked prefill, preemption and a mid-run KV resize; the observer contract holds."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from causalsre.errors import UserError  # noqa: E402
from harness.engine import Engine, EngineConfig, NullObserver  # noqa: E402


class Recorder:
    def __init__(self) -> None:
        self.events, self.tokens, self.steps, self.done = [], [], [], []

    def on_event(self, request_id, event_type, ts_ns, step_id):
        self.events.append((request_id, event_type, ts_ns, step_id))

    def on_token(self, request_id, token_index, step_id, ts_ns):
        self.tokens.append((request_id, token_index, step_id, ts_ns))

    def on_step(self, step):
        self.steps.append(step)

    def on_request_done(self, record):
        self.done.append(record)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def workload(n: int, seed: int, vocab: int = 4096) -> list[tuple[list[int], int]]:
    rng = random.Random(seed)
    return [([rng.randrange(vocab) for _ in range(rng.randint(1, 90))], rng.randint(1, 24)) for _ in range(n)]


def run_all(engine: Engine, requests, on_step=None) -> dict[int, list[int]]:
    seqs = {}
    for i, (prompt, target) in enumerate(requests):
        assert engine.add_request(i, prompt, target)
        seqs[i] = engine.sequences[i]
    steps = 0
    while engine.has_unfinished():
        engine.step()
        steps += 1
        if on_step:
            on_step(engine, steps)
        assert steps < 5000
    return {i: s.token_ids for i, s in seqs.items()}


def capture_logits(engine: Engine) -> list[tuple[int, torch.Tensor]]:
    """(request_id, logits row) of every sampled row, in step order, by wrapping the runner's forward pass (a
    test's probe; the engine keeps no hook for it)."""
    captured: list[tuple[int, torch.Tensor]] = []
    forward = engine.runner._forward

    def recording(chunks):
        logits, rows = forward(chunks)
        host = logits.float().cpu()
        captured.extend((chunk.seq.request_id, host[row]) for chunk, row in zip(chunks, rows) if row >= 0)
        return logits, rows

    engine.runner._forward = recording
    return captured


def check_against_dense(engine: Engine, requests, outputs, logits_by_request) -> None:
    model = engine.runner.model
    with torch.inference_mode():
        for i, (prompt, target) in enumerate(requests):
            full = outputs[i]
            assert len(full) == len(prompt) + target
            dense = model.forward_dense(torch.tensor([full]))[0]             # [T, V]
            rows = dense[len(prompt) - 1: len(full) - 1]                     # logits that chose each output
            assert rows.argmax(-1).tolist() == full[len(prompt):], f"request {i}: greedy tokens differ"
            captured = torch.stack(logits_by_request[i])
            torch.testing.assert_close(captured, rows, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("knobs", [
    dict(enable_chunked_prefill=True, chunk_size=24, batching_mode="decode_first", policy="fcfs"),
    dict(enable_chunked_prefill=False, batching_mode="prefill_first", policy="sjf"),
    dict(enable_chunked_prefill=True, chunk_size=7, batching_mode="prefill_first", policy="priority"),
], ids=["chunked-decode_first", "unchunked-prefill_first", "chunked-prefill_first"])
def test_engine_matches_cache_free_forward(knobs):
    recorder = Recorder()
    config = EngineConfig(model="tiny", max_num_seqs=6, max_num_batched_tokens=96, num_kv_blocks=14,
                          block_size=8, request_timeout_s=None, **knobs)
    engine = Engine(config, observer=recorder)
    captured = capture_logits(engine)
    requests = workload(14, seed=3)
    outputs = run_all(engine, requests)
    logits: dict[int, list] = {}
    for request_id, row in captured:
        logits.setdefault(request_id, []).append(row)
    check_against_dense(engine, requests, outputs, logits)
    assert sum(s.num_preemptions for s in recorder.steps) > 0, "the pool is sized to force preemption"
    assert max(s.num_decode_seqs + s.num_prefill_seqs for s in recorder.steps) > 1, "batches were formed"
    assert engine.scheduler.block_manager.num_used == 0


def test_kv_resize_and_policy_change_mid_run_keep_outputs_exact():
    config = EngineConfig(model="tiny", max_num_seqs=8, max_num_batched_tokens=64, chunk_size=16,
                          num_kv_blocks=40, block_size=8, request_timeout_s=None)
    recorder = Recorder()
    engine = Engine(config, observer=recorder)
    captured = capture_logits(engine)
    requests = workload(10, seed=5)

    def push(engine: Engine, step: int) -> None:
        if step == 6:
            engine.update_config(num_kv_blocks=15, policy="sjf", max_num_seqs=3)
        if step == 30:
            engine.update_config(num_kv_blocks=60, max_num_batched_tokens=128)

    outputs = run_all(engine, requests, push)
    logits: dict[int, list] = {}
    for request_id, row in captured:
        logits.setdefault(request_id, []).append(row)
    check_against_dense(engine, requests, outputs, logits)
    assert any(e[1] == "preempted" for e in recorder.events), "shrinking the pool preempts"
    assert engine.scheduler.block_manager.num_blocks == 60


def test_observer_contract():
    recorder = Recorder()
    config = EngineConfig(model="tiny", max_num_seqs=4, max_num_batched_tokens=32, chunk_size=16,
                          num_kv_blocks=64, block_size=8, request_timeout_s=None)
    engine = Engine(config, observer=recorder)
    requests = workload(6, seed=1)
    run_all(engine, requests)
    assert sorted(r.request_id for r in recorder.done) == list(range(6))
    for record in recorder.done:
        tokens = [t for t in recorder.tokens if t[0] == record.request_id]
        assert [t[1] for t in tokens] == list(range(record.target_output_tokens))
        assert record.status == "ok" and record.output_tokens == record.target_output_tokens
        assert record.enqueue_ns <= record.first_scheduled_ns <= record.first_token_ns <= record.last_token_ns
        assert record.last_token_ns == tokens[-1][3] and record.first_token_ns == tokens[0][3]
        kinds = [e[1] for e in recorder.events if e[0] == record.request_id]
        assert kinds == ["queued", "scheduled", "first_token", "finished"]
    stamps = [t[3] for t in recorder.tokens]
    assert stamps == sorted(stamps)
    for step in recorder.steps:
        assert step.num_prefill_tokens + step.num_decode_tokens <= 32
        assert step.num_prefill_seqs + step.num_decode_seqs <= 4
        assert step.start_ns <= step.end_ns and step.schedule_ns + step.forward_ns <= step.end_ns - step.start_ns
    assert [s.step_id for s in recorder.steps] == list(range(len(recorder.steps)))


def test_full_queue_rejects_with_a_record():
    recorder = Recorder()
    engine = Engine(EngineConfig(model="tiny", max_queue_len=2), observer=recorder)
    accepted = [engine.add_request(i, [1, 2, 3], 4) for i in range(3)]
    assert accepted == [True, True, False]
    assert (2, "rejected") in [(e[0], e[1]) for e in recorder.events]
    (record,) = recorder.done
    assert (record.request_id, record.status, record.finish_reason) == (2, "rejected", "queue_full")


def test_timeout_and_abort_free_blocks():
    recorder = Recorder()
    engine = Engine(EngineConfig(model="tiny", num_kv_blocks=128, block_size=8, request_timeout_s=None),
                    observer=recorder)
    assert engine.add_request(0, list(range(40)), 500)
    assert engine.add_request(1, list(range(30)), 500)
    engine.step()
    assert engine.scheduler.block_manager.num_used > 0
    assert engine.abort(1)
    engine.update_config(request_timeout_s=0.3)         # a config push; request 0 cannot finish in time
    engine.set_step_delay(0.02)
    while engine.has_unfinished():
        engine.step()
    by_id = {r.request_id: r for r in recorder.done}
    assert (by_id[0].status, by_id[0].finish_reason) == ("timeout", "timeout")
    assert (by_id[1].status, by_id[1].finish_reason) == ("aborted", "abort")
    assert 0 < by_id[0].output_tokens < 500
    assert len(recorder.done) == 2
    assert engine.scheduler.block_manager.num_used == 0


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError):
        EngineConfig(max_num_seqs=0)
    with pytest.raises(UserError):
        EngineConfig(policy="random")
    with pytest.raises(UserError):
        EngineConfig(model="huge")
    engine = Engine(EngineConfig(model="tiny"), observer=NullObserver())
    with pytest.raises(UserError):
        engine.update_config(model="small")
    with pytest.raises(UserError):
        engine.update_config(chunk_size=-1)
    with pytest.raises(UserError):
        engine.add_request(0, [5000], 3)   # outside the tiny vocabulary
    # a request that can never fit the KV pool is refused instead of blocking the queue
    small = Engine(EngineConfig(model="tiny", num_kv_blocks=2, block_size=8), observer=Recorder())
    assert small.add_request(0, list(range(20)), 4) is False
    assert small.observer.done[0].finish_reason == "exceeds_kv_capacity"


@pytest.mark.gpu
def test_cuda_engine_matches_dense():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    config = EngineConfig(model="tiny", device="cuda", num_kv_blocks=14, block_size=8, max_num_seqs=6,
                          max_num_batched_tokens=96, chunk_size=24, request_timeout_s=None)
    engine = Engine(config)
    requests = workload(10, seed=2)
    outputs = run_all(engine, requests)
    model = engine.runner.model
    with torch.inference_mode():
        for i, (prompt, target) in enumerate(requests):
            full = outputs[i]
            dense = model.forward_dense(torch.tensor([full], device="cuda"))[0]
            assert dense[len(prompt) - 1: len(full) - 1].argmax(-1).tolist() == full[len(prompt):]

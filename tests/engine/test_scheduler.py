"""The scheduler on its own (no torch): a fake forward advances sequences exactly as the engine does."""

from __future__ import annotations

import random

import pytest

from harness.engine.config import EngineConfig
from harness.engine.scheduler import Scheduler
from harness.engine.sequence import Sequence, SeqStatus


def make_seq(request_id: int, prompt_len: int, output_len: int, **kw) -> Sequence:
    return Sequence(request_id, [1] * prompt_len, output_len, **kw)


def fake_forward(scheduler: Scheduler, out) -> list[Sequence]:
    """What the engine does after a forward: count computed tokens, append a token, retire finished."""
    finished = []
    for chunk in out.chunks:
        seq = chunk.seq
        seq.num_computed_tokens += chunk.num_tokens
        if chunk.samples:
            seq.token_ids.append(7)
            if seq.is_done:
                scheduler.remove(seq)
                finished.append(seq)
    return finished


def check_blocks(scheduler: Scheduler) -> None:
    bm = scheduler.block_manager
    held = [b for s in scheduler.running for b in s.block_table]
    assert len(held) == len(set(held)), "a block is held twice"
    assert not set(held) & set(bm.free_blocks), "a held block is also free"
    assert len(held) == bm.num_used
    assert bm.num_used + bm.num_free == bm.num_blocks
    for seq in scheduler.running:
        assert len(seq.block_table) * bm.block_size >= seq.num_computed_tokens
    for seq in scheduler.waiting:
        assert seq.block_table == []


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("mode", ["decode_first", "prefill_first"])
@pytest.mark.parametrize("chunked", [True, False])
@pytest.mark.parametrize("policy", ["fcfs", "priority", "sjf"])
def test_limits_hold_and_everything_finishes(mode, chunked, policy, seed):
    rng = random.Random(seed)
    config = EngineConfig(max_num_seqs=5, max_num_batched_tokens=48, enable_chunked_prefill=chunked,
                          chunk_size=16, num_kv_blocks=14, block_size=8, policy=policy, batching_mode=mode,
                          max_queue_len=100, request_timeout_s=None)
    scheduler = Scheduler(config)
    seqs = [make_seq(i, rng.randint(1, 40), rng.randint(1, 30), priority=rng.randint(0, 2), arrival_ns=i)
            for i in range(40)]
    for seq in seqs:
        assert scheduler.add(seq)
    finished, preemptions = [], 0
    for step in range(5000):
        if not scheduler.has_unfinished():
            break
        out = scheduler.schedule(now_ns=step)
        assert out.num_tokens <= config.max_num_batched_tokens
        assert len(out.chunks) <= config.max_num_seqs
        assert len(scheduler.running) <= config.max_num_seqs
        assert len({id(c.seq) for c in out.chunks}) == len(out.chunks)
        preemptions += len(out.preempted)
        if not chunked:
            prefill = [c for c in out.chunks if c.is_prefill]
            # only a recompute longer than the whole budget may be split (it could never run otherwise)
            assert all(c.start + c.num_tokens == len(c.seq) or len(c.seq) > config.max_num_batched_tokens
                       for c in prefill), "an unchunked prefill was split"
            if mode == "prefill_first" and prefill:
                assert all(c.is_prefill for c in out.chunks), "prefill_first mixed decodes into a prefill step"
        check_blocks(scheduler)
        finished += fake_forward(scheduler, out)
    assert sorted(s.request_id for s in finished) == list(range(40))
    assert all(s.num_output_tokens == s.target_output_tokens for s in finished)
    assert scheduler.block_manager.num_used == 0
    assert preemptions > 0, "the pool was sized to force preemptions"


def test_decode_first_serves_decodes_before_prefills():
    config = EngineConfig(max_num_seqs=8, max_num_batched_tokens=10, chunk_size=64, num_kv_blocks=64,
                          block_size=8, batching_mode="decode_first")
    scheduler = Scheduler(config)
    for i in range(4):
        scheduler.add(make_seq(i, 2, 50))
    fake_forward(scheduler, scheduler.schedule(0))          # four 2-token prefills, each yields a token
    scheduler.add(make_seq(9, 100, 5))
    out = scheduler.schedule(1)
    decodes = [c for c in out.chunks if not c.is_prefill]
    prefills = [c for c in out.chunks if c.is_prefill]
    assert len(decodes) == 4 and prefills[0].num_tokens == 6   # the long prompt gets only what is left

    config = EngineConfig(max_num_seqs=8, max_num_batched_tokens=10, chunk_size=64, num_kv_blocks=64,
                          block_size=8, batching_mode="prefill_first")
    scheduler = Scheduler(config)
    for i in range(4):
        scheduler.add(make_seq(i, 2, 50))
    fake_forward(scheduler, scheduler.schedule(0))
    scheduler.add(make_seq(9, 100, 5))
    out = scheduler.schedule(1)
    assert [c.seq.request_id for c in out.chunks] == [9] and out.chunks[0].num_tokens == 10   # decodes stall


@pytest.mark.parametrize("policy,expected", [("fcfs", [0, 1, 2, 3]), ("priority", [2, 0, 3, 1]),
                                             ("sjf", [3, 1, 0, 2])])
def test_policy_sets_admission_order(policy, expected):
    config = EngineConfig(max_num_seqs=1, max_num_batched_tokens=256, num_kv_blocks=64, block_size=8,
                          policy=policy)
    scheduler = Scheduler(config)
    # (prompt, output, priority): lower priority value is served first
    for i, (p, o, prio) in enumerate([(20, 20, 1), (10, 5, 3), (30, 30, 0), (4, 4, 2)]):
        scheduler.add(make_seq(i, p, o, priority=prio, arrival_ns=i))
    order = []
    for step in range(1000):
        out = scheduler.schedule(step)
        order += [s.request_id for s in out.newly_scheduled]
        fake_forward(scheduler, out)
        if not scheduler.has_unfinished():
            break
    assert order == expected


def test_full_queue_rejects():
    scheduler = Scheduler(EngineConfig(max_queue_len=3))
    assert [scheduler.add(make_seq(i, 4, 4)) for i in range(5)] == [True, True, True, False, False]
    assert len(scheduler.waiting) == 3


def test_timeout_aborts_and_frees_blocks():
    config = EngineConfig(max_num_seqs=4, num_kv_blocks=32, block_size=8, request_timeout_s=1.0)
    scheduler = Scheduler(config)
    running = make_seq(0, 30, 100, arrival_ns=0)
    late = make_seq(1, 30, 100, arrival_ns=int(0.6e9))
    scheduler.add(running)
    scheduler.add(late)
    fake_forward(scheduler, scheduler.schedule(0))
    assert running.block_table and scheduler.block_manager.num_used > 0
    out = scheduler.schedule(int(1.5e9))            # past request 0's deadline, not request 1's
    assert out.timed_out == [running]
    assert running.status is SeqStatus.FINISHED and running.block_table == []
    assert scheduler.block_manager.num_used == len(late.block_table)
    assert [c.seq for c in out.chunks] == [late]


def test_preemption_frees_blocks_and_resumes_with_its_tokens():
    config = EngineConfig(max_num_seqs=2, max_num_batched_tokens=64, chunk_size=64, num_kv_blocks=4,
                          block_size=8)
    scheduler = Scheduler(config)
    first, second = make_seq(0, 8, 16, arrival_ns=0), make_seq(1, 8, 16, arrival_ns=1)
    scheduler.add(first)
    scheduler.add(second)
    victims, step = [], 0
    while scheduler.has_unfinished() and step < 500:
        out = scheduler.schedule(step)
        for seq in out.preempted:
            assert seq.block_table == [] and seq.num_computed_tokens == 0 and seq.status is SeqStatus.WAITING
            victims.append((seq.request_id, seq.num_output_tokens))
        check_blocks(scheduler)
        fake_forward(scheduler, out)
        step += 1
    assert victims and victims[0][0] == 1           # FCFS preempts the later arrival
    assert victims[0][1] > 0                        # it had generated tokens, kept across the recompute
    assert first.num_output_tokens == 16 and second.num_output_tokens == 16
    assert second.num_preemptions >= 1


def test_resize_kv_preempts_holders_of_removed_blocks():
    config = EngineConfig(max_num_seqs=4, num_kv_blocks=16, block_size=8)
    scheduler = Scheduler(config)
    for i in range(4):
        scheduler.add(make_seq(i, 20, 4, arrival_ns=i))
    fake_forward(scheduler, scheduler.schedule(0))
    out = scheduler.resize_kv(6)
    assert out.preempted
    assert all(b < 6 for s in scheduler.running for b in s.block_table)
    check_blocks(scheduler)
    assert scheduler.block_manager.num_blocks == 6

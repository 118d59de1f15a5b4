"""Decode-step CUDA graphs: bucketing, padding into the scratch block, and (on a GPU) exactness.

The padding logic runs on the CPU too: a replay that re-runs the eager forward on the graph's fixed-shape
buffers checks that padded rows never disturb real sequences, whatever the bucket."""

from __future__ import annotations

import pytest
import torch

from harness.engine import cuda_graphs
from harness.engine.config import EngineConfig
from harness.engine.engine import Engine


def test_buckets():
    assert [cuda_graphs.batch_bucket(n) for n in (1, 2, 3, 5, 8, 9, 16, 17, 512)] == [1, 2, 4, 8, 8, 16, 16, 32, 512]
    assert cuda_graphs.batch_bucket(513) is None
    assert [cuda_graphs.width_bucket(b, 256) for b in (1, 4, 5, 9, 200, 256)] == [4, 4, 8, 16, 256, 256]
    assert cuda_graphs.width_bucket(257, 256) is None
    assert cuda_graphs.width_bucket(3, 2) is None and cuda_graphs.width_bucket(2, 2) == 2


def test_graphs_only_on_cuda_and_only_when_asked(monkeypatch):
    monkeypatch.delenv(cuda_graphs.ENABLE_ENV, raising=False)
    assert not cuda_graphs.enabled(torch.device("cuda"))          # opt-in until verified on a GPU
    monkeypatch.setenv(cuda_graphs.ENABLE_ENV, "1")
    assert cuda_graphs.enabled(torch.device("cuda"))
    assert not cuda_graphs.enabled(torch.device("cpu"))


class _EagerReplay:
    def __init__(self, fn):
        self.replay = fn


class EagerGraphs(cuda_graphs.DecodeGraphs):
    """The graph bookkeeping with an eager forward in place of the capture."""

    def _capture(self, key, kv_caches, scratch_slot):
        static = self._static_batch(key, scratch_slot)
        out = self.model.forward_paged(static, kv_caches).clone()
        self.captures += 1

        def replay():
            # the runner's current pool, as a real graph would hold it until reset() after a resize
            out.copy_(self.model.forward_paged(static, self.runner.kv_caches))
        return _EagerReplay(replay), static, out


def _run(graphs: bool, seed: int = 5):
    engine = Engine(EngineConfig(model="tiny", max_num_seqs=11, max_num_batched_tokens=40, chunk_size=16,
                                 num_kv_blocks=36, block_size=8, seed=seed, request_timeout_s=None))
    runner = engine.runner
    runner.use_cpu_kernels = False        # graphs replay the gather path, as on a GPU
    if graphs:
        runner.scratch_blocks = 1
        runner.kv_caches = runner._allocate(engine.config.num_kv_blocks)
        runner.graphs = EagerGraphs(runner.model, runner.block_size, 2048 // 8, runner.device)
        runner.graphs.runner = runner
    gen = torch.Generator().manual_seed(seed)
    for rid in range(14):
        prompt = torch.randint(0, 4096, (int(torch.randint(1, 70, (1,), generator=gen)),), generator=gen).tolist()
        engine.add_request(rid, prompt, int(torch.randint(1, 30, (1,), generator=gen)))
    seqs = dict(engine.sequences)
    steps = 0
    while engine.has_unfinished():
        engine.step()
        steps += 1
        if steps == 25:
            engine.update_config(num_kv_blocks=48)     # a resize drops every graph
    return {rid: s.token_ids[s.num_prompt_tokens:] for rid, s in seqs.items()}, runner


def test_padded_replays_give_the_eager_tokens():
    eager, _ = _run(graphs=False)
    graphed, runner = _run(graphs=True)
    assert graphed == eager
    assert runner.graphs.replays > 20 and runner.graphs.captures >= 3
    assert runner.num_blocks == 48 and runner.kv_caches.shape[1] == (48 + 1) * 8   # the scratch block


@pytest.mark.gpu
def test_cuda_graph_engine_matches_eager():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")

    def tokens(monkey_env: str):
        import os

        os.environ[cuda_graphs.ENABLE_ENV] = monkey_env
        try:
            engine = Engine(EngineConfig(model="tiny", device="cuda", max_num_seqs=12, max_num_batched_tokens=64,
                                         chunk_size=16, num_kv_blocks=40, block_size=8, request_timeout_s=None))
        finally:
            os.environ.pop(cuda_graphs.ENABLE_ENV, None)
        gen = torch.Generator().manual_seed(3)
        for rid in range(16):
            prompt = torch.randint(0, 4096, (int(torch.randint(1, 60, (1,), generator=gen)),),
                                   generator=gen).tolist()
            engine.add_request(rid, prompt, int(torch.randint(1, 40, (1,), generator=gen)))
        seqs = dict(engine.sequences)
        while engine.has_unfinished():
            engine.step()
        return {rid: s.token_ids[s.num_prompt_tokens:] for rid, s in seqs.items()}, engine.runner.graphs

    graphed, graphs = tokens("1")
    eager, none = tokens("0")
    assert none is None and graphs is not None and graphs.replays > 10
    assert graphed == eager

"""Huge-page tensors (harness/engine/hugepages.py): what the weights' panels and the KV pool live on."""

from __future__ import annotations

import sys

import pytest
import torch

from harness.engine import hugepages
from harness.engine.config import EngineConfig
from harness.engine.engine import Engine

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise(MADV_HUGEPAGE) is Linux's")


@linux
def test_zeros_start_on_a_huge_page_and_are_zero_and_writable():
    t = hugepages.zeros((3, 1 << 20), dtype=torch.float32)       # 12 MiB
    assert t.shape == (3, 1 << 20) and t.dtype == torch.float32 and t.is_contiguous()
    assert t.data_ptr() % hugepages.HUGE_PAGE == 0
    assert int(t.count_nonzero()) == 0
    t[1].fill_(2.0)
    view = t[1, :4]
    del t                                                           # a view keeps the mapping alive
    assert view.tolist() == [2.0] * 4


def test_small_or_disabled_is_plain_torch_zeros(monkeypatch):
    small = hugepages.zeros((16, 16))
    assert small.shape == (16, 16) and int(small.count_nonzero()) == 0
    monkeypatch.setenv(hugepages.DISABLE_ENV, "0")
    assert not hugepages.enabled()
    big = hugepages.zeros((1 << 22,))
    assert big.shape == (1 << 22,) and int(big.count_nonzero()) == 0


def _run(monkeypatch, huge: str) -> tuple[dict, bool, torch.Tensor]:
    monkeypatch.setenv(hugepages.DISABLE_ENV, huge)
    engine = Engine(EngineConfig(model="tiny", max_num_seqs=5, max_num_batched_tokens=40, chunk_size=16,
                                 num_kv_blocks=600, block_size=8, seed=5))
    gen = torch.Generator().manual_seed(23)
    for rid in range(6):
        prompt = torch.randint(0, 4096, (int(torch.randint(3, 50, (1,), generator=gen)),), generator=gen).tolist()
        engine.add_request(rid, prompt, int(torch.randint(2, 16, (1,), generator=gen)))
    seqs = dict(engine.sequences)
    while engine.has_unfinished():
        engine.step()
    on_huge = engine.runner.kv_caches.data_ptr() % hugepages.HUGE_PAGE == 0
    return {rid: s.token_ids[s.num_prompt_tokens:] for rid, s in seqs.items()}, on_huge, engine.runner.kv_caches.clone()


@linux
def test_engine_gives_the_same_tokens_and_cache_on_huge_pages(monkeypatch):
    plain_tokens, plain_on_huge, plain_cache = _run(monkeypatch, "0")
    huge_tokens, huge_on_huge, huge_cache = _run(monkeypatch, "1")
    assert huge_on_huge and not plain_on_huge          # the switch did what it says (pool > 2 MiB)
    assert huge_tokens == plain_tokens
    assert torch.equal(huge_cache, plain_cache)          # the same K/V bit for bit
    assert all(len(t) >= 2 for t in huge_tokens.values())

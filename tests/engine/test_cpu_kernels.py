"""The C paged decode-attention kernel against plain attention, and the engine with and without it."""

from __future__ import annotations

import shutil

import pytest
import torch

from harness.engine import cpu_kernels
from harness.engine.config import EngineConfig
from harness.engine.engine import Engine

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None,
                                reason="needs a C compiler")


def test_kernel_builds_where_a_compiler_exists():
    # a broken build would silently fall back to torch; here it must not
    assert cpu_kernels.available(torch.device("cpu"), torch.float32, 8), cpu_kernels.status()
    assert cpu_kernels.status() == "C paged decode attention"
    assert not cpu_kernels.available(torch.device("cpu"), torch.bfloat16, 8)
    assert not cpu_kernels.available(torch.device("meta"), torch.float32, 8)


def reference(q, kv_cache, tables, lengths, block_size):
    """Dense softmax(q k^T / sqrt(d)) v over each sequence's gathered context, grouped-query heads."""
    s, h, d = q.shape
    hkv = kv_cache.shape[2]
    out = torch.empty_like(q)
    for i in range(s):
        n = int(lengths[i])
        slots = torch.tensor([int(tables[i, p // block_size]) * block_size + p % block_size for p in range(n)])
        k = kv_cache[slots, 0].repeat_interleave(h // hkv, dim=1)    # [n, H, D]
        v = kv_cache[slots, 1].repeat_interleave(h // hkv, dim=1)
        scores = torch.einsum("hd,nhd->hn", q[i].double(), k.double()) / d ** 0.5
        out[i] = torch.einsum("hn,nhd->hd", scores.softmax(-1), v.double()).float()
    return out


@pytest.mark.parametrize("heads,kv_heads,head_dim,block_size", [
    (8, 4, 64, 16), (16, 8, 128, 16), (6, 2, 32, 8), (4, 4, 40, 4), (12, 1, 64, 32)])
def test_kernel_matches_dense_attention(heads, kv_heads, head_dim, block_size):
    gen = torch.Generator().manual_seed(heads * 1000 + head_dim)
    num_blocks, seqs = 64, 5
    kv_cache = torch.randn(num_blocks * block_size, 2, kv_heads, head_dim, generator=gen)
    q = torch.randn(seqs, heads, head_dim, generator=gen) * 2
    # lengths: a single key, exactly one block, a block plus one, and longer contexts
    lengths = torch.tensor([1, block_size, block_size + 1, 5 * block_size - 3, 7 * block_size], dtype=torch.int32)
    width = 7
    tables = torch.stack([torch.randperm(num_blocks, generator=gen)[:width] for _ in range(seqs)]).to(torch.int32)
    got = cpu_kernels.paged_decode_attention(q, kv_cache, tables, lengths, block_size)
    torch.testing.assert_close(got, reference(q, kv_cache, tables, lengths, block_size), atol=2e-5, rtol=1e-4)


def _greedy_tokens(use_kernel: bool) -> dict[int, list[int]]:
    engine = Engine(EngineConfig(model="tiny", max_num_seqs=6, max_num_batched_tokens=48, chunk_size=16,
                                 num_kv_blocks=40, block_size=8, seed=3))
    engine.runner.use_cpu_kernels = use_kernel
    gen = torch.Generator().manual_seed(11)
    for rid in range(8):
        prompt = torch.randint(0, 4096, (int(torch.randint(3, 60, (1,), generator=gen)),), generator=gen).tolist()
        engine.add_request(rid, prompt, int(torch.randint(2, 20, (1,), generator=gen)))
    seqs = dict(engine.sequences)
    while engine.has_unfinished():
        engine.step()
    return {rid: s.token_ids[s.num_prompt_tokens:] for rid, s in seqs.items()}


def test_engine_tokens_same_with_and_without_the_kernel():
    with_kernel, without = _greedy_tokens(True), _greedy_tokens(False)
    assert with_kernel == without
    assert all(len(tokens) >= 2 for tokens in with_kernel.values())


def test_disabled_by_environment_falls_back(monkeypatch):
    monkeypatch.setattr(cpu_kernels, "_lib", None)
    monkeypatch.setattr(cpu_kernels, "_status", None)
    monkeypatch.setenv(cpu_kernels.DISABLE_ENV, "0")
    assert not cpu_kernels.available(torch.device("cpu"), torch.float32, 8)
    assert "off" in cpu_kernels.status()


def test_build_failure_falls_back(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu_kernels, "_lib", None)
    monkeypatch.setattr(cpu_kernels, "_status", None)
    monkeypatch.setenv("CAUSALSRE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    assert not cpu_kernels.available(torch.device("cpu"), torch.float32, 8)
    assert "failed" in cpu_kernels.status()
    assert not list(tmp_path.rglob("*.so"))     # nothing half-built left in the cache

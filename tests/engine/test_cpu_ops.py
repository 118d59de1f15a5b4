"""The fused CPU kernels (csrc/cpu_ops.c) against the torch ops they replace, and the fused forward against
the torch forward on the same step."""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F

from harness.engine import cpu_kernels
from harness.engine.config import EngineConfig
from harness.engine.engine import Engine
from harness.engine.model import apply_rotary
from harness.engine.scheduler import ScheduledChunk

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None,
                                reason="needs a C compiler")


@pytest.fixture(autouse=True)
def kernels():
    assert cpu_kernels.available(torch.device("cpu"), torch.float32, 8), cpu_kernels.status()


# rows up to PANEL_LINEAR_MAX_ROWS (several 6-row blocks and a remainder); an odd width hits the one-row
# kernel's tail loop
@pytest.mark.parametrize("rows", [1, 2, 3, 4, 6, 7, 13, 33, 64])
@pytest.mark.parametrize("out_features,in_features", [(64, 40), (48, 41), (320, 192), (512, 1408)])
def test_panel_linear_equals_matmul(rows, out_features, in_features):
    gen = torch.Generator().manual_seed(rows * 7 + in_features)
    weight = torch.randn(out_features, in_features, generator=gen)
    x = torch.randn(rows, in_features, generator=gen)
    panels = cpu_kernels.pack_panels(weight)
    got = cpu_kernels.panel_linear(x, panels)
    torch.testing.assert_close(got, (x.double() @ weight.double().T).float(), atol=1e-4, rtol=1e-5)


def test_read_probe_sums_the_buffer_on_any_thread_count():
    buf = torch.arange(64 * 1001, dtype=torch.float32) % 7      # 1001 chunks: uneven split over threads
    for threads in (1, 2, 3):
        assert cpu_kernels.read_probe(buf, threads) == pytest.approx(float(buf.double().sum()), rel=1e-6)


def test_pack_panels_refuses_a_width_it_cannot_tile():
    assert cpu_kernels.pack_panels(torch.zeros(24, 8)) is None


@pytest.mark.parametrize("rows", [1, 5, 40])
def test_add_rms_norm_equals_residual_add_then_rms_norm(rows):
    gen = torch.Generator().manual_seed(rows)
    x, delta = torch.randn(rows, 192, generator=gen), torch.randn(rows, 192, generator=gen)
    weight = torch.rand(192, generator=gen) + 0.5
    expected_x = x + delta
    expected = F.rms_norm(expected_x, (192,), weight, 1e-5)
    got = cpu_kernels.add_rms_norm(x, delta, weight, 1e-5)
    torch.testing.assert_close(x, expected_x)                      # the residual is updated in place
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cpu_kernels.add_rms_norm(x, None, weight, 1e-5), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tokens", [1, 3, 33])
def test_rotary_cache_write_equals_rotary_then_index_copy(tokens):
    heads, kv_heads, d, max_pos = 6, 2, 32, 64
    gen = torch.Generator().manual_seed(tokens)
    qkv = torch.randn(tokens, (heads + 2 * kv_heads) * d, generator=gen)
    positions = torch.randint(0, max_pos, (tokens,), generator=gen)
    angles = torch.rand(max_pos, d, generator=gen) * 6
    cos, sin = angles.cos(), angles.sin()
    slots = torch.randperm(100, generator=gen)[:tokens]
    cache = torch.zeros(100, 2, kv_heads, d)
    qk = qkv[:, :(heads + kv_heads) * d].view(tokens, heads + kv_heads, d)
    rotated = apply_rotary(qk, cos[positions].unsqueeze(1), sin[positions].unsqueeze(1))
    expected_cache = cache.clone()
    v = qkv[:, (heads + kv_heads) * d:].view(tokens, kv_heads, d)
    expected_cache.index_copy_(0, slots, torch.stack((rotated[:, heads:], v), dim=1))
    cpu_kernels.rotary_cache_write(qkv, positions, cos, sin, cache, slots, heads, kv_heads)
    torch.testing.assert_close(qkv[:, :(heads + kv_heads) * d].view_as(rotated), rotated, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cache, expected_cache, atol=1e-5, rtol=1e-5)


def test_silu_mul_equals_torch():
    gate_up = torch.randn(9, 2 * 352, generator=torch.Generator().manual_seed(4)) * 4
    gate, up = gate_up.chunk(2, dim=-1)
    torch.testing.assert_close(cpu_kernels.silu_mul(gate_up), F.silu(gate) * up, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("num_decodes", [1, 3, 9])
def test_fused_forward_equals_torch_forward_on_a_mixed_step(num_decodes):
    """Decodes beside two prefill chunks, one of them partway through its prompt: the same logits from both
    paths, the same K/V written; and, where the step fits the panel kernel, bit for bit the same from the
    one-call C stack (decoder_stack) as from the per-op loop it replaces."""
    engine = Engine(EngineConfig(model="tiny", max_num_seqs=16, max_num_batched_tokens=512, num_kv_blocks=64,
                                 block_size=8, seed=5))
    runner = engine.runner
    gen = torch.Generator().manual_seed(num_decodes)
    chunks = []
    for i in range(num_decodes + 2):
        length = int(torch.randint(9, 40, (1,), generator=gen))
        engine.add_request(i, torch.randint(0, 4096, (length,), generator=gen).tolist(), 4)
        seq = engine.sequences[i]
        seq.block_table = list(range(i * 5, i * 5 + 5))        # 40 slots: room for every position
        if i < num_decodes:     # a decode at the prompt's last position (the cache before it filled below)
            chunks.append(ScheduledChunk(seq, length - 1, 1, is_prefill=False, samples=True))
        else:                   # a prefill chunk from position 5 (one that samples, one that does not)
            chunks.append(ScheduledChunk(seq, 5, length - 5 - (i % 2), is_prefill=True, samples=i % 2 == 0))
    runner.kv_caches.normal_(generator=gen)           # the "cached past" every query attends to
    start = runner.kv_caches.clone()
    logits = {}
    for fused in (True, False):
        runner.kv_caches.copy_(start)
        runner.use_cpu_kernels = fused
        with torch.inference_mode():
            logits[fused] = runner._forward(chunks)[0]
        if fused:
            written = runner.kv_caches.clone()
    torch.testing.assert_close(logits[True], logits[False], atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(written, runner.kv_caches, atol=1e-5, rtol=1e-5)
    runner.use_cpu_kernels, runner.model.stack_weights = True, None      # the per-op loop
    runner.kv_caches.copy_(start)
    with torch.inference_mode():
        per_op = runner._forward(chunks)[0]
    assert torch.equal(per_op, logits[True]) and torch.equal(written, runner.kv_caches)


def test_decoder_stack_serves_decode_steps_and_matches_the_per_op_loop_exactly():
    """A decode-only step of 5 sequences goes through the one-call stack; the per-op loop gives the same bits."""
    engine = Engine(EngineConfig(model="tiny", max_num_seqs=8, num_kv_blocks=64, block_size=8, seed=2))
    runner = engine.runner
    assert runner.model.stack_weights is not None
    gen = torch.Generator().manual_seed(9)
    chunks = []
    for i in range(5):
        engine.add_request(i, torch.randint(0, 4096, (20 + 3 * i,), generator=gen).tolist(), 4)
        seq = engine.sequences[i]
        seq.block_table = list(range(i * 6, i * 6 + 6))
        chunks.append(ScheduledChunk(seq, 19 + 3 * i, 1, is_prefill=False, samples=True))
    runner.kv_caches.normal_(generator=gen)
    start = runner.kv_caches.clone()
    calls = []
    stack_fn = cpu_kernels.decoder_stack
    out = {}
    try:
        cpu_kernels.decoder_stack = lambda *a, **k: calls.append(1) or stack_fn(*a, **k)
        for use_stack in (True, False):
            runner.kv_caches.copy_(start)
            if not use_stack:
                runner.model.stack_weights = None
            with torch.inference_mode():
                out[use_stack] = (runner._forward(chunks)[0], runner.kv_caches.clone())
    finally:
        cpu_kernels.decoder_stack = stack_fn
    assert calls == [1]                                    # the stack ran once, for the whole step
    assert torch.equal(out[True][0], out[False][0]) and torch.equal(out[True][1], out[False][1])

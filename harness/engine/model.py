"""A Llama-style decoder in plain torch (RMSNorm, rotary embeddings, grouped-query attention, SwiGLU).

Shapes: N = tokens in the step (flattened over sequences), h = hidden size, H / Hkv = query / key-value
heads, D = head dim, G = H // Hkv, S = sequences, L = padded context length, V = vocabulary.

Two forwards share the weights: :meth:`Llama.forward_paged` (the engine's: a flattened batch of decode
tokens and prefill chunks whose keys and values live in a paged pool) and :meth:`Llama.forward_dense` (a
plain causal forward over whole sequences with no cache, the reference the engine is tested against).
Rotary embeddings use the ``rotate_half`` convention so weights load into Hugging Face's LlamaForCausalLM.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from harness.engine import cpu_kernels, hugepages
from harness.engine.config import ModelConfig


@dataclass
class PagedBatch:
    """Where each token of a step reads and writes the paged cache (built by the model runner).

    Tokens are laid out decode tokens first (one per decoding sequence), then the prefill chunks back to back.
    """

    input_ids: torch.Tensor       # [N] long
    positions: torch.Tensor       # [N] long
    slot_mapping: torch.Tensor    # [N] long: cache slot that receives each token's K/V
    num_decode: int               # Sd: the first Sd tokens are decodes
    decode_slots: torch.Tensor | None     # [Sd, Ld] long: cache slots of each decode's context (padded)
    decode_mask: torch.Tensor | None      # [Sd, 1, 1, Ld] bool: True where the key is real
    token_tables: torch.Tensor | None     # [N, W] int32: each token's sequence's block table, and
    token_lengths: torch.Tensor | None    # [N] int32: its position + 1 (causal); set instead of every other
    block_size: int                       # attention field when the C kernels (cpu_kernels) serve the step
    prefill_gather: torch.Tensor | None   # [Sp * Qp] long: flat token feeding each padded query row
    prefill_scatter: torch.Tensor | None  # [N - Sd] long: padded row of each real prefill token
    prefill_shape: tuple[int, int]        # (Sp, Qp)
    prefill_slots: torch.Tensor | None    # [Sp, Lp] long
    prefill_mask: torch.Tensor | None     # [Sp, 1, Qp * G, Lp] bool: causal within the chunk, all of the past
    sample_index: torch.Tensor            # [S_sample] long: tokens whose logits are needed


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)   # one fused op
        # float32 statistics, as Hugging Face's LlamaRMSNorm, so half-precision runs agree with it
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def linear(module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """The engine's projections ([N, in], 2-D) use oneDNN-packed weights when :meth:`Llama.pack_for_cpu`
    made them; the dense reference forward ([B, T, in]) always uses the plain weights."""
    packed = getattr(module, "packed_weight", None)
    # one row too: MKL's gemv was 2.5 ms against oneDNN's 0.4 ms for the lm_head; batch-1 steps 25 -> 20 ms
    if packed is None or x.dim() != 2:
        return F.linear(x, module.weight)
    return torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [None], "")


def _project(module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """The fused path's projections: a few rows (small decode batches) stream the weights' panels through
    the C kernel, more rows go through oneDNN's blocked GEMM."""
    panels = getattr(module, "panels", None)
    if panels is not None and 0 < x.shape[0] <= cpu_kernels.PANEL_LINEAR_MAX_ROWS:
        return cpu_kernels.panel_linear(x, panels)
    return linear(module, x)


def can_pack_for_cpu(device: torch.device, dtype: torch.dtype) -> bool:
    return (device.type == "cpu" and dtype == torch.float32 and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))


def rotary_tables(config: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin, each [max_position, D]."""
    d = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    freqs = torch.outer(torch.arange(config.max_position, dtype=torch.float32), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x [..., heads, D]; cos/sin broadcast as [..., 1, D]
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = config.num_heads, config.num_kv_heads, config.head_dim
        self.q_size = self.num_heads * self.head_dim
        self.kv_size = self.num_kv_heads * self.head_dim
        self.qkv_proj = nn.Linear(config.hidden_size, self.q_size + 2 * self.kv_size, bias=False)
        self.o_proj = nn.Linear(self.q_size, config.hidden_size, bias=False)

    def _qkv(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        qk, v = linear(self.qkv_proj, x).split([self.q_size + self.kv_size, self.kv_size], dim=-1)
        qk = apply_rotary(qk.unflatten(-1, (self.num_heads + self.num_kv_heads, self.head_dim)), cos, sin)
        q, k = qk.split([self.num_heads, self.num_kv_heads], dim=-2)      # one rotary pass for both
        return q, k, v.unflatten(-1, (self.num_kv_heads, self.head_dim))

    def forward_paged(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, kv_cache: torch.Tensor,
                      batch: PagedBatch) -> torch.Tensor:
        # x [N, h]; cos/sin [N, 1, D]; kv_cache [slots, 2, Hkv, D]
        q, k, v = self._qkv(x, cos, sin)                        # [N, H, D], [N, Hkv, D], [N, Hkv, D]
        kv_cache.index_copy_(0, batch.slot_mapping, torch.stack((k, v), dim=1))
        hkv, g, d = self.num_kv_heads, self.num_heads // self.num_kv_heads, self.head_dim
        parts = []
        sd = batch.num_decode
        if sd:
            ctx = kv_cache.index_select(0, batch.decode_slots.flatten())           # [Sd*Ld, 2, Hkv, D]
            ctx = ctx.view(sd, -1, 2, hkv, d).permute(2, 0, 3, 1, 4)              # [2, Sd, Hkv, Ld, D]
            qd = q[:sd].view(sd, hkv, g, d)                                       # G query heads as rows
            out = F.scaled_dot_product_attention(qd, ctx[0], ctx[1], attn_mask=batch.decode_mask)
            parts.append(out.reshape(sd, self.q_size))                            # [Sd, H*D]
        if batch.prefill_gather is not None:
            sp, qp = batch.prefill_shape
            ctx = kv_cache.index_select(0, batch.prefill_slots.flatten())          # [Sp*Lp, 2, Hkv, D]
            ctx = ctx.view(sp, -1, 2, hkv, d).permute(2, 0, 3, 1, 4)              # [2, Sp, Hkv, Lp, D]
            qpad = q.index_select(0, batch.prefill_gather).view(sp, qp, hkv, g, d)
            qpad = qpad.permute(0, 2, 1, 3, 4).reshape(sp, hkv, qp * g, d)       # [Sp, Hkv, Qp*G, D]
            out = F.scaled_dot_product_attention(qpad, ctx[0], ctx[1], attn_mask=batch.prefill_mask)
            out = out.view(sp, hkv, qp, g, d).permute(0, 2, 1, 3, 4).reshape(sp * qp, self.q_size)
            parts.append(out.index_select(0, batch.prefill_scatter))              # [N-Sd, H*D]
        attn = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
        return linear(self.o_proj, attn)

    def forward_dense(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        # x [B, T, h]; cos/sin [T, 1, D]
        q, k, v = self._qkv(x, cos, sin)                         # [B, T, heads, D]
        g = self.num_heads // self.num_kv_heads
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))         # [B, heads, T, D]
        k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).flatten(2))


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.gate_up_proj = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = linear(self.gate_up_proj, x).chunk(2, dim=-1)
        return linear(self.down_proj, F.silu(gate) * up)


class DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MLP(config)


class Llama(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        cos, sin = rotary_tables(config)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def init_weights(self, seed: int) -> None:
        """Seeded normal weights (std ``init_std``), unit norms: the same seed gives the same model anywhere."""
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, param in self.named_parameters():
                if name.endswith("layernorm.weight") or name == "norm.weight":
                    param.fill_(1.0)
                else:
                    param.copy_(torch.randn(param.shape, generator=gen) * self.config.init_std)

    def _rope(self, positions: torch.Tensor, dtype: torch.dtype):
        return (self.rope_cos[positions].unsqueeze(-2).to(dtype), self.rope_sin[positions].unsqueeze(-2).to(dtype))

    def forward_paged(self, batch: PagedBatch, kv_caches: torch.Tensor) -> torch.Tensor:
        """Logits [S_sample, V] for the tokens in ``batch.sample_index``; writes K/V into ``kv_caches``
        ([layers, slots, 2, Hkv, D])."""
        if batch.token_tables is not None:
            return self._forward_fused(batch, kv_caches)
        x = self.embed_tokens(batch.input_ids)                                   # [N, h]
        cos, sin = self._rope(batch.positions, x.dtype)                          # [N, 1, D]
        for layer, kv_cache in zip(self.layers, kv_caches):
            x = x + layer.self_attn.forward_paged(layer.input_layernorm(x), cos, sin, kv_cache, batch)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        x = x.index_select(0, batch.sample_index)                                # [S_sample, h]
        return linear(self.lm_head, self.norm(x))

    def _forward_fused(self, batch: PagedBatch, kv_caches: torch.Tensor) -> torch.Tensor:
        """forward_paged on the CPU in float32 with the C kernels (cpu_kernels): per layer two projections
        pairs, one norm-with-residual each side, rotary fused with the cache write, and one attention call
        for decode and prefill tokens alike. Same arithmetic as the torch path, in fewer passes."""
        c, ops = self.config, cpu_kernels
        n, h, d = batch.input_ids.shape[0], c.num_heads, c.head_dim
        x = self.embed_tokens(batch.input_ids)                  # [N, h]: the residual, added to in place
        delta = None
        stack = getattr(self, "stack_weights", None)
        if stack is not None and n <= ops.PANEL_LINEAR_MAX_ROWS:   # the loop below, in C: one call a step
            out = ops.decoder_stack(x, stack, kv_caches, batch.positions, batch.slot_mapping, self.rope_cos,
                                    self.rope_sin, batch.token_tables, batch.token_lengths, batch.block_size, h,
                                    c.intermediate_size, c.rms_norm_eps, sample_rows=batch.sample_index)
            if stack.lm_panels is not None:      # the tail below ran in the same call: these are the logits
                return out
            delta = out
        for layer, kv_cache in zip(self.layers, kv_caches) if delta is None else ():
            attn, mlp = layer.self_attn, layer.mlp
            normed = ops.add_rms_norm(x, delta, layer.input_layernorm.weight, c.rms_norm_eps)
            qkv = _project(attn.qkv_proj, normed)                # [N, (H + 2 Hkv) D]
            ops.rotary_cache_write(qkv, batch.positions, self.rope_cos, self.rope_sin, kv_cache, batch.slot_mapping,
                                   h, c.num_kv_heads)
            out = ops.paged_decode_attention(qkv[:, :attn.q_size].view(n, h, d), kv_cache, batch.token_tables,
                                             batch.token_lengths, batch.block_size)      # [N, H, D]
            delta = _project(attn.o_proj, out.view(n, attn.q_size))
            normed = ops.add_rms_norm(x, delta, layer.post_attention_layernorm.weight, c.rms_norm_eps)
            delta = _project(mlp.down_proj, ops.silu_mul(_project(mlp.gate_up_proj, normed)))
        rows = batch.sample_index                                # only the rows that sample
        x = ops.add_rms_norm(x.index_select(0, rows), delta.index_select(0, rows), self.norm.weight, c.rms_norm_eps)
        return _project(self.lm_head, x)

    def pack_for_cpu(self) -> None:
        """Keep oneDNN-packed copies of the projection weights for the engine's forward. MKL's sgemm is
        slow on the few-row matrices of decode batches on some CPUs (2-3x on the AMD EPYC of our benchmark);
        oneDNN's blocked layout is not. The dense reference forward keeps using the plain weights."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.packed_weight = torch.ops.mkldnn._reorder_linear_weight(module.weight.detach(), 32)

    def pack_panels(self) -> None:
        """Panel copies of the projection weights for the C few-row kernel (cpu_kernels.panel_linear), all in
        one arena on huge pages (hugepages.py: the batch-1 weight stream took 27 % less CPU than on 4 KiB
        pages), each panel set starting on a 64-byte line."""
        linears = [m for m in self.modules() if isinstance(m, nn.Linear)]
        sizes = [-(-m.weight.numel() // 16) * 16 if m.weight.shape[0] % cpu_kernels.PANEL == 0 else 0
                 for m in linears]
        arena = hugepages.zeros((max(1, sum(sizes)),), dtype=torch.float32)
        at = 0
        for module, size in zip(linears, sizes):
            module.panels = cpu_kernels.pack_panels(module.weight, arena[at:at + module.weight.numel()]
                                                    if size else None)
            at += size
        try:   # the whole stack in one C call when every projection has panels (widths % 16 == 0)
            self.stack_weights = cpu_kernels.StackWeights(self.layers, self.norm.weight, self.lm_head.panels)
        except ValueError:
            self.stack_weights = None

    def forward_dense(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits [B, T, V] of a plain causal forward over whole sequences (no cache)."""
        x = self.embed_tokens(input_ids)                                         # [B, T, h]
        cos, sin = self._rope(torch.arange(input_ids.shape[1], device=input_ids.device), x.dtype)
        for layer in self.layers:
            x = x + layer.self_attn.forward_dense(layer.input_layernorm(x), cos, sin)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.lm_head(self.norm(x))

    def hf_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights under Hugging Face LlamaForCausalLM's names (fused projections split)."""
        c, out = self.config, {}
        q, kv = c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim
        out["model.embed_tokens.weight"] = self.embed_tokens.weight
        out["model.norm.weight"] = self.norm.weight
        out["lm_head.weight"] = self.lm_head.weight
        for i, layer in enumerate(self.layers):
            p = f"model.layers.{i}."
            wq, wk, wv = layer.self_attn.qkv_proj.weight.split([q, kv, kv], dim=0)
            gate, up = layer.mlp.gate_up_proj.weight.chunk(2, dim=0)
            out.update({p + "self_attn.q_proj.weight": wq, p + "self_attn.k_proj.weight": wk,
                        p + "self_attn.v_proj.weight": wv, p + "self_attn.o_proj.weight": layer.self_attn.o_proj.weight,
                        p + "mlp.gate_proj.weight": gate, p + "mlp.up_proj.weight": up,
                        p + "mlp.down_proj.weight": layer.mlp.down_proj.weight,
                        p + "input_layernorm.weight": layer.input_layernorm.weight,
                        p + "post_attention_layernorm.weight": layer.post_attention_layernorm.weight})
        return {k: v.detach().clone().contiguous() for k, v in out.items()}

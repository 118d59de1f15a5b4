"""Model presets and the engine's knobs, validated once when they are made.

The engine knobs mirror the ones real serving stacks expose (vLLM's ``max_num_seqs``,
``max_num_batched_tokens``, chunked prefill, the KV block count) so telemetry from this engine responds to
the same settings an operator would change in production.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, make_dataclass

from harness.engine.errors import UserError
from harness.engine.settings import BATCHING_MODES, DTYPES, ENGINE_SETTINGS, LIVE_KNOBS, POLICIES, SETTINGS

__all__ = ["BATCHING_MODES", "DTYPES", "LIVE_KNOBS", "MODEL_PRESETS", "POLICIES", "EngineConfig", "ModelConfig"]


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """A Llama-style decoder: RMSNorm, rotary embeddings, grouped-query attention, SwiGLU MLP."""

    name: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    max_position: int = 4096
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    init_std: float = 0.02

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def num_parameters(self) -> int:
        """Parameter count (untied embedding and output head, as in Llama)."""
        h, kv = self.hidden_size, self.num_kv_heads * self.head_dim
        per_layer = h * h * 2 + h * kv * 2 + 3 * h * self.intermediate_size + 2 * h
        return 2 * self.vocab_size * h + self.num_layers * per_layer + h

    @classmethod
    def from_name(cls, name: str) -> ModelConfig:
        if name not in MODEL_PRESETS:
            raise UserError(f"unknown model preset {name!r}", f"use one of {', '.join(MODEL_PRESETS)}")
        return MODEL_PRESETS[name]

    def to_dict(self) -> dict:
        return asdict(self)


# Sizes chosen so each preset is a realistic shape for its target: tiny for CPU tests (~3M parameters),
# small for the CPU benchmark (~32M), medium (~125M) and large (~0.9B) for GPUs.
MODEL_PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig("tiny", vocab_size=4096, hidden_size=192, num_layers=4, num_heads=6, num_kv_heads=2,
                        intermediate_size=512, max_position=2048),
    "small": ModelConfig("small", vocab_size=8192, hidden_size=512, num_layers=8, num_heads=8, num_kv_heads=4,
                         intermediate_size=1408, max_position=4096),
    "medium": ModelConfig("medium", vocab_size=32000, hidden_size=768, num_layers=12, num_heads=12,
                          num_kv_heads=4, intermediate_size=2048, max_position=4096),
    "large": ModelConfig("large", vocab_size=32000, hidden_size=2048, num_layers=16, num_heads=16,
                         num_kv_heads=8, intermediate_size=5632, max_position=4096),
}

# Share of the machine's memory the KV cache may take: the rest is the model, activations, the harness and the OS.
KV_MEMORY_FRACTION = 0.5
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
_FIELD_TYPES = {"int": "int", "float": "float", "bool": "bool", "choice": "str", "device": "str", "preset": "str"}


def machine_memory_bytes() -> int | None:
    """Physical memory of this machine (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


class _EngineConfigMethods:
    """The behaviour of :class:`EngineConfig`; its fields come from ``ENGINE_SETTINGS``."""

    __slots__ = ()

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Every setting against its declared bounds, then the KV cache against the machine's memory."""
        if self.model not in MODEL_PRESETS:
            raise UserError(f"unknown model preset {self.model!r}", f"use one of {', '.join(MODEL_PRESETS)}")
        for setting in ENGINE_SETTINGS:
            setting.check(getattr(self, setting.name))
        self._check_kv_memory()

    def kv_cache_bytes(self) -> int:
        """Bytes of the paged KV cache: blocks x tokens per block x layers x KV heads x head dim x (K, V) x dtype."""
        m = MODEL_PRESETS[self.model]
        return (self.num_kv_blocks * self.block_size * m.num_layers * m.num_kv_heads * m.head_dim * 2
                * DTYPE_BYTES[self.dtype])

    def _check_kv_memory(self) -> None:
        total = machine_memory_bytes()
        if total is None:
            return
        limit = KV_MEMORY_FRACTION * total
        need = self.kv_cache_bytes()
        if need > limit:
            per_block = need // self.num_kv_blocks
            most = max(1, int(limit // per_block))
            raise UserError(
                f"a KV cache of {self.num_kv_blocks} blocks x {self.block_size} tokens needs {need / 2**30:,.1f} GiB, "
                f"more than {KV_MEMORY_FRACTION:.0%} of this machine's {total / 2**30:,.1f} GiB",
                f"set num_kv_blocks to at most {most}, or a smaller block_size")

    def replace(self, **knobs: object) -> EngineConfig:
        """A validated copy with some fields changed (unknown names are a user error)."""
        unknown = sorted(set(knobs) - set(SETTINGS))
        if unknown:
            raise UserError(f"unknown engine setting(s): {', '.join(unknown)}",
                            f"use names from: {', '.join(sorted(SETTINGS))}")
        values = self.to_dict()
        values.update(knobs)
        return EngineConfig(**values)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# One field per entry of ENGINE_SETTINGS, with its default; validated in __post_init__ (and on replace()).
EngineConfig = make_dataclass(
    "EngineConfig",
    [(s.name, _FIELD_TYPES[s.kind] + (" | None" if s.nullable else ""), field(default=s.default))
     for s in ENGINE_SETTINGS],
    bases=(_EngineConfigMethods,), slots=True)
EngineConfig.__module__ = __name__  # make_dataclass's module= needs Python 3.12; this keeps pickling working
EngineConfig.__doc__ = "The engine's settings (see harness.engine.settings for each one's meaning and bounds)."

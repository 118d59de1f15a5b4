"""Model presets and the engine's knobs, validated once when they are made.

The engine knobs mirror the ones real serving stacks expose (vLLM's ``max_num_seqs``,
``max_num_batched_tokens``, chunked prefill, the KV block count) so telemetry from this engine responds to
the same settings an operator would change in production.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from causalsre.errors import UserError

POLICIES = ("fcfs", "priority", "sjf")
BATCHING_MODES = ("decode_first", "prefill_first")
DTYPES = ("float32", "bfloat16", "float16")


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

# Knobs that may change while the engine runs (a config push); the rest fix the model and its memory layout.
LIVE_KNOBS = ("max_num_seqs", "max_num_batched_tokens", "chunk_size", "enable_chunked_prefill", "policy",
              "batching_mode", "max_queue_len", "request_timeout_s", "num_kv_blocks")


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UserError(f"{name} must be a positive integer, got {value!r}", f"set {name} to an integer >= 1")


@dataclass(slots=True)
class EngineConfig:
    model: str = "tiny"
    device: str = "cpu"
    dtype: str = "float32"
    num_threads: int = 1
    seed: int = 0
    max_num_seqs: int = 16
    max_num_batched_tokens: int = 256
    enable_chunked_prefill: bool = True
    chunk_size: int = 64
    policy: str = "fcfs"
    batching_mode: str = "decode_first"
    num_kv_blocks: int = 256
    block_size: int = 16
    max_queue_len: int = 64
    request_timeout_s: float | None = 30.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.model not in MODEL_PRESETS:
            raise UserError(f"unknown model preset {self.model!r}", f"use one of {', '.join(MODEL_PRESETS)}")
        if self.device != "cpu" and not str(self.device).startswith("cuda"):
            raise UserError(f"unknown device {self.device!r}", "use 'cpu' or 'cuda' (or 'cuda:N')")
        if self.dtype not in DTYPES:
            raise UserError(f"unknown dtype {self.dtype!r}", f"use one of {', '.join(DTYPES)}")
        for name in ("num_threads", "max_num_seqs", "max_num_batched_tokens", "chunk_size", "num_kv_blocks",
                     "block_size", "max_queue_len"):
            _positive_int(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UserError(f"seed must be an integer, got {self.seed!r}", "pass an integer seed")
        if not isinstance(self.enable_chunked_prefill, bool):
            raise UserError("enable_chunked_prefill must be true or false", "pass a boolean")
        if self.policy not in POLICIES:
            raise UserError(f"unknown scheduling policy {self.policy!r}", f"use one of {', '.join(POLICIES)}")
        if self.batching_mode not in BATCHING_MODES:
            raise UserError(f"unknown batching mode {self.batching_mode!r}",
                            f"use one of {', '.join(BATCHING_MODES)}")
        timeout = self.request_timeout_s
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not timeout > 0):
            raise UserError(f"request_timeout_s must be a positive number or None, got {timeout!r}",
                            "set a timeout in seconds, or None to disable timeouts")

    def replace(self, **knobs: object) -> EngineConfig:
        """A validated copy with some fields changed (unknown names are a user error)."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(knobs) - names)
        if unknown:
            raise UserError(f"unknown engine setting(s): {', '.join(unknown)}",
                            f"use names from: {', '.join(sorted(names))}")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(knobs)
        return EngineConfig(**values)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

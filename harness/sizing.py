"""What a run's model accepts: its engine config, vocabulary and positions, and requests cut to fit.

Shared by the run loop (:mod:`harness.runner`) and the capacity measurements (:mod:`harness.capacity`), so
neither imports the other. The engine is imported inside the functions: importing the harness must not
import torch (``causalsre --help`` and the config checks stay fast).
"""

from __future__ import annotations

from harness.config import RunConfig
from harness.workload import RequestSpec


def engine_config(cfg: RunConfig):
    from harness.engine import EngineConfig

    return EngineConfig(**cfg.engine.model_dump())


def vocab_size(cfg: RunConfig) -> int:
    from harness.engine import ModelConfig

    return int(ModelConfig.from_name(cfg.engine.model).vocab_size)


def max_position(cfg: RunConfig) -> int:
    from harness.engine import ModelConfig

    return int(ModelConfig.from_name(cfg.engine.model).max_position)


def fit_to_model(spec: RequestSpec, limit: int) -> RequestSpec:
    """Truncate a request so prompt + output fits the model's positions (the prompt gives way first)."""
    if spec.prompt_tokens + spec.output_tokens <= limit:
        return spec
    output = min(spec.output_tokens, limit // 2)
    return RequestSpec(spec.request_id, spec.arrival_ns, max(1, min(spec.prompt_tokens, limit - output)),
                       output, spec.tenant, spec.priority)

"""A PyTorch Llama-style inference engine with continuous batching, chunked prefill and a paged KV cache.

``Engine`` imports torch; the config, sequence, block manager and scheduler modules do not.
"""

from harness.engine.config import MODEL_PRESETS, EngineConfig, ModelConfig
from harness.engine.observer import EngineObserver, NullObserver, RequestRecord, StepRecord

__all__ = ["MODEL_PRESETS", "Engine", "EngineConfig", "EngineObserver", "ModelConfig", "NullObserver",
           "RequestRecord", "StepRecord"]


def __getattr__(name: str):
    # Engine pulls in torch; import it on first use so config and scheduler code stays torch-free.
    if name == "Engine":
        from harness.engine.engine import Engine

        return Engine
    raise AttributeError(name)

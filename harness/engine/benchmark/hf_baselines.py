"""Hugging Face transformers baselines: the same architecture, config and weights as the engine's model.

(a) static batching: ``generate`` on fixed batches (left-padded), each batch running until its longest
request is done; (b) transformers' own continuous batching (``ContinuousBatchingManager``) when the
installed version has it. Generation is forced to each request's target length (EOS disabled), greedy.
"""

from __future__ import annotations

import inspect
import time

import torch

from harness.engine.benchmark.workload import BenchRequest
from harness.engine.config import ModelConfig
from harness.engine.model import Llama


def build_hf_model(model: Llama, device: torch.device, dtype: torch.dtype):
    from transformers import LlamaConfig, LlamaForCausalLM

    c: ModelConfig = model.config
    hf_config = LlamaConfig(
        vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
        num_hidden_layers=c.num_layers, num_attention_heads=c.num_heads, num_key_value_heads=c.num_kv_heads,
        max_position_embeddings=c.max_position, rms_norm_eps=c.rms_norm_eps, rope_theta=c.rope_theta,
        tie_word_embeddings=False, bos_token_id=None, eos_token_id=None, pad_token_id=0,
        attention_bias=False, mlp_bias=False)
    hf = LlamaForCausalLM(hf_config)
    missing, unexpected = hf.load_state_dict(model.hf_state_dict(), strict=False)
    if [m for m in missing if "rotary" not in m] or unexpected:
        raise RuntimeError(f"weight mapping mismatch: missing={missing} unexpected={unexpected}")
    return hf.to(device=device, dtype=dtype).eval()


class _StepClock:
    """A logits processor that stamps the time of every decoding step (works for any batch size)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, input_ids, scores):
        self.times.append(time.perf_counter())
        return scores


@torch.inference_mode()
def run_static(hf, requests: list[BenchRequest], batch_size: int, device: torch.device):
    """Token timestamps per request, the start time and the end time."""
    from transformers import GenerationConfig, LogitsProcessorList

    token_times: list[list[float]] = [[] for _ in requests]
    outputs: list[list[int]] = [[] for _ in requests]
    start = time.perf_counter()
    for first in range(0, len(requests), batch_size):
        batch = requests[first:first + batch_size]
        width = max(len(r.prompt) for r in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, r in enumerate(batch):   # left padding, as decoder-only generation needs
            ids[row, width - len(r.prompt):] = torch.tensor(r.prompt)
            mask[row, width - len(r.prompt):] = 1
        longest = max(r.target_output_tokens for r in batch)
        clock = _StepClock()
        config = GenerationConfig(max_new_tokens=longest, min_new_tokens=longest, do_sample=False,
                                  eos_token_id=None, pad_token_id=0)
        out = hf.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config,
                          logits_processor=LogitsProcessorList([clock]))
        if device.type == "cuda":
            torch.cuda.synchronize()
        for row, r in enumerate(batch):
            n = r.target_output_tokens
            token_times[first + row] = clock.times[:n]
            outputs[first + row] = out[row, width:width + n].tolist()
    return token_times, start, time.perf_counter(), outputs


def _accepted(cls, kwargs: dict) -> dict:
    """The keyword arguments ``cls`` takes: the continuous-batching API is young and its names move between
    transformers releases (5.17 has no ``page_size``), so pass what this version accepts."""
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def _page_size_argument(cls, page_size: int) -> dict:
    # 5.24 calls the KV page "page_size" (its "block_size" is another setting); earlier releases "block_size"
    return {"page_size" if "page_size" in inspect.signature(cls).parameters else "block_size": page_size}


def has_continuous_batching(hf) -> bool:
    return hasattr(hf, "init_continuous_batching")


@torch.inference_mode()
def run_continuous(hf, requests: list[BenchRequest], max_batch_tokens: int, max_requests: int,
                   page_size: int = 256):
    """transformers' continuous batching: all requests submitted at once, timestamps recorded per token.
    Its KV cache gets room for every request at once (as the engine does), in its own page size."""
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    longest = max(r.target_output_tokens for r in requests)
    config = GenerationConfig(max_new_tokens=longest, do_sample=False, eos_token_id=-1, pad_token_id=0)
    num_blocks = sum(-(-(len(r.prompt) + r.target_output_tokens) // page_size) for r in requests) + 2
    cb_config = ContinuousBatchingConfig(**_accepted(ContinuousBatchingConfig, dict(
        max_batch_tokens=max_batch_tokens, num_blocks=num_blocks, max_requests_per_batch=max_requests,
        allow_block_sharing=False, use_cuda_graph=False, **_page_size_argument(ContinuousBatchingConfig, page_size))))
    manager = hf.init_continuous_batching(generation_config=config, continuous_batching_config=cb_config)
    manager.start()
    start = time.perf_counter()
    ids = [manager.add_request(r.prompt, **_accepted(manager.add_request, dict(
        request_id=f"r{i}", max_new_tokens=r.target_output_tokens, record_timestamps=True, eos_token_id=-1)))
        for i, r in enumerate(requests)]
    results = {}
    try:
        while len(results) < len(requests):
            result = manager.get_result(timeout=1)
            if result is not None and result.is_finished():
                results[result.request_id] = result
            elif result is None and not manager.is_running():
                raise RuntimeError("transformers' continuous batching loop stopped early")
        end = time.perf_counter()
    finally:
        manager.stop(block=True, timeout=10)
    token_times = [list(getattr(results[i], "timestamps", None) or []) for i in ids]
    if not all(token_times):
        raise RuntimeError("this transformers release records no per-token timestamps")
    outputs = [list(results[i].generated_tokens) for i in ids]
    return token_times, start, end, outputs

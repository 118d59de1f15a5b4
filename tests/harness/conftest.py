"""Small real-engine run configs for the harness tests (tiny model, one thread, a few seconds each)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.config import RunConfig, parse_run_config

# Step costs of a modelled clock (harness.engine.clock), in seconds: a tiny-model step on this class of machine,
# order of magnitude. A test whose assertion needs an overload, a burn, a queue, a preemption or a timeout runs
# on it, so the engine's speed is a constant of the test: on the wall clock a faster engine or a quieter machine
# (CI) served what a loaded one could not, and the assertion flipped.
STEP_COSTS = {"base_s": 0.004, "prefill_token_s": 0.0003, "decode_seq_s": 0.0008, "kv_token_s": 0.000004}
MODELLED_CLOCK = {"mode": "modelled", **STEP_COSTS}
# The same engine three times slower, for the overload runs sized as a fraction of the capacity measured at their
# start (load_fraction, a surge factor): the overload is the same, with a third of the requests, so a third of
# the real forward passes (on MODELLED_CLOCK these runs took twice their wall-clock time on the loaded machine).
SLOW_MODELLED_CLOCK = {"mode": "modelled", **{name: 3 * cost for name, cost in STEP_COSTS.items()}}


def tiny_config(**top: Any) -> RunConfig:
    """A 3 s Poisson run of the tiny model with short requests; keyword args replace top-level sections."""
    data: dict[str, Any] = {
        "name": "t", "seed": 0, "duration_s": 3.0, "drain_timeout_s": 3.0,
        "engine": {"model": "tiny", "num_threads": 1, "max_num_seqs": 8, "max_num_batched_tokens": 128,
                   "chunk_size": 32, "num_kv_blocks": 128, "max_queue_len": 32},
        "workload": {"arrival": "poisson", "rate": 6.0, "prompt": {"dist": "uniform", "low": 8, "high": 24},
                     "output": {"dist": "fixed", "value": 6}},
    }
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_run_config(data)


@pytest.fixture
def tiny():
    return tiny_config

"""Round 10 at the files `eval govern` writes: the tier SLO specs (YAML) and the gateway's tiers TOML.

Before: the tier spec was a template filled with Python's repr of each threshold, so a threshold of 1e-05 s
(or 1e+20) was written ``value: 1e-05``, which YAML 1.1 reads as the string '1e-05': the SLO loader refused the
file the evaluation had just written. The tiers TOML was written with json.dumps: an infinite threshold became
``Infinity`` (TOML's is ``inf``: the file did not parse) and a NumPy float32 was a TypeError. Now the spec is
written by the YAML library's dumper (``1.0e-05``) and the TOML by a writer that knows TOML's floats; both
read back to the same float.
"""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest

from causalsre.evaluation import govern_traffic as T
from causalsre.evaluation.govern_measure import tier_spec_yaml
from causalsre.evaluation.govern_vllm import governor_toml
from causalsre.slo import load_slos

FLOATS = [1e-05, 1.5e-07, 1e-300, 5e-324, 0.25, 1e+20, 1.7976931348623157e+308]


@pytest.mark.parametrize("value", FLOATS, ids=[repr(v) for v in FLOATS])
def test_a_tier_spec_reads_back_its_thresholds(value, tmp_path):
    path = tmp_path / "slo-premium.yaml"
    path.write_text(tier_spec_yaml("premium", "premium", 0.995, value, value / 2))
    spec = load_slos(path)[0]
    assert [c.value for c in spec.conditions] == [value, value / 2]
    assert spec.objective == 0.995 and spec.name == "premium"


TOML_VALUES = [1e-05, 5e-324, 1e+20, 1.7976931348623157e+308, math.inf, np.float64(1e-05), np.float32(0.1)]


@pytest.mark.parametrize("value", TOML_VALUES, ids=[f"{type(v).__name__}-{v!r}" for v in TOML_VALUES])
def test_the_tiers_toml_reads_back_its_thresholds(value):
    section = T.governor_section({"ttft_s": value, "tpot_s": 0.5}, 20.0)
    tiers = tomllib.loads(governor_toml(section))["governor"]["tiers"]
    assert [t["ttft_s"] for t in tiers] == [float(value)] * len(T.TIERS)
    assert [t["name"] for t in tiers] == [t["name"] for t in section["tiers"]]
    assert all(t["tpot_s"] == 0.5 and isinstance(t["protected"], bool) for t in tiers)

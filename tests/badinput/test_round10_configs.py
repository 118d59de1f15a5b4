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


# ---- run and phase names (harness run config) -----------------------------------------------------------------
# Before: a run config named "" or "-x" gave run ids such as "-s0-32e5e2f0" (read as options by `--run`), a
# name with a line break split `db info`'s listing, and a phase named "a@b" could never be addressed
# (`phase:a@b` is phase a of run b). Now each is a one-line error naming the key and the fix.
from harness.config import parse_run_config  # noqa: E402
from causalsre.errors import UserError  # noqa: E402

SMOKE = "harness/configs/smoke.toml"
BAD_NAMES = [  # (id, patch, fragment)
    ("run-empty", {"name": ""}, "name: String should have at least 1 character"),
    ("run-dash", {"name": "-fast"}, "name '-fast' starts with '-', so its run ids read as options"),
    ("run-newline", {"name": "a\nb"}, "holds the control character U+000A"),
    ("run-tab", {"name": "a\tb"}, "holds the control character U+0009"),
    ("run-bidi", {"name": "ab\u202e"}, "holds the control character U+202E"),
    ("run-blanks", {"name": " smoke "}, "starts or ends with blanks"),
    ("run-long", {"name": "x" * 201}, "at most 200 characters"),
    ("phase-at", {"phases": [{"name": "a@b", "start_s": 0, "end_s": 4}]}, "holds '@', which windows read as"),
    ("phase-newline", {"phases": [{"name": "in\ncident", "start_s": 0, "end_s": 4}]}, "U+000A"),
    ("phase-blank", {"phases": [{"name": "incident ", "start_s": 0, "end_s": 4}]}, "starts or ends with blanks"),
]


@pytest.mark.parametrize("case_id, patch, fragment", BAD_NAMES, ids=[c[0] for c in BAD_NAMES])
def test_a_run_or_phase_name_that_windows_cannot_address_is_refused(case_id, patch, fragment):
    data = tomllib.loads(open(SMOKE).read()) | patch
    with pytest.raises(UserError) as caught:
        parse_run_config(data, source="test.toml")
    message = caught.value.one_line()
    assert fragment in message and "\n" not in message, message


@pytest.mark.parametrize("name", ["smoke", "my run", "a@b", "übung-1", "replay-smoke-phase:incident", "速い"])
def test_names_windows_can_address_still_load(name):
    data = tomllib.loads(open(SMOKE).read()) | {"name": name, "phases": [{"name": "in-cident_1", "start_s": 0,
                                                                         "end_s": 4}]}
    assert parse_run_config(data, source="test.toml").name == name

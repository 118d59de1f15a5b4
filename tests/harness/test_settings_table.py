"""The settings table is the only list of engine settings: every other list is derived from it, and a new
entry reaches all of them with no other edit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.engine.errors import UserError
from harness.engine.settings import ENGINE_SETTINGS, LIVE_KNOBS, SETTINGS
from harness.settings import ALL_SETTINGS, FACTORS

REPO = Path(__file__).resolve().parents[2]


def test_every_list_is_derived_from_the_table():
    from harness import faults
    from harness.config import PUSHABLE_KNOBS, EngineSection
    from harness.engine.config import EngineConfig
    from harness.runner import _runs_row
    from causalsre.causal import table
    from causalsre.whatif import verify

    names = [s.name for s in ENGINE_SETTINGS]
    assert [f for f in EngineConfig.__dataclass_fields__] == names
    assert EngineConfig().to_dict() == {s.name: s.default for s in ENGINE_SETTINGS}
    assert list(EngineSection.model_fields) == names
    assert EngineSection().model_dump() == EngineConfig().to_dict()
    assert set(LIVE_KNOBS) == {s.name for s in ENGINE_SETTINGS if s.live} == set(faults.ENGINE_KNOBS)
    assert PUSHABLE_KNOBS == {s.name for s in ENGINE_SETTINGS if s.pushable}
    assert faults.TEXT_SETTINGS == {s.name for s in ALL_SETTINGS.values() if s.kind in ("choice", "device", "preset")}
    assert verify.KNOB_CONFIG == {s.graph: (f"engine.{s.name}", s.fault_kinds) for s in ENGINE_SETTINGS if s.graph}
    assert verify._INTEGER_KNOBS == {s.graph for s in ENGINE_SETTINGS if s.graph and s.kind == "int"}
    per_request = {"arrival_rate", "prompt_tokens", "output_tokens", "tenant"}
    read = [s for s in ALL_SETTINGS.values() if s.graph and s.name not in per_request]
    assert table.SETTING_FALLBACK == {s.graph: s.runs_column for s in read}
    assert table.CATEGORICAL_SETTINGS == {s.graph for s in read if s.kind in ("choice", "device")}
    assert table.ZERO_WHEN_ABSENT == {"cpu_contention", "step_delay_s"}
    # The runs row has a column for every setting the table gives one, under that column's name.
    from harness.config import RunConfig

    row = _runs_row(RunConfig(), 0, 2.0, None, {})
    assert {s.runs_column for s in ENGINE_SETTINGS if s.runs_column} <= set(row)
    assert row["model_preset"] == "tiny" and row["request_timeout_s"] == 30.0


def test_the_runs_columns_exist_in_the_schema():
    import duckdb

    from causalsre.telemetry.schema import migrate

    con = duckdb.connect()
    migrate(con)
    columns = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                         "WHERE table_name = 'runs'").fetchall()}
    assert {s.runs_column for s in ALL_SETTINGS.values() if s.runs_column} <= columns


def test_a_new_knob_is_one_edit(tmp_path):
    """Copy the harness, add one entry to the table, and every derived list has the knob."""
    shutil.copytree(REPO / "harness", tmp_path / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "harness" / "engine" / "settings.py"
    source = path.read_text()
    entry = ('    Setting("max_num_loras", "int", 4, _B, "max_num_loras", "adapters in one batch", low=1, high=64,\n'
             '            **_LIVE),\n)\n\nSETTINGS')
    assert source.count("\n)\n\nSETTINGS") == 1
    path.write_text(source.replace("\n)\n\nSETTINGS", "\n" + entry))
    probe = textwrap.dedent("""
        import json
        from harness.config import PUSHABLE_KNOBS, EngineSection, parse_run_config
        from harness.engine.config import LIVE_KNOBS, EngineConfig
        from harness.faults import ENGINE_KNOBS
        from harness.settings import REPLAY_KNOBS, SETTING_FALLBACK, RECORDED_ENGINE_SETTINGS
        cfg = parse_run_config({"faults": [{"kind": "config_push", "at_s": 1, "knobs": {"max_num_loras": 8}}]})
        try:
            parse_run_config({"engine": {"max_num_loras": 65}})
            refused = False
        except ValueError:
            refused = True
        print(json.dumps({"engine": EngineConfig().max_num_loras, "section": EngineSection().max_num_loras,
                          "live": "max_num_loras" in LIVE_KNOBS, "push": "max_num_loras" in PUSHABLE_KNOBS,
                          "fault": "max_num_loras" in ENGINE_KNOBS, "replay": REPLAY_KNOBS["max_num_loras"][0],
                          "table": "max_num_loras" in SETTING_FALLBACK,
                          "recorded": "max_num_loras" in RECORDED_ENGINE_SETTINGS,
                          "pushed": cfg.faults[0].knobs, "refused": refused}))
    """)
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"engine": 4, "section": 4, "live": True, "push": True, "fault": True,
                                      "replay": "engine.max_num_loras", "table": True, "recorded": True,
                                      "pushed": {"max_num_loras": 8}, "refused": True}


def test_request_timeout_and_device_agree_in_engine_and_config():
    from harness.config import parse_run_config
    from harness.engine.config import EngineConfig

    cfg = parse_run_config({"engine": {"request_timeout_s": None, "device": "cuda:1"}})
    assert (cfg.engine.request_timeout_s, cfg.engine.device) == (None, "cuda:1")
    assert EngineConfig(request_timeout_s=None, device="cuda:1").device == "cuda:1"
    for bad in ({"device": "tpu"}, {"request_timeout_s": 0}, {"request_timeout_s": float("inf")}):
        with pytest.raises(UserError):
            EngineConfig(**bad)
        with pytest.raises(UserError):
            parse_run_config({"engine": bad})


def test_every_setting_has_a_node_or_a_reason():
    for s in ENGINE_SETTINGS + FACTORS:
        assert (s.graph is None) == bool(s.excluded), s.name
        assert s.family in ("batching", "hardware", "workload"), s.name
    assert SETTINGS["num_kv_blocks"].fault_kinds == ("kv_shrink",)


def test_the_engine_imports_nothing_of_causalsre():
    offenders = []
    for path in sorted((REPO / "harness" / "engine").rglob("*.py")):
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("import", "from") and words[1].split(".")[0] == "causalsre":
                offenders.append(f"{path.relative_to(REPO)}: {line.strip()}")
    assert offenders == []
    from causalsre.errors import UserError as AnalysisError

    assert AnalysisError is UserError  # one class: the CLI's single except catches the engine's errors too


def test_replay_values_from_an_analysis_table_are_coerced_or_refused():
    import numpy as np

    from causalsre.whatif.verify import harness_overrides

    out = harness_overrides({"block_size": np.int64(32), "enable_chunked_prefill": np.float64(0.0),
                             "max_num_seqs": 8.0, "policy": np.str_("sjf")})
    assert out == {"engine.block_size": 32, "engine.enable_chunked_prefill": False, "engine.max_num_seqs": 8,
                   "engine.policy": "sjf"}
    assert type(out["engine.block_size"]) is int and type(out["engine.max_num_seqs"]) is int
    for bad in ({"max_num_seqs": 8.5}, {"max_num_seqs": np.float64("nan")}, {"enable_chunked_prefill": 2.0},
                {"request_timeout_s": -1.0}, {"queue_depth_at_arrival": 3.0}):
        with pytest.raises(UserError):
            harness_overrides(bad)

"""`causalsre serve` refuses configs that would govern or limit by nothing the operator wrote: one line, exit 2.

Each case was accepted before (tiers = [] served with every tenant in the implicit default tier; a tier with no
tenants or no stated SLO governed by defaults; default_max_tokens above the limit was clipped silently), and
the engine's [governor] in a serve CONFIG was dropped: the engine ran its policy without the tiers.
"""

from __future__ import annotations

import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly
from harness.serve import load_serve_settings
from harness.serve.loop import EngineLoop

TIER = 'name = "premium"\ntenants = ["alice"]\nobjective = 0.99\nttft_s = 2.0\n'
HOLES = [
    ("[governor]\n", "lists no tiers"),
    ("[governor]\ntiers = []\n", "lists no tiers"),
    ('[governor]\n[[governor.tiers]]\nname = "premium"\ntenants = []\nobjective = 0.99\nttft_s = 2.0\n',
     "tier 'premium' lists no tenants"),
    ('[governor]\n[[governor.tiers]]\nname = "premium"\ntenants = ["alice"]\n', "states no SLO (objective missing)"),
    ('[governor]\n[[governor.tiers]]\nname = "premium"\ntenants = ["alice"]\nobjective = 0.99\n',
     "states no SLO (ttft_s or tpot_s missing)"),
]


def _one_line_error(capsys, args: list[str], words: str) -> None:
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and "(" in err   # the problem and, in parentheses, the fix


@pytest.mark.parametrize("text, words", HOLES)
def test_the_gateways_governor_file_needs_tiers_with_tenants_and_an_slo(tmp_path, capsys, text, words):
    path = tmp_path / "tiers.toml"
    path.write_text(text)
    # Refused before the upstream is probed: port 1 is never reached.
    _one_line_error(capsys, ["--upstream", "http://127.0.0.1:1", "--governor", str(path)], words)


@pytest.mark.parametrize("text, words", HOLES)
def test_the_engines_governor_in_a_serve_config_is_checked_the_same_way(tmp_path, capsys, text, words):
    path = tmp_path / "serve.toml"
    path.write_text('name = "s"\n[engine]\nmodel = "tiny"\n' + text)
    _one_line_error(capsys, [str(path), "--port", "0"], words)


def test_a_default_tier_may_list_no_tenants_and_the_tiers_reach_the_engine(tmp_path):
    path = tmp_path / "serve.toml"
    path.write_text('name = "s"\n[engine]\nmodel = "tiny"\npolicy = "budget"\n[governor]\n[[governor.tiers]]\n' + TIER
                    + 'protected = true\n[[governor.tiers]]\nname = "default"\ncriticality = 2\nobjective = 0.9\n'
                      'tpot_s = 1.0\n')
    settings = load_serve_settings(path)
    config = settings.governor_config()
    assert [(t.name, t.tenants, t.protected) for t in config.tiers] == [
        ("premium", ("alice",), True), ("default", (), False)]
    assert config.tier_of("alice").name == "premium" and config.tier_of("bob").name == "default"
    db = tmp_path / "serve.duckdb"
    loop = EngineLoop(settings, str(db))
    loop.start()
    try:
        assert loop.engine.scheduler.has_tiers
        assert [t.name for t in loop.engine.scheduler.governor_config.tiers] == ["premium", "default"]
    finally:
        loop.stop()
    con = connect_readonly(db)   # the governor's telemetry, as the harness records it: its final counters
    tiers = {r[0] for r in con.execute("SELECT tier FROM control_actions WHERE action = 'final_counters'").fetchall()}
    con.close()
    assert tiers == {"premium", "default", None}   # None: the length predictor's accuracy row


@pytest.mark.parametrize("serve, words", [
    ("default_max_tokens = 2000\nmax_tokens_limit = 1024\n", "default_max_tokens (2000) is above max_tokens_limit"),
    ("max_in_flight = 0\n", "serve.max_in_flight"),
])
def test_contradictory_or_empty_serve_limits(tmp_path, capsys, serve, words):
    path = tmp_path / "serve.toml"
    path.write_text("[serve]\n" + serve)
    _one_line_error(capsys, [str(path), "--port", "0"], words)


@pytest.mark.parametrize("engine, words", [
    ("max_num_seqs = 0", "engine.max_num_seqs"), ("max_queue_len = -1", "engine.max_queue_len"),
    ("num_kv_blocks = 0", "engine.num_kv_blocks")])
def test_zero_seats_or_a_negative_queue_are_refused(tmp_path, capsys, engine, words):
    path = tmp_path / "serve.toml"
    path.write_text(f'[engine]\nmodel = "tiny"\n{engine}\n')
    _one_line_error(capsys, [str(path), "--port", "0"], words)

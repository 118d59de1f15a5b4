"""The diagnosis on causes a marker could steal: longer prompts beside a chance rise in load, a tenant flood,
collinear pushes; 'what changed' first; and the window-level tests it rests on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from causalsre.causal import load_graph
from causalsre.causal.changes import rate_change, workload_shifts
from causalsre.causal.players import Player, merge_collinear, split_joint, tenant_shares
from causalsre.causal.postmortem import postmortem
from causalsre.telemetry import connect_readonly
from causalsre.windows import parse_window

FAST = dict(n_pairs=600, n_boot=100, top_requests=0)


def _run(path, **kwargs):
    con = connect_readonly(path)
    try:
        return postmortem(con, None, parse_window("phase:baseline", con), parse_window("phase:incident", con),
                          load_graph(), seed=0, **{**FAST, **kwargs})
    finally:
        con.close()


def _causes(result) -> list[str]:
    return [a["factor"] for a in result["attributions"] if a["role"] == "cause"]


def test_longer_prompts_beside_a_chance_rise_in_load_blame_the_prompts(make_db):
    # 10 % more arrivals in the incident by chance: the rate must not take the prompts' effect.
    result = _run(make_db(fault="prompt_tokens", phase_s=60.0, incident_rate_jitter=1.1))
    assert _causes(result)[0] == "prompt_tokens"
    top = result["attributions"][0]
    assert top["ci_low"] > 0 and set(top["nodes"]) >= {"prompt_tokens", "recent_prompt_tokens"}
    rate = next(c for c in result["changes"] if c["name"] == "arrival_rate")
    assert not rate["significant"]  # a 10 % rise over a minute of Poisson arrivals is within its noise


def test_a_tenant_flood_is_named_as_the_tenant_not_the_load(make_db):
    result = _run(make_db(fault="tenant", phase_s=60.0))
    assert _causes(result)[0] == "tenant"
    assert result["tenant_composition_share"]["arrival_rate"] > 0.9
    tenant = next(c for c in result["changes"] if c["name"] == "tenant")
    assert tenant["significant"] and tenant["largest_rise"] == "flood"


def test_a_uniform_surge_stays_with_the_arrival_rate(make_db):
    result = _run(make_db(fault="arrival_rate", phase_s=60.0))
    assert _causes(result)[0] == "arrival_rate"
    assert result["tenant_composition_share"] == {}  # the mix did not move: nothing to move to the tenant


def test_what_changed_lists_the_pushed_setting_first(make_db):
    result = _run(make_db(fault="max_num_seqs", phase_s=40.0))
    first = result["changes"][0]
    assert (first["kind"], first["name"], first["baseline"], first["incident"]) == ("setting", "max_num_seqs", 32, 6)
    assert [c["name"] for c in result["changes"] if c["kind"] == "setting"] == ["max_num_seqs"]


def test_what_changed_comes_even_when_nothing_burned(make_db):
    result = _run(make_db(fault="none", phase_s=30.0, timeout_s=100.0))
    assert result["nothing_to_attribute"]
    assert {c["name"] for c in result["changes"]} >= {"arrival_rate", "prompt_tokens", "tenant"}
    assert not any(c["significant"] for c in result["changes"])


def _arrivals(rate: float, seconds: float, rng, tenants=("a", "b")) -> pd.DataFrame:
    n = rng.poisson(rate * seconds)
    times = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, seconds, n)), unit="s")
    return pd.DataFrame({"run_id": "r", "arrival_ts": times, "tenant": rng.choice(list(tenants), n),
                         "prompt_tokens": rng.integers(10, 100, n), "output_tokens": rng.integers(5, 50, n)})


def test_rate_change_detects_a_doubling_and_not_noise():
    rng = np.random.default_rng(0)
    base, same, double = _arrivals(10, 60, rng), _arrivals(10, 60, rng), _arrivals(20, 60, rng)
    assert not rate_change(base, same)["significant"]
    change = rate_change(base, double)
    assert change["significant"] and change["incident"] / change["baseline"] == pytest.approx(2.0, rel=0.15)


def test_burstier_gaps_are_detected():
    rng = np.random.default_rng(1)
    base = _arrivals(10, 60, rng)
    gaps = rng.gamma(0.1, 1 / (10 * 0.1), 600)
    times = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.cumsum(gaps), unit="s")
    bursty = pd.DataFrame({"run_id": "r", "arrival_ts": times, "tenant": "a", "prompt_tokens": 50,
                           "output_tokens": 20})
    shift = next(s for s in workload_shifts(base, bursty) if s["name"] == "burstiness")
    assert shift["significant"] and shift["incident"] > 3 * shift["baseline"]


def test_tenant_shares_split_composition_from_level():
    rng = np.random.default_rng(2)
    base = _arrivals(10, 60, rng)
    surge = _arrivals(20, 60, rng)
    flood = pd.concat([_arrivals(10, 60, rng), _arrivals(10, 60, rng, tenants=("new",))]).sort_values("arrival_ts")
    assert tenant_shares(base, surge) == {}
    shares = tenant_shares(base, flood)
    assert shares["arrival_rate"] == pytest.approx(1.0, abs=0.1)


def test_collinear_pushes_share_one_joint_player_equally():
    graph = load_graph()
    base = pd.DataFrame({"max_num_seqs": [16.0] * 5, "num_kv_blocks": [256.0] * 5, "cpu_contention": [0.0, 1, 0, 1, 0]})
    inc = pd.DataFrame({"max_num_seqs": [4.0] * 5, "num_kv_blocks": [40.0] * 5, "cpu_contention": [1.0, 1, 0, 1, 1]})
    players = [Player("max_num_seqs", ("max_num_seqs",), "distribution", "cause", 1.0),
               Player("num_kv_blocks", ("num_kv_blocks",), "distribution", "cause", 1.0),
               Player("cpu_contention", ("cpu_contention",), "distribution", "cause", 0.3)]
    merged, originals = merge_collinear(players, base, inc, graph)
    assert [p.factor for p in merged] == ["max_num_seqs+num_kv_blocks", "cpu_contention"]
    phi, split = split_joint(np.array([[0.8, 0.6], [0.1, 0.1]]), merged, originals)
    assert [p.factor for p in split] == ["max_num_seqs", "num_kv_blocks", "cpu_contention"]
    assert phi[:, 0].tolist() == pytest.approx([0.4, 0.4, 0.1])

"""A trailing aggregate follows the player that moved its factor (issue #19: a tenant flood with longer replies
plus a KV shrink was attributed nothing, 78 points in "other", because the recent arrivals' output length kept
its baseline values in every coalition)."""

from __future__ import annotations

from causalsre.causal import load_graph
from causalsre.causal.mechanisms import Change
from causalsre.causal.players import group_players


def _nodes_of(players, factor):
    return next(p.nodes for p in players if p.factor == factor)


def test_recent_lengths_join_the_tenant_when_only_the_tenant_changed():
    graph = load_graph()
    # The flood's longer replies: output_tokens moved only through its parent (the tenant), so it is no change
    # of its own; the tenant is, and so is the KV cache.
    players = group_players([Change("tenant", "distribution", 0.5, 1e-6),
                             Change("num_kv_blocks", "distribution", 1.0, 0.0)], graph)
    assert {"recent_output_tokens", "recent_prompt_tokens"} <= set(_nodes_of(players, "tenant"))
    assert _nodes_of(players, "num_kv_blocks") == ("num_kv_blocks",)


def test_a_length_that_changed_itself_keeps_its_own_aggregate():
    graph = load_graph()
    players = group_players([Change("tenant", "distribution", 0.5, 1e-6),
                             Change("output_tokens", "mechanism", 0.6, 1e-9)], graph)
    assert "recent_output_tokens" in _nodes_of(players, "output_tokens")
    assert "recent_output_tokens" not in _nodes_of(players, "tenant")


def test_no_player_upstream_leaves_the_aggregate_out():
    players = group_players([Change("num_kv_blocks", "distribution", 1.0, 0.0)], load_graph())
    assert [p.nodes for p in players] == [("num_kv_blocks",)]


def test_a_length_that_did_not_move_lends_nothing_to_the_tenant():
    # A chance shift of the tenant mix beside a rate surge: the lengths' window-level tests say steady, so their
    # recent aggregates (marks of the window) must not ride with the tenant.
    changes = [Change("tenant", "distribution", 0.2, 1e-3), Change("offered_rate", "distribution", 1.0, 0.0)]
    players = group_players(changes, load_graph(), moved={"arrival_rate", "tenant"})
    assert _nodes_of(players, "tenant") == ("tenant",)
    players = group_players(changes, load_graph(), moved={"arrival_rate", "tenant", "output_tokens"})
    assert "recent_output_tokens" in _nodes_of(players, "tenant")
    assert "recent_prompt_tokens" not in _nodes_of(players, "tenant")

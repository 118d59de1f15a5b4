"""Every leaf command takes --json (a script can learn what a command did), with an explicit exemption list;
the shared options are the ones of causalsre/cli/options.py."""

from __future__ import annotations

import click
import pytest

from causalsre.cli.main import cli

# Leaf commands without --json, each with the reason. Keep this short: a new command gets --json.
EXEMPT = {
    "docs cli": "prints docs/cli.md itself; its output is the page, not a result",
    "docs schema": "prints docs/telemetry.md itself; its output is the page, not a result",
}


def _leaves(command: click.Command, path: tuple[str, ...] = ()):
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from _leaves(command.get_command(ctx, name), path + (name,))
    else:
        yield " ".join(path), command


LEAVES = dict(_leaves(cli))


def test_the_walk_finds_the_commands():
    # the walk must reach nested groups, or the test below passes on nothing
    assert {"db init", "db import requests", "harness suite", "graph show", "slo report", "postmortem"} <= set(LEAVES)
    assert len(LEAVES) >= 30


@pytest.mark.parametrize("name", sorted(LEAVES))
def test_every_leaf_command_has_json(name):
    flags = {opt for p in LEAVES[name].params if isinstance(p, click.Option) for opt in p.opts}
    if name in EXEMPT:
        assert "--json" not in flags, f"{name} has --json now: remove it from EXEMPT"
        return
    assert "--json" in flags, f"`causalsre {name}` has no --json (add options.json_option(), or justify in EXEMPT)"


@pytest.mark.parametrize("name", sorted(LEAVES))
def test_the_shared_flags_keep_one_spelling(name):
    # --db always names a file; --json is always a flag bound to as_json; --window always takes the grammar
    for param in LEAVES[name].params:
        if not isinstance(param, click.Option):
            continue
        if "--json" in param.opts:
            assert param.is_flag and param.name == "as_json", name
        if "--db" in param.opts:
            assert isinstance(param.type, click.Path) and not param.type.dir_okay, name
        if "--window" in param.opts:
            assert "+S:+E@<run>" in (param.help or ""), f"{name} --window does not document the window grammar"

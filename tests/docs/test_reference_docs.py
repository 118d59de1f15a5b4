"""Generated reference pages must match what the code says."""

from __future__ import annotations

from causalsre.cli.reference import render as render_cli
from causalsre.telemetry.schema_docs import render as render_schema
from tests.conftest import REPO_ROOT


def test_cli_reference_matches_the_commands():
    documented = (REPO_ROOT / "docs" / "cli.md").read_text()
    assert documented == render_cli(), "docs/cli.md drifted: run `causalsre docs cli > docs/cli.md`"


def test_schema_reference_matches_the_migrations():
    documented = (REPO_ROOT / "docs" / "telemetry.md").read_text()
    assert documented == render_schema(), "docs/telemetry.md drifted: run `causalsre docs schema > docs/telemetry.md`"


def test_every_command_has_an_example_in_its_help():
    text = render_cli()
    blocks = text.split("```text")[1:]
    leaf_blocks = [b for b in blocks if "Commands:" not in b]
    missing = [b.splitlines()[1] for b in leaf_blocks if "Example:" not in b]
    assert not missing, f"commands without an Example: line in their help: {missing}"


def test_reference_holds_no_machine_specific_paths():
    text = render_cli()
    assert str(REPO_ROOT) not in text and "/root/" not in text, "a default shows an absolute path: use show_default"

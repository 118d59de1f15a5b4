"""A corpus of bad inputs, driven end to end through the CLI.

`world` builds, once per test, a set of real files: a good telemetry database, databases with a missing
table / an older / a newer schema, and bad specs. Each case names its argv (with {placeholders} for those
files) and a fragment the one-line error must contain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_writable, migrate
from tests.conftest import FIXTURES


@dataclass
class World:
    root: Path

    def path(self, name: str) -> Path:
        return self.root / name

    def fingerprint(self) -> dict[str, str]:
        """A hash of every database file, to prove a failed command changed nothing."""
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(self.root.glob("*.duckdb"))}


def build_world(root: Path) -> World:
    good = root / "good.duckdb"
    con = connect_writable(good)
    from causalsre.telemetry.imports import import_requests_file

    import_requests_file(con, FIXTURES / "requests_small.csv")
    con.close()
    missing = root / "missing_table.duckdb"
    con = connect_writable(missing)
    con.execute("DROP VIEW request_metrics")
    con.execute("DROP TABLE requests")
    con.close()
    older = root / "older.duckdb"
    con = duckdb.connect(str(older))
    migrate(con, target=1)
    con.close()
    newer = root / "newer.duckdb"
    con = connect_writable(newer)
    con.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'from_the_future')")
    con.close()
    (root / "not_a_db.duckdb").write_text("plain text, not a database")
    (root / "empty.yaml").write_text("")
    (root / "not_yaml.yaml").write_text("key: [unclosed\n")
    return World(root)


@pytest.fixture
def world(tmp_path) -> World:
    return build_world(tmp_path)


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err

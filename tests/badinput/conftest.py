"""A corpus of bad inputs, driven end to end through the CLI.

`world` gives each test its own copy of a set of real files, built once per session: a good telemetry
database, the shipped harness scenario suite (runs with phases), databases with a missing table / an older /
a newer schema, and bad specs, configs, graphs and tables (``BAD_FILES``). Each case names its argv (with
{placeholders} for those files) and a fragment the one-line error must contain.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_writable, migrate
from tests.badinput.bad_files import BAD_FILES, GOOD_SLO, SUITE
from tests.conftest import FIXTURES


@dataclass
class World:
    root: Path

    def path(self, name: str) -> Path:
        return self.root / name

    def fingerprint(self) -> dict[str, str]:
        """A hash of every database file (and its WAL), to prove a failed command changed nothing."""
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(self.root.glob("*.duckdb*")) if p.is_file()}  # a hostile FIFO is never read


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
    (root / "empty_db.duckdb").unlink(missing_ok=True)
    connect_writable(root / "empty_db.duckdb").close()  # the schema, no runs
    if SUITE.is_file():
        shutil.copy(SUITE, root / "suite.duckdb")
    shutil.copy(GOOD_SLO, root / "slo.yaml")
    (root / "not_a_db.duckdb").write_text("plain text, not a database")
    for name, text in BAD_FILES.items():
        (root / name).write_text(text)
    frame = pd.read_csv(FIXTURES / "requests_small.csv")
    frame.drop(columns=["ttft_s"]).to_parquet(root / "no_ttft.parquet")
    frame.assign(arrival_time="yesterday at noon").to_parquet(root / "bad_times.parquet")
    frame.assign(prompt_tokens="many").to_parquet(root / "wrong_types.parquet")
    return World(root)


@pytest.fixture(scope="session")
def world_template(tmp_path_factory) -> Path:
    return build_world(tmp_path_factory.mktemp("world_template")).root


@pytest.fixture
def world(tmp_path, world_template) -> World:
    """A fresh copy of the template world: a case that (wrongly) wrote a file cannot affect the next."""
    root = tmp_path / "world"
    shutil.copytree(world_template, root)
    return World(root)


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def refused(argv: list[str], fragment: str, capsys) -> str:
    """Run the CLI and check it refused as a user error: exit 2, one `error:` line naming ``fragment``."""
    code, out, err = run_cli(argv, capsys)
    assert code == 2, (code, out[-300:], err[-300:])
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in out + err, err[-500:]
    assert fragment.lower() in err.lower(), err
    return err

"""--db FILE in every db command, the old positional PATH still working, and --json telling a script what
was created (the schema version, the new run id)."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import one_error_line


@pytest.mark.parametrize("command", ["info", "check"])
def test_db_takes_the_option_and_the_old_positional_alike(synthetic_db, cli, command):
    new = cli("db", command, "--db", synthetic_db, "--json")
    old = cli("db", command, synthetic_db, "--json")
    assert new[0] == old[0] == 0 and new[1] == old[1]
    assert cli("db", command, synthetic_db, "--db", synthetic_db)[0] == 0  # the same file twice is fine


def test_two_different_databases_or_none_is_one_line(synthetic_db, cli, tmp_path):
    code, out, err = cli("db", "info", synthetic_db, "--db", tmp_path / "other.duckdb")
    assert code == 2 and "two databases" in one_error_line(err) and "--db FILE" in err
    code, out, err = cli("db", "info")
    assert code == 2 and "no database given" in one_error_line(err)


def test_the_help_shows_only_the_new_spelling(cli):
    code, out, _ = cli("db", "info", "--help")
    assert code == 0 and "Usage: causalsre db info [OPTIONS]\n" in out and "--db FILE" in out


def test_init_migrate_export_and_import_print_json(tmp_path, cli):
    db = tmp_path / "new.duckdb"
    code, out, _ = cli("db", "init", "--db", db, "--json")
    created = json.loads(out)
    assert code == 0 and created["created"] is True and created["schema_version"] >= 1
    assert json.loads(cli("db", "init", db, "--json")[1])["created"] is False  # the old spelling, again
    migrated = json.loads(cli("db", "migrate", "--db", db, "--json")[1])
    assert migrated == {"db": str(db), "from_version": created["schema_version"],
                        "schema_version": created["schema_version"], "migrated": False}

    csv = tmp_path / "requests.csv"
    csv.write_text("arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status\n"
                   + "".join(f"2026-01-01T00:00:0{i}Z,0.1,0.5,10,20,ok\n" for i in range(5)))
    code, out, _ = cli("db", "import", "requests", csv, "--db", db, "--json")
    (run,) = json.loads(out)["runs"]
    assert code == 0 and run["requests"] == 5
    info = json.loads(cli("db", "info", "--db", db, "--json")[1])
    assert [r["run_id"] for r in info["run_list"]] == [run["run_id"]]  # a script learned the new run id

    code, out, _ = cli("db", "export", "--db", db, "--parquet", tmp_path / "pq", "--json")
    exported = json.loads(out)
    assert code == 0 and exported["rows"]["requests"] == 5 and (tmp_path / "pq").is_dir()

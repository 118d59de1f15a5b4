"""Import a recorded real-vLLM case (tests/fixtures/vllm_real/...) as a user would, with the CLI, and run the
postmortem of one case against another: shared by the tests of the fixtures and of the unseen cases."""

from __future__ import annotations

import json
from pathlib import Path

from causalsre.cli.main import main

SLO = str(Path(__file__).resolve().parents[2] / "models" / "slos" / "llm-serving.yaml")


def import_case(db: Path, folder: Path, case: str, capsys, notes: list | None = None) -> str:
    """The case's bench file as a new run, its scrapes attached to it (a file per scrape, or one gzipped log);
    the import's notes go into ``notes``. Returns the run id."""
    assert main(["db", "import", "vllm-bench", str(folder / case / "bench.json.gz"), "--name", case,
                 "--db", str(db), "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["runs"][0]["run_id"]
    log = folder / case / "scrapes" / "scrapes.prom.gz"
    files = [str(log)] if log.exists() else sorted(map(str, (folder / case / "scrapes").glob("metrics-*.prom")))
    assert main(["db", "import", "prometheus", *files, "--run", run_id, "--db", str(db), "--json"]) == 0
    if notes is not None:
        notes.extend(json.loads(capsys.readouterr().out)["runs"][0].get("notes", []))
    capsys.readouterr()
    return run_id


def postmortem_of(tmp_path: Path, folder: Path, baseline: str, incident: str, capsys) -> dict:
    db = tmp_path / "t.duckdb"
    base, inc = import_case(db, folder, baseline, capsys), import_case(db, folder, incident, capsys)
    code = main(["postmortem", "--db", str(db), "--slo", SLO, "--baseline", f"run:{base}",
                 "--incident", f"run:{inc}", "--seed", "0", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)

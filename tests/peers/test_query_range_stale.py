"""A Prometheus ``query_range`` export at a 1 s step of a server scraped every 15 s repeats each real sample
for 15 steps (the stale value): its timestamps say 1 s, its values say 15 s. Derived from the real vLLM
fixtures (tests/fixtures/vllm_real): the scrapes thinned to one every 15 s, then exported the way Prometheus
answers a range query (the latest sample at or before each step). The import must see the real interval and
apply the sparse-scrape rule (gauges unmeasured, said at import); the same export of the every-second scrapes
must not be called sparse. No vLLM needed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest

from causalsre.evaluation.score import names_a_cause
from tests.peers.test_operator_files_real_vllm import FOLDER, _bench, _cli, _postmortem, _scrapes, _top_cause

pytestmark = pytest.mark.skipif(not (FOLDER / "cases.json").exists(), reason="fixtures absent")
STEP_S = 1.0


def _query_range(tmp_path: Path, capsys, case: str, every_s: float) -> Path:
    """The case's scrapes thinned to ``every_s``, as a ``query_range`` matrix at a 1 s step."""
    db = tmp_path / f"scratch-{case}-{every_s:g}.duckdb"
    code, _, err = _cli(capsys, "db", "import", "prometheus", *_scrapes(case, every_s), "--name", case, "--db", db)
    assert code == 0, err
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT metric, labels_json, epoch_us(r.started_at) / 1e6 + ts_ns / 1e9, value "
                       "FROM metric_samples JOIN runs r USING (run_id) ORDER BY metric, labels_json, ts_ns").fetchall()
    con.close()
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for metric, labels, ts, value in rows:
        series.setdefault((metric, labels), []).append((ts, value))
    start = min(ts for _, _, ts, _ in rows)
    end = max(ts for _, _, ts, _ in rows)
    result = []
    for (metric, labels), points in series.items():
        values, i, t = [], 0, float(int(start)) + STEP_S
        while t <= end + STEP_S:
            while i + 1 < len(points) and points[i + 1][0] <= t:
                i += 1
            if points[i][0] <= t:  # Prometheus's answer at step t: the latest sample at or before it
                values.append([t, repr(points[i][1])])
            t += STEP_S
        result.append({"metric": {"__name__": metric, **json.loads(labels)}, "values": values})
    path = tmp_path / f"{case}-{every_s:g}.json"
    path.write_text(json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}))
    return path


def _import(db: Path, capsys, case: str, export: Path) -> tuple[str, str, dict]:
    code, out, err = _cli(capsys, "db", "import", "vllm-bench", _bench(case), "--name", case, "--db", db, "--json")
    assert code == 0, err
    run_id = json.loads(out)["runs"][0]["run_id"]
    code, out, err = _cli(capsys, "db", "import", "prometheus", export, "--run", run_id, "--db", db, "--json")
    assert code == 0, err
    return run_id, err, json.loads(out)["runs"][0]


def test_a_1_s_export_of_15_s_scrapes_is_sparse_and_still_names_the_cause(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    base, _, _ = _import(db, capsys, "baseline", _query_range(tmp_path, capsys, "baseline", 15.0))
    inc, err, run = _import(db, capsys, "fewer_seqs", _query_range(tmp_path, capsys, "fewer_seqs", 15.0))
    # The timestamps are 1 s apart; the values change every ~15 s (the fixtures leave idle stretches out).
    assert re.search(r"scraped every ~(1[4-9]|[2-9]\d) s", err), err
    assert any("too sparse" in note for note in run["notes"])
    result = _postmortem(db, capsys, base, inc)
    top = _top_cause(result)
    assert top["factor"] == "max_num_seqs" and names_a_cause(result) == "max_num_seqs"
    # The gauges are unmeasured, so no stale waiting gauge takes the change (it did at +16.7 of 55 points).
    assert top["contribution"] > 0.5 * result["total_change"], (top, result["total_change"])


def test_a_1_s_export_of_the_every_second_scrapes_is_not_sparse(tmp_path, capsys):
    # The fixtures were scraped every 1.3-2.2 s (a busy machine), so a 1 s step repeats about half the samples
    # too: the real scrapes still change some series at nearly every one.
    db = tmp_path / "t.duckdb"
    _, err, run = _import(db, capsys, "fewer_seqs", _query_range(tmp_path, capsys, "fewer_seqs", 0.0))
    assert "too sparse" not in err and not any("too sparse" in note for note in run.get("notes", [])), err

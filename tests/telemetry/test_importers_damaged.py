"""Damaged and hostile real-world files, made from the version fixtures: each import fails in one line naming
the problem and the fix (exit 2), and the database it was aimed at is byte-identical and still valid."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from causalsre.cli.main import main
from causalsre.telemetry import connect_readonly

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "vllm_versions"
BENCH = FOLDER / "bench" / "benchmark_serving_0049e29_baseline.json"
V0 = FOLDER / "v0_scrapes_baseline.prom"
OM = sorted((FOLDER / "v1_openmetrics_incident").glob("*.om"))[0]


def _first_scrape() -> str:
    text = V0.read_text()
    return text[: text.index("# scrape_time", 10)]


def _cut_mid_line(tmp: Path) -> list[Path]:
    text = _first_scrape()
    return [_write(tmp / "cut.prom", text[: text.index("vllm:num_requests_waiting{") + 30])]


def _duplicate(tmp: Path) -> list[Path]:
    text = _first_scrape()
    return [_write(tmp / "dup.prom", text + 'vllm:num_requests_waiting{model_name="llama"} 3.0\n')]


def _two_scrapes_one_time(tmp: Path) -> list[Path]:
    body = _first_scrape()
    return [_write(tmp / "two.prom", body + body.split("\n", 1)[1])]  # a second scrape, no `# scrape_time`


def _histogram_without_count(tmp: Path) -> list[Path]:
    lines = [line for line in _first_scrape().splitlines(keepends=True)
             if not line.startswith("vllm:time_per_output_token_seconds_count")]
    return [_write(tmp / "nocount.prom", "".join(lines))]


def _negative_counter(tmp: Path) -> list[Path]:
    text = _first_scrape().replace('vllm:num_preemptions_total{model_name="llama"} 0.0',
                                   'vllm:num_preemptions_total{model_name="llama"} -4.0')
    return [_write(tmp / "neg.prom", text)]


def _disagreeing_files(tmp: Path) -> list[Path]:
    text = _first_scrape()
    other = text.replace('vllm:num_requests_waiting{model_name="llama"} 0.0',
                         'vllm:num_requests_waiting{model_name="llama"} 9.0')
    return [_write(tmp / "a.prom", text), _write(tmp / "b.prom", other)]


def _truncated_gzip(tmp: Path) -> list[Path]:
    packed = gzip.compress(OM.read_bytes())
    path = tmp / "metrics-1772362800.om.gz"
    path.write_bytes(packed[: len(packed) // 2])
    return [path]


def _openmetrics_corrupt_value(tmp: Path) -> list[Path]:
    text = OM.read_text().replace('vllm_num_requests_running{engine="0",model_name="llama"} 4.0',
                                  'vllm_num_requests_running{engine="0",model_name="llama"} 4.O')
    assert "4.O" in text
    return [_write(tmp / "metrics-1772362800.om", text)]


def _good_then_bad(tmp: Path) -> list[Path]:
    return [V0, *_cut_mid_line(tmp)]  # the good file of the same command is not written either


def _truncated_json(tmp: Path) -> list[Path]:
    text = BENCH.read_text()
    return [_write(tmp / "bench.json", text[: len(text) // 2])]


def _appended_last_line_cut(tmp: Path) -> list[Path]:
    one = json.dumps(json.loads(BENCH.read_text()))  # --append-result: one result per line
    return [_write(tmp / "appended.json", one + "\n" + one + "\n" + one[:500])]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# (id, importer, how to make the files, fragment of the one-line error)
CASES = [
    ("scrape-cut-mid-line", "prometheus", _cut_mid_line, "ends mid-line"),
    ("series-twice", "prometheus", _duplicate, "appears twice"),
    ("two-scrapes-no-time", "prometheus", _two_scrapes_one_time, "`# scrape_time` line before each"),
    ("histogram-without-count", "prometheus", _histogram_without_count, "has buckets but no"),
    ("negative-counter", "prometheus", _negative_counter, "cannot be negative"),
    ("files-disagree", "prometheus", _disagreeing_files, "different values at the same time"),
    ("truncated-gzip", "prometheus", _truncated_gzip, "truncated gzip"),
    ("openmetrics-corrupt-value", "prometheus", _openmetrics_corrupt_value, "not an OpenMetrics scrape"),
    ("good-file-then-bad", "prometheus", _good_then_bad, "ends mid-line"),
    ("empty-scrape", "prometheus", lambda t: [_write(t / "metrics-1772362800.prom", "")], "is empty"),
    ("empty-bench", "vllm-bench", lambda t: [_write(t / "bench.json", "  \n")], "is empty"),
    ("empty-guidellm", "guidellm", lambda t: [_write(t / "benchmarks.json", "")], "is empty"),
    ("truncated-bench", "vllm-bench", _truncated_json, "truncated?"),
    ("appended-last-line-cut", "vllm-bench", _appended_last_line_cut, "the last result line is not valid JSON"),
    ("all-failed-bench", "vllm-bench", lambda t: [FOLDER / "bench" / "all_failed.json"], "--keep-failed"),
]


@pytest.fixture()
def db(tmp_path, capsys) -> Path:
    """A database that already holds a run: a failed import must leave it exactly as it was."""
    path = tmp_path / "t.duckdb"
    assert main(["db", "import", "vllm-bench", str(BENCH), "--db", str(path)]) == 0
    capsys.readouterr()
    return path


@pytest.mark.parametrize("case_id,kind,make,fragment", CASES, ids=[c[0] for c in CASES])
def test_a_damaged_file_is_one_line_and_changes_nothing(case_id, kind, make, fragment, db, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    files = make(folder)
    before = db.read_bytes()
    con = connect_readonly(db)
    run = con.execute("SELECT run_id FROM runs").fetchone()[0]
    con.close()
    extra = ["--run", run] if kind == "prometheus" else []
    code = main(["db", "import", kind, *map(str, files), "--db", str(db), *extra])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err, err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert db.read_bytes() == before
    con = connect_readonly(db)  # still a valid database with its one run
    assert con.execute("SELECT count(*) FROM requests").fetchone()[0] == 40
    con.close()


def test_a_huge_file_is_refused_with_its_size(db, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CAUSALSRE_IMPORT_MAX_MB", "0.004")  # 4 KB: the fixtures stand in for gigabytes
    assert main(["db", "import", "vllm-bench", str(BENCH), "--db", str(tmp_path / "u.duckdb")]) == 2
    assert "over the import limit" in capsys.readouterr().err
    bomb = tmp_path / "metrics-1772362800.prom.gz"
    bomb.write_bytes(gzip.compress(b"# " + b"x" * 2_000_000 + b"\n"))  # 2 MB of text in 2 KB
    assert bomb.stat().st_size < 4_000
    assert main(["db", "import", "prometheus", str(bomb), "--db", str(tmp_path / "u.duckdb")]) == 2
    assert "decompresses to more than" in capsys.readouterr().err
    assert not (tmp_path / "u.duckdb").exists()


def test_many_megabytes_of_scrape_text_are_refused_before_parsing(tmp_path, capsys, monkeypatch):
    import causalsre.telemetry.importers.prometheus as prometheus

    monkeypatch.setattr(prometheus, "TEXT_MAX_MB", 0)  # any text is over: the check comes before the parse
    assert main(["db", "import", "prometheus", str(V0), "--db", str(tmp_path / "u.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "over the 0 MB a command parses" in err and "query_range" in err


def test_nan_values_are_skipped_and_a_counter_reset_is_counted(tmp_path, capsys):
    # A vLLM restart between two scrapes: the preemption counter drops from 5 to 1, which is kept as scraped
    # (the join reads a drop as a restart) and counted; NaN and +Inf samples are skipped and counted.
    text = ("# scrape_time 1772359200\n# TYPE vllm:num_preemptions_total counter\n"
            'vllm:num_preemptions_total{model_name="m"} 5\n# TYPE vllm:kv_cache_usage_perc gauge\n'
            'vllm:kv_cache_usage_perc{model_name="m"} NaN\n'
            "# scrape_time 1772359205\n# TYPE vllm:num_preemptions_total counter\n"
            'vllm:num_preemptions_total{model_name="m"} 1\n# TYPE vllm:kv_cache_usage_perc gauge\n'
            'vllm:kv_cache_usage_perc{model_name="m"} +Inf\n')
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "prometheus", str(_write(tmp_path / "restart.prom", text)), "--db", str(db)]) == 0
    capsys.readouterr()
    con = connect_readonly(db)
    config = json.loads(con.execute("SELECT config_json FROM runs").fetchone()[0])
    values = [r[0] for r in con.execute("SELECT value FROM metric_samples ORDER BY ts_ns").fetchall()]
    con.close()
    assert config["counter_resets"] == 1 and config["skipped_non_finite"] == 2 and config["scrapes"] == 2
    assert values == [5.0, 1.0]

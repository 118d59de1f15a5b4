"""The postmortem on the files operators really have, derived from the real vLLM fixtures (tests/fixtures/vllm_real)
the way their setups differ from ours: scrapes every 15 s (Prometheus's default) instead of every second,
scrapes and no bench file, a bench file and no scrapes, a bench file saved without --save-detailed, a metadata
knob left out, and one scrape stream over two server restarts (counters and the info gauge reset). Each must
get the answer its files allow: the true cause where they carry it, and where they do not, a note or a
one-line refusal saying what is missing, never a traceback or a per-request claim. No vLLM needed.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from causalsre.cli.main import main
from causalsre.evaluation.score import names_a_cause

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "vllm_real"
SLO = str(Path(__file__).resolve().parents[2] / "models" / "slos" / "llm-serving.yaml")
pytestmark = pytest.mark.skipif(not (FOLDER / "cases.json").exists(), reason="fixtures absent")


def _bench(case: str) -> Path:
    return next(p for p in (FOLDER / case / "bench.json.gz", FOLDER / case / "bench.json") if p.exists())


def _doc(case: str) -> dict:
    data = _bench(case).read_bytes()
    return json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)


def _scrapes(case: str, every_s: float = 0.0) -> list[str]:
    """The case's scrape files, thinned to one every ``every_s`` seconds (the names carry the epoch)."""
    files = sorted((FOLDER / case / "scrapes").glob("metrics-*.prom"), key=lambda p: float(p.stem[8:]))
    kept, due = [], float("-inf")
    for path in files:
        if float(path.stem[8:]) >= due:
            kept.append(path)
            due = float(path.stem[8:]) + every_s
    return [str(p) for p in kept]


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main([*map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _import(db: Path, capsys, case: str, *, bench: Path | None = None, scrapes: list[str] | None = None) -> str:
    code, out, err = _cli(capsys, "db", "import", "vllm-bench", bench or _bench(case), "--name", case, "--db", db,
                          "--json")
    assert code == 0, err
    run_id = json.loads(out)["runs"][0]["run_id"]
    if scrapes is None:
        scrapes = _scrapes(case)
    if scrapes:
        code, out, err = _cli(capsys, "db", "import", "prometheus", *scrapes, "--run", run_id, "--db", db, "--json")
        assert code == 0, err
    return run_id


def _postmortem(db: Path, capsys, base: str, inc: str) -> dict:
    code, out, err = _cli(capsys, "postmortem", "--db", db, "--slo", SLO, "--baseline", f"run:{base}",
                          "--incident", f"run:{inc}", "--seed", "0", "--json")
    assert code == 0, err
    return json.loads(out)


def _top_cause(result: dict) -> dict:
    return max((a for a in result["attributions"] if a["role"] == "cause"), key=lambda a: a["contribution"])


def test_scrapes_every_15_s_leave_the_gauges_unmeasured_and_still_name_the_cause(tmp_path, capsys):
    # Stale gauges (0-15 s old at arrival) took max_num_seqs to +16.7 of 55 points, the rest an "unexplained"
    # change of the waiting gauge: now the run's gauges are unmeasured and the setting carries the change.
    db = tmp_path / "t.duckdb"
    base = _import(db, capsys, "baseline", scrapes=_scrapes("baseline", 15.0))
    code, out, err = _cli(capsys, "db", "import", "vllm-bench", _bench("fewer_seqs"), "--db", db, "--json")
    assert code == 0, err
    inc = json.loads(out)["runs"][0]["run_id"]
    code, out, err = _cli(capsys, "db", "import", "prometheus", *_scrapes("fewer_seqs", 15.0), "--run", inc,
                          "--db", db, "--json")
    # Said at import, on stderr and in --json (the fixtures leave idle stretches out: the median gap is >= 15 s).
    assert code == 0 and re.search(r"scraped every ~(1[5-9]|[2-9]\d) s", err), err
    assert any("too sparse" in note for note in json.loads(out)["runs"][0]["notes"])
    result = _postmortem(db, capsys, base, inc)
    top = _top_cause(result)
    assert top["factor"] == "max_num_seqs" and names_a_cause(result) == "max_num_seqs"
    assert top["contribution"] > 0.5 * result["total_change"], (top, result["total_change"])


def test_scrapes_without_a_bench_file_say_what_the_histograms_hold(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    runs = {}
    for case in ("baseline", "fewer_seqs"):
        code, out, err = _cli(capsys, "db", "import", "prometheus", *_scrapes(case), "--name", case, "--db", db,
                              "--json")
        assert code == 0, err
        run = json.loads(out)["runs"][0]
        runs[case] = run["run_id"]
        assert "no per-request rows" in err and "--run" in err, err
        # The request count from the histograms' increase is the bench file's own: a known right answer.
        assert f"{len(_doc(case)['ttfts'])} requests in the histograms" in run["notes"][-1], run["notes"]
        assert run["run_settings"] >= 1  # the KV pool (vllm:cache_config_info) is still recorded
    code, out, err = _cli(capsys, "postmortem", "--db", db, "--slo", SLO, "--baseline", f"run:{runs['baseline']}",
                          "--incident", f"run:{runs['fewer_seqs']}", "--json")
    assert code == 2 and err.count("\n") == 1 and "holds no requests" in err, err  # one line, no traceback
    assert "only metric samples" in err and "db import vllm-bench" in err, err  # says why and what to import


def test_a_bench_file_without_scrapes_names_a_recorded_setting(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    base, inc = _import(db, capsys, "baseline", scrapes=[]), _import(db, capsys, "fewer_seqs", scrapes=[])
    result = _postmortem(db, capsys, base, inc)
    assert names_a_cause(result) == "max_num_seqs"


def test_a_summary_only_bench_file_is_refused_with_its_aggregates(tmp_path, capsys):
    doc = {k: v for k, v in _doc("baseline").items() if not isinstance(v, list)}  # what vLLM saves without
    path = tmp_path / "summary.json"                                              # --save-detailed
    path.write_text(json.dumps(doc))
    code, out, err = _cli(capsys, "db", "import", "vllm-bench", path, "--db", tmp_path / "t.duckdb")
    assert code == 2 and err.count("\n") == 1, err
    assert "summary-only" in err and f"{doc['completed']} completed" in err and "--save-detailed" in err
    assert not (tmp_path / "t.duckdb").exists()  # nothing written


def test_a_missing_metadata_knob_is_said_and_no_setting_is_blamed(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    runs = []
    for case in ("baseline", "fewer_seqs"):
        doc = _doc(case)
        doc.pop("max_num_seqs")
        path = tmp_path / f"{case}.json"
        path.write_text(json.dumps(doc))
        code, out, err = _cli(capsys, "db", "import", "vllm-bench", path, "--db", db, "--json")
        assert code == 0 and "does not record max_num_seqs" in err, err
        runs.append(json.loads(out)["runs"][0]["run_id"])
        assert main(["db", "import", "prometheus", *_scrapes(case), "--run", runs[-1], "--db", str(db)]) == 0
        capsys.readouterr()
    result = _postmortem(db, capsys, *runs)
    # Nothing recorded says the server changed: the longer queue at the same load is an unexplained change of
    # the engine state (a cause the files do not measure), not a setting or the workload.
    assert "max_num_seqs" not in {c["name"] for c in result["changes"]}
    assert names_a_cause(result) is None, [(a["factor"], a["role"], a["contribution"]) for a in result["attributions"]]
    unexplained = sum(f["contribution"] for f in result["families"] if f["family"] == "unexplained")
    assert unexplained > 0.5 * result["total_change"], result["families"]


def test_one_scrape_stream_over_two_restarts_is_read_per_run(tmp_path, capsys):
    # An operator's scrapes span both servers (a restart with --num-gpu-blocks-override between): the same
    # stream goes to both runs; counters reset and the info gauge changes at the second process start.
    db = tmp_path / "t.duckdb"
    both = _scrapes("kv_baseline") + _scrapes("kv_shrink")
    base, inc = _import(db, capsys, "kv_baseline", scrapes=both), _import(db, capsys, "kv_shrink", scrapes=both)
    result = _postmortem(db, capsys, base, inc)
    settings = {c["name"]: (c["baseline"], c["incident"]) for c in result["changes"] if c["kind"] == "setting"}
    assert settings["num_kv_blocks"] == (256, 34)
    assert _top_cause(result)["factor"] == "num_kv_blocks" and _top_cause(result)["ci_low"] > 0


def test_fixture_folder_stays_small():
    # ~0.8 MB of cases the analysis was developed on plus ~0.4 MB of out-of-sample cases (unseen/), all gzipped:
    # a new case must earn its place, and a re-recording must not grow them unnoticed.
    size = sum(p.stat().st_size for p in FOLDER.rglob("*") if p.is_file())
    assert size < 1_400_000, size


def test_histogram_summary_reads_increases_across_a_restart():
    # Two scrapes of one server, then a restart (counters from 0) and one more: 10 + 4 requests, TTFT buckets
    # le=0.5 / 1 / +Inf. Increase: le=0.5 -> 4 + 2, le=1 -> 8 + 3, +Inf -> 10 + 4 (a drop counts the new value).
    import pandas as pd

    from causalsre.telemetry.importers.coverage import histogram_summary

    name = "vllm:time_to_first_token_seconds_bucket"
    rows = []
    for ts, counts in ((0.0, (0, 0, 0)), (10.0, (4, 8, 10)), (20.0, (2, 3, 4))):
        for le, count in zip(("0.5", "1.0", "+Inf"), counts):
            rows.append((ts, name, json.dumps({"engine": "0", "le": le}), float(count), "t"))
    summary = histogram_summary(pd.DataFrame(rows, columns=["ts_s", "metric", "labels_json", "value", "source"]))
    assert summary["requests"] == 14
    # p50: rank 7 of 14 falls in (0.5, 1] holding ranks 6-11: 0.5 + 0.5 * (7 - 6) / 5 = 0.6
    assert summary["ttft_s"]["p50"] == pytest.approx(0.6)
    assert summary["ttft_s"]["p99"] == pytest.approx(1.0)  # in +Inf: the largest finite bound, as Prometheus says

"""Real `vllm bench serve` files in the load modes an operator's throughput runs use: a closed loop
(``--request-rate inf --max-concurrency N``) and a linear ramp-up, with their 1 s ``/metrics`` scrapes
(tests/fixtures/vllm_real/loadmodes, recorded by ``python -m harness.peers.loadmodes`` against the peer vLLM
0.32.0: tiny shape, one core, four sequences). No vLLM needed.

In a closed loop the measured arrival rate follows the server's speed, so the graph makes it a mediator
(causalsre/causal/load_mode.py) and the clients' number, ``max_concurrency``, is the workload's setting:

* 16 clients instead of 4 on the same 4-seat server: 0 -> 42 of 48 bad; the cause is ``max_concurrency``,
  which before this change nothing recorded (the postmortem named no cause: "other" took the whole burn);
* the server restarted with ``--max-num-seqs 1``: 0 -> 26 of 40 bad, the sends a second fell from 7.0 to 3.1;
  ``max_num_seqs`` is named, and with the ``--metadata`` keys removed (a server change nobody recorded) no
  cause is named and ``arrival_rate`` is no player, where it took +4.5 points as a "cause" before;
* a ramp 2 -> 20 requests/s against a constant 1.5: an open loop, ``arrival_rate`` named as before.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from causalsre.evaluation.score import names_a_cause
from tests.conftest import query_rows
from tests.peers.vllm_fixture_cases import import_case, postmortem_of

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "vllm_real" / "loadmodes"
pytestmark = pytest.mark.skipif(not (FOLDER / "cases.json").exists(), reason="fixtures absent")
CASES = json.loads((FOLDER / "cases.json").read_text()) if (FOLDER / "cases.json").exists() else {}


def _factors(result: dict) -> list[str]:
    return [row["factor"] for row in result["attributions"]]


def _changes(result: dict) -> dict:
    return {c["name"]: c for c in result["changes"]}


def test_the_recording_is_real_and_in_each_load_mode():
    docs = {case: json.loads(gzip.decompress((FOLDER / case / "bench.json.gz").read_bytes())) for case in CASES}
    for case in ("closed_baseline", "closed_more_clients", "closed_fewer_seqs"):
        assert docs[case]["request_rate"] == "inf" and isinstance(docs[case]["max_concurrency"], int), case
    assert docs["ramp_up"]["ramp_up_strategy"] == "linear" and docs["ramp_up"]["rps_change_events"]
    assert all(d["backend"] == "vllm" and "start_times" in d and "queue_times" in d for d in docs.values())
    assert {c: CASES[c]["cause"] for c in ("closed_more_clients", "closed_fewer_seqs", "ramp_up")} == {
        "closed_more_clients": "max_concurrency", "closed_fewer_seqs": "max_num_seqs", "ramp_up": "arrival_rate"}


def test_more_clients_in_a_closed_loop_are_named_as_the_concurrency(tmp_path, capsys):
    result = postmortem_of(tmp_path, FOLDER, "closed_baseline", "closed_more_clients", capsys)
    assert result["load_mode"] == "closed_loop"
    assert (result["burn"]["baseline"]["bad_events"], result["burn"]["incident"]["bad_events"]) == (0, 42)
    changes = _changes(result)
    assert (changes["max_concurrency"]["baseline"], changes["max_concurrency"]["incident"]) == (4, 16)
    assert changes["arrival_rate"]["closed_loop"]
    assert names_a_cause(result) == "max_concurrency", _factors(result)
    assert "arrival_rate" not in _factors(result)


def test_a_slower_server_in_a_closed_loop_is_named_not_its_lower_rate(tmp_path, capsys):
    result = postmortem_of(tmp_path, FOLDER, "closed_baseline", "closed_fewer_seqs", capsys)
    rate = _changes(result)["arrival_rate"]
    assert rate["closed_loop"] and rate["significant"] and rate["incident"] < rate["baseline"] / 2
    assert names_a_cause(result) == "max_num_seqs", _factors(result)
    assert "arrival_rate" not in _factors(result)


def test_an_unrecorded_server_change_in_a_closed_loop_blames_no_arrival_rate(tmp_path, capsys):
    # The same files without --metadata: nothing records the restart. The burn then has no measured cause: it
    # shows as an unexplained change of the latencies, and the slower sends are not offered as a cause.
    folder = tmp_path / "nometa"
    for case in ("closed_baseline", "closed_fewer_seqs"):
        doc = json.loads(gzip.decompress((FOLDER / case / "bench.json.gz").read_bytes()))
        assert doc.pop("max_num_seqs") and doc.pop("max_num_batched_tokens")
        (folder / case / "scrapes").mkdir(parents=True)
        (folder / case / "bench.json.gz").write_bytes(gzip.compress(json.dumps(doc).encode()))
        (folder / case / "scrapes" / "scrapes.prom.gz").write_bytes(
            (FOLDER / case / "scrapes" / "scrapes.prom.gz").read_bytes())
    result = postmortem_of(tmp_path, folder, "closed_baseline", "closed_fewer_seqs", capsys)
    assert result["burn"]["incident"]["bad_events"] == 26 and names_a_cause(result) is None
    assert "arrival_rate" not in _factors(result)
    assert any(row["role"] == "unexplained" and row["contribution"] > 0.3 for row in result["attributions"])


def test_a_real_ramp_up_records_its_offered_rate_and_names_the_arrival_rate(tmp_path, capsys):
    result = postmortem_of(tmp_path, FOLDER, "open_baseline", "ramp_up", capsys)
    assert "load_mode" not in result and not any(c.get("closed_loop") for c in result["changes"])
    offered = _changes(result)["offered_rate"]
    # vLLM's linear ramp gives request i of 80 the rate 2 + 18 i / 79 (whole numbers in rps_change_events)
    assert offered["baseline"] == 1.5 and offered["incident"] == pytest.approx(7.7, abs=0.05)
    assert result["burn"]["incident"]["bad_events"] == 31 and names_a_cause(result) == "arrival_rate"


def test_a_closed_loop_import_records_its_clients(tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    run_id = import_case(db, FOLDER, "closed_more_clients", capsys)
    assert query_rows(db, "SELECT setting, value FROM run_settings WHERE run_id = ? AND setting = 'max_concurrency'",
                      [run_id]) == [("max_concurrency", 16.0)]
    (config,) = query_rows(db, "SELECT config_json FROM runs WHERE run_id = ?", [run_id])[0]
    assert json.loads(config)["closed_loop"] == {"max_concurrency": 16}


@pytest.mark.parametrize("incident, bad, named", [("heldout_more_clients", 6, "max_concurrency"),
                                                  ("heldout_control", 0, None)])
def test_held_out_closed_loops_recorded_after_the_change(tmp_path, capsys, incident, bad, named):
    # Recorded with seed 588100400, drawn after load_mode.py was frozen (88db018): 10 clients on 4 seats burned
    # 6 of 40 (the graph before it named arrival_rate); the control re-run burned none and names nothing.
    result = postmortem_of(tmp_path, FOLDER, "heldout_closed_baseline", incident, capsys)
    assert result["burn"]["incident"]["bad_events"] == bad and names_a_cause(result) == named
    assert "arrival_rate" not in _factors(result)

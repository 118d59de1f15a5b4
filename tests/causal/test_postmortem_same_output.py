"""The postmortem's output does not depend on how fast its pieces are computed: with the subsample's hash
prefilter (rank only the requests under a per-stratum threshold) and without it (rank every request, the
original computation), a seeded incident gives the same JSON, field for field."""

from __future__ import annotations

import json

import pytest

from causalsre.causal import load_graph, subsample
from causalsre.causal import postmortem as pm
from causalsre.telemetry import connect_readonly
from causalsre.windows import parse_window


@pytest.mark.slow  # two postmortems of ~40k requests: ~40 s on a busy 2-core machine
def test_postmortem_is_identical_with_and_without_the_hash_prefilter(make_db, monkeypatch):
    path = make_db(fault="cpu_contention", arrival_rate=170.0, max_num_seqs=1400.0)
    monkeypatch.setattr(subsample, "CAP", 4000)  # both windows subsampled
    outputs = []
    for margin_sd in (subsample.MARGIN_SD, -1e6):  # -1e6: every threshold short, every request ranked
        monkeypatch.setattr(subsample, "MARGIN_SD", margin_sd)
        con = connect_readonly(path)
        try:
            result = pm.postmortem(con, None, parse_window("phase:baseline", con),
                                   parse_window("phase:incident", con), load_graph(), seed=0)
        finally:
            con.close()
        outputs.append(json.dumps(result, sort_keys=True, default=str))
    assert outputs[0] == outputs[1]
    result = json.loads(outputs[0])
    assert result["subsample"]["fraction"] < 1 and result["attributions"][0]["factor"] == "cpu_contention"

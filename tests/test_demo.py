"""The demo end to end (gcm only, to keep it short): the right cause, a verified what-if, a rendered report."""

from __future__ import annotations

import json

import pytest

from causalsre.cli.main import main
from causalsre.demo import DATASET

pytestmark = pytest.mark.skipif(not DATASET.exists(), reason="the shipped dataset is absent")


@pytest.mark.slow
def test_demo_finds_the_injected_cause_and_verifies_the_fix(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--method", "gcm", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    top = next(a for a in result["postmortem"]["attributions"] if a["family"] != "other")
    assert top["factor"] == "max_num_seqs" and result["truth"] == ["max_num_seqs"]
    whatif = result["whatif"]
    assert whatif["intervention"] == {"max_num_seqs": 16.0}
    assert whatif["predicted"]["gcm"]["burn_rate"] < whatif["observed"]
    assert whatif["verified"] is not None and whatif["verified"]["burn_rate"] < whatif["observed"]
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    for text in (html, md):
        assert "max\\_num\\_seqs" in text or "max_num_seqs" in text
        assert "Replaying the window" in text
    assert html.count("data:image/png;base64,") == 3  # burn timeline and budget, attribution bars, the graph


def test_demo_refuses_a_file_as_output_folder(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    assert main(["demo", "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_text() == "keep me"

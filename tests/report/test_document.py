"""Reports: self-contained, escaped, and rendered by a real browser with their images."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from causalsre.errors import UserError
from causalsre.report import Report, Section, Table, write_report
from causalsre.report import figures, plots
from causalsre.report.document import Figure

EVIL = "<script>alert(1)</script>"


def _report() -> Report:
    section = Section(
        "Attribution",
        paragraphs=[f"Factor {EVIL} burned the budget."],
        tables=[Table(["factor", "contribution"], [[EVIL, 0.12345], ["arrival_rate", None]])],
        figures=[
            Figure.from_matplotlib(figures.whatif_figure(
                {"observed": 20.0, "intervention": {"max_num_seqs": 16}, "window": EVIL, "verified": None,
                 "predicted": {"gcm": {"burn_rate": 0.5, "low": 0.1, "high": 3.0}}}), f"what-if {EVIL}"),
            plots.attribution_bars([
                {"factor": EVIL, "family": "workload", "contribution": 0.12, "ci_low": 0.08, "ci_high": 0.15},
                {"factor": "max_num_seqs", "family": "batching", "contribution": 0.02, "ci_low": -0.01,
                 "ci_high": 0.04}]),
            plots.causal_graph({EVIL: {"role": "workload", "family": "workload"}, "queue_s": {"role": "mediator"},
                                "ttft_s": {"role": "outcome"}},
                               [(EVIL, "queue_s"), ("queue_s", "ttft_s")], blamed=[EVIL], target="ttft_s"),
        ],
        warnings=["r_hat above 1.01"],
    )
    return Report(f"Postmortem {EVIL}", ["The incident burned 40% of the monthly budget."], [section],
                  {"database": "demo.duckdb"})


def test_html_escapes_data_and_inlines_images(tmp_path):
    path = write_report(_report(), tmp_path / "r.html")
    html = path.read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 3
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "http://" not in html and "https://" not in html  # nothing to fetch: self-contained


def test_markdown_escapes_data(tmp_path):
    text = write_report(_report(), tmp_path / "r.md").read_text()
    assert "<script>" not in text and "\\<script\\>" in text
    assert text.count("data:image/png;base64,") == 3
    assert "| \\<script\\>alert\\(1\\)\\</script\\> | 0.1235 |" in text


def test_unknown_suffix_and_missing_folder(tmp_path):
    with pytest.raises(UserError, match="unknown format"):
        write_report(_report(), tmp_path / "r.pdf")
    with pytest.raises(UserError, match="does not exist"):
        write_report(_report(), tmp_path / "nope" / "r.html")


@pytest.mark.browser
def test_real_browser_renders_report_with_images(tmp_path, browser):
    page = write_report(_report(), tmp_path / "r.html")
    # A test-only copy with a probe script that records whether every image decoded.
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace(
        "</body>", "<script>document.body.setAttribute('data-images', Array.from(document.images)"
                   ".map(i => i.complete && i.naturalWidth > 0).join(','));</script></body>"))
    dom = browser.dump_dom(probe)
    assert "The incident burned 40% of the monthly budget." in dom
    assert 'data-images="true,true,true"' in dom
    assert "alert(1)" in dom and "<script>alert" not in dom  # shown as text, never run
    shot = browser.screenshot(page, tmp_path / "shot.png")
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[0] > 500 and float(np.std(pixels)) > 0.05  # not blank

"""The notebook API: each verb on a real database with a known answer, its JSON equal to the CLI's --json,
a table for Jupyter and a matplotlib Figure from .plot()."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import causalsre as cs
from causalsre.cli.main import main
from causalsre.errors import UserError
from tests.conftest import REPO_ROOT

BASE, INC = "phase:baseline", "phase:incident"


def _cli_json(capsys, args: list[str]) -> str:
    capsys.readouterr()
    assert main(args) == 0
    return capsys.readouterr().out.rstrip("\n")


def _displays(result) -> None:
    html = result._repr_html_()
    assert "<table" in html and "</table>" in html
    assert isinstance(result.plot(), Figure)
    assert isinstance(result.to_frame(), pd.DataFrame) and len(result.to_frame())


def test_slo_report_matches_the_cli(pushed, capsys):
    db, spec = pushed
    report = cs.slo_report(cs.connect(db), spec)
    frame = report.to_frame()
    assert list(frame["slo"]) == ["fast"] and frame.loc[0, "bad_events"] > 0
    assert frame.loc[0, "events"] == report.data[0]["events"]
    assert report.to_json() == _cli_json(capsys, ["slo", "report", "--db", str(db), "--slo", str(spec), "--json"])
    _displays(report)


@pytest.mark.slow
def test_postmortem_names_the_pushed_knob_and_matches_the_cli(pushed, capsys):
    db, spec = pushed
    result = cs.postmortem(db, spec, baseline=BASE, incident=INC, pairs=600)
    assert result.top["factor"] == "max_num_seqs" and result.top["family"] == "batching"
    assert result.top["ci_low"] > 0
    frame = result.to_frame()
    assert frame["contribution"].sum() == pytest.approx(result["total_change"], abs=1e-9)
    cli = _cli_json(capsys, ["postmortem", "--db", str(db), "--slo", str(spec), "--baseline", BASE,
                             "--incident", INC, "--pairs", "600", "--json"])
    assert result.to_json() == cli
    assert "max_num_seqs" in result._repr_html_()
    _displays(result)


@pytest.mark.slow
def test_whatif_reverting_the_push_lowers_the_burn_and_matches_the_cli(pushed, capsys):
    db, spec = pushed
    result = cs.whatif(db, spec, window=INC, set={"max_num_seqs": 32}, method="gcm")
    gcm = result["predicted"]["gcm"]
    assert gcm["burn_rate"] < result["observed"] and gcm["low"] <= gcm["burn_rate"] <= gcm["high"]
    assert list(result.to_frame()["method"]) == ["observed", "gcm"]
    cli = _cli_json(capsys, ["whatif", "--db", str(db), "--slo", str(spec), "--window", INC,
                             "--set", "max_num_seqs=32", "--method", "gcm", "--json"])
    assert result.to_json() == cli
    _displays(result)


EDGES = [("db", "api"), ("cache", "api"), ("api", "frontend"), ("auth", "frontend"), ("dns", "auth")]


def _sample(n: int, seed: int, shifted: str | None = None) -> pd.DataFrame:
    """Window-level metrics from a known linear SCM; ``shifted`` gets its noise moved by 8 SDs."""
    rng = np.random.default_rng(seed)
    noise = {node: rng.normal(0, 1, n) for node in ("db", "cache", "api", "frontend", "auth", "dns")}
    if shifted:
        noise[shifted] = noise[shifted] + 8.0
    data = {"db": 10 + noise["db"], "cache": 5 + noise["cache"], "dns": 1 + noise["dns"]}
    data["api"] = 0.8 * data["db"] + 0.5 * data["cache"] + noise["api"]
    data["auth"] = 2.0 * data["dns"] + noise["auth"]
    data["frontend"] = 1.5 * data["api"] + 0.7 * data["auth"] + noise["frontend"]
    return pd.DataFrame(data)


def test_attribute_takes_dataframes_and_matches_the_cli(tmp_path, capsys):
    normal, abnormal = _sample(400, 1), _sample(3, 2, shifted="dns")
    result = cs.attribute(normal, abnormal, graph=EDGES, target="frontend")
    assert result.to_frame()["node"].iloc[0] == "dns"
    normal.to_csv(tmp_path / "normal.csv", index=False)
    abnormal.to_csv(tmp_path / "abnormal.csv", index=False)
    pd.DataFrame(EDGES, columns=["cause", "effect"]).to_csv(tmp_path / "edges.csv", index=False)
    cli = _cli_json(capsys, ["attribute", "--normal", str(tmp_path / "normal.csv"), "--abnormal",
                             str(tmp_path / "abnormal.csv"), "--graph", str(tmp_path / "edges.csv"),
                             "--target", "frontend", "--json"])
    # The CSV round trip keeps every digit the scores are rounded to, so the documents are equal.
    assert result.to_json() == cli
    assert cs.attribute(tmp_path / "normal.csv", abnormal, graph=pd.DataFrame(EDGES, columns=["cause", "effect"]),
                        target="frontend").to_json() == cli
    _displays(result)
    calm = cs.attribute(normal, _sample(3, 5), graph=EDGES, target="frontend")
    assert calm.to_frame().empty and "nothing anomalous" in calm._repr_html_()


@pytest.mark.parametrize("call,fix", [
    (lambda db, spec: cs.whatif(db, spec, window=INC, set={}), "max_num_seqs"),
    (lambda db, spec: cs.whatif(db, spec, window=INC, set={"max_num_seqs": 8}, method="magic"), "gcm"),
    (lambda db, spec: cs.postmortem(42, spec, baseline=BASE, incident=INC), "cs.connect"),
    (lambda db, spec: cs.postmortem(db, spec, baseline=BASE, incident=INC, pairs=5), "pairs=2000"),
    (lambda db, spec: cs.postmortem(db, spec, baseline="phase:nope", incident=INC), ""),
    (lambda db, spec: cs.slo_report(db, spec, min_events=0), "min_events=1"),
    (lambda db, spec: cs.attribute([1, 2], [3], graph=EDGES, target="frontend"), "DataFrame"),
    (lambda db, spec: cs.attribute(_sample(50, 1), _sample(3, 2), graph=[("a", "b"), ("b", "a")], target="a"),
     "acyclic"),
    (lambda db, spec: cs.connect(db.parent / "missing.duckdb"), ""),
])
def test_bad_arguments_say_how_to_fix_them(pushed, call, fix):
    with pytest.raises(UserError) as raised:
        call(*pushed)
    assert fix in str(raised.value)


def test_import_is_light_and_lazy():
    """``import causalsre`` loads no pandas, DuckDB, matplotlib, PyMC or torch; the verbs load on first use."""
    code = ("import sys, causalsre as cs; heavy = [m for m in ('pandas', 'duckdb', 'matplotlib', 'pymc', 'torch') "
            "if m in sys.modules]; print(heavy); assert callable(cs.postmortem); assert 'connect' in dir(cs)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.replace("'", '"')) == []


def test_the_whatif_verb_and_the_whatif_subpackage_coexist():
    """``causalsre.whatif`` is a subpackage too: importing it must not replace the verb, nor the verb break it."""
    import causalsre.whatif.context as context
    from causalsre import whatif
    from causalsre.whatif.run import run_whatif

    assert callable(cs.whatif) and whatif is cs.whatif and cs.whatif.run.run_whatif is run_whatif
    assert context.__name__ == "causalsre.whatif.context"
    assert "window" in __import__("inspect").signature(cs.whatif).parameters

"""Hostile inputs at the parsers (issue 18), one test per class, driven through the CLI as a user would.

Each of these failed before the shared readers (:mod:`causalsre.safeio`), the one time parser
(:mod:`causalsre.times`) and the near-linear ``attribute``: an alias bomb ran until killed, deep nesting,
non-UTF-8 bytes and out-of-range dates raised tracebacks, ``--threshold nan`` said "nothing anomalous", and a
10,000-node chain took hours. Every error must be one ``error:`` line with exit code 2.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from causalsre.cli.main import main
from tests.badinput.conftest import run_cli
from tests.conftest import FIXTURES, REPO_ROOT

SLO = """apiVersion: openslo/v1
kind: SLO
metadata: {name: ttft}
spec:
  timeWindow: [WINDOW]
  indicator:
    metadata: {name: ttft}
    spec:
      ratioMetric:
        good: {metricSource: {type: causalsre, spec: {conditions: [{metric: ttft_s, op: lte, value: VALUE}]}}}
        total: {metricSource: {type: causalsre}}
  objectives: [{target: 0.9}]
"""


def slo_text(window: str = "{duration: 30d, isRolling: true}", value: str = "0.5") -> str:
    return SLO.replace("WINDOW", window).replace("VALUE", value)


def one_line_error(code: int, out: str, err: str, fragment: str) -> None:
    assert code == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert fragment.lower() in err.lower(), err
    assert "Traceback" not in out + err


@pytest.fixture
def db(tmp_path, capsys):
    path = tmp_path / "t.duckdb"
    code, _, err = run_cli(["db", "import", "requests", str(FIXTURES / "requests_small.csv"), "--db", str(path)],
                           capsys)
    assert code == 0, err
    return path


def _limited(seconds: int = 120, memory: int = 2 << 30):
    def apply() -> None:  # in the child: a bomb must not take the machine down with it
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
    return apply


BOMB = "".join(f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("key", ["apiVersion", "spec"])
def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path, key):
    """Billion laughs (9**9 leaves): refused while composing, and the message never holds the value."""
    spec = tmp_path / "bomb.yaml"
    head = slo_text() if key == "spec" else slo_text().replace("apiVersion: openslo/v1\n", "")
    spec.write_text(head.replace("spec:\n", "ignored:\n", 1) + 'a: &a ["lol", "lol"]\n' + BOMB + f"{key}: *i\n")
    done = subprocess.run([sys.executable, "-m", "causalsre", "slo", "check", str(spec)], capture_output=True,
                          text=True, timeout=300, preexec_fn=_limited(), cwd=REPO_ROOT)
    one_line_error(done.returncode, done.stdout, done.stderr, "aliases")
    assert "lol" not in done.stderr and len(done.stderr) < 1000


@pytest.mark.parametrize("depth", [65, 5000])
def test_deep_nesting_is_one_line(tmp_path, capsys, depth):
    spec = tmp_path / "deep.yaml"
    spec.write_text(slo_text() + "extra: " + "[" * depth + "]" * depth + "\n")
    one_line_error(*run_cli(["slo", "check", str(spec)], capsys), "deeper than 64")
    graph = tmp_path / "graph.yaml"
    graph.write_text("nodes: " + "{a: " * depth + "1" + "}" * depth + "\n")
    one_line_error(*run_cli(["graph", "show", "--graph", str(graph), "--out", str(tmp_path / "g.png")], capsys),
                   "deeper than 64")


def test_non_utf8_specs_and_alert_windows_are_one_line(tmp_path, capsys):
    spec = tmp_path / "latin1.yaml"
    spec.write_bytes(slo_text().replace("ttft}", "caf\u00e9}", 1).encode("latin-1"))
    one_line_error(*run_cli(["slo", "check", str(spec)], capsys), "not UTF-8")
    good = tmp_path / "good.yaml"
    good.write_text(slo_text())
    windows = tmp_path / "aw.yaml"
    windows.write_bytes(b"apiVersion: sloth.slok.dev/v1\nkind: AlertWindows\n# \xff\xfe\n")
    one_line_error(*run_cli(["slo", "check", str(good), "--alert-windows", str(windows)], capsys), "not UTF-8")


@pytest.mark.parametrize("window,fragment", [
    ("{duration: 10000Y, isRolling: true}", "longer than 100 years"),
    ("{duration: 99999999999999999999999d, isRolling: true}", "longer than 100 years"),
    ("{duration: 1M, isRolling: false, calendar: {startTime: 0001-01-01 00:00:00, timeZone: UTC}}", "1970..2200"),
    ("{duration: 1M, isRolling: false, calendar: {startTime: 9999-12-31 00:00:00, timeZone: UTC}}", "1970..2200"),
    ("{duration: 1M, isRolling: false, calendar: {startTime: '0001-01-01T00:00:00+05:00'}}", "1970..2200"),
    ("{duration: 1M, isRolling: false, calendar: {startTime: 2026-02-30 00:00:00}}", "not a valid date"),
])
def test_slo_periods_out_of_range_are_one_line(tmp_path, capsys, db, window, fragment):
    spec = tmp_path / "slo.yaml"
    spec.write_text(slo_text(window))
    one_line_error(*run_cli(["slo", "report", "--db", str(db), "--slo", str(spec)], capsys), fragment)


@pytest.mark.parametrize("at", ["0001-01-01", "9999-12-31T23:59:59", "9999-12-31T23:00:00-05:00",
                                "0001-01-01T00:00:00+01:00", "1969-12-31T23:59:59Z"])
def test_at_out_of_range_is_one_line(tmp_path, capsys, db, at):
    spec = tmp_path / "slo.yaml"
    spec.write_text(slo_text())
    one_line_error(*run_cli(["slo", "report", "--db", str(db), "--slo", str(spec), "--at", at], capsys),
                   "1970..2200")


def test_a_non_finite_condition_value_is_refused(tmp_path, capsys):
    spec = tmp_path / "slo.yaml"
    spec.write_text(slo_text(value=".nan"))
    one_line_error(*run_cli(["slo", "check", str(spec)], capsys), "not a finite number")


@pytest.mark.parametrize("pair,fragment", [
    ("attributes=x", "cannot filter on attributes"),
    ("arrival_ts=yesterday", "not an ISO 8601 time"),
    ("arrival_ts=0001-01-01", "1970..2200"),
    ("request_id=12345678901234567890", "does not fit"),
    ("priority=99999999999", "does not fit"),
    ("ttft_s=inf", "finite number"),
    ("ttft_s=nan", "finite number"),
    ("is_ok=maybe", "true or false"),
])
def test_where_values_are_checked_against_the_column_type(tmp_path, capsys, db, pair, fragment):
    spec = tmp_path / "slo.yaml"
    spec.write_text(slo_text())
    one_line_error(*run_cli(["slo", "report", "--db", str(db), "--slo", str(spec), "--where", pair], capsys),
                   fragment)


def test_where_values_that_fit_still_filter(tmp_path, capsys, db):
    spec = tmp_path / "slo.yaml"
    spec.write_text(slo_text())
    code, out, err = run_cli(["slo", "report", "--db", str(db), "--slo", str(spec), "--json",
                              "--where", "tenant=alpha", "--where", "prompt_tokens=100"], capsys)
    assert code == 0, err
    assert json.loads(out)[0]["events"] == 1  # one alpha request with 100 prompt tokens in the fixture


def _chain(tmp_path, n: int, fault: int, rows: int = 60, seed: int = 0):
    """A linear chain n0 -> n1 -> ... with a fault at ``fault`` in the abnormal rows (the known answer)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(rows + 3, n))
    values = np.empty_like(noise)
    values[:, 0] = noise[:, 0]
    noise[rows:, fault] += 30.0
    for i in range(1, n):
        values[:, i] = 0.5 * values[:, i - 1] + noise[:, i]
    names = [f"n{i}" for i in range(n)]
    paths = {name: tmp_path / f"{name}.csv" for name in ("normal", "abnormal", "edges")}
    pd.DataFrame(values[:rows], columns=names).to_csv(paths["normal"], index=False)
    pd.DataFrame(values[rows:], columns=names).to_csv(paths["abnormal"], index=False)
    paths["edges"].write_text("cause,effect\n" + "".join(f"n{i},n{i + 1}\n" for i in range(n - 1)))
    return paths


def _attribute(paths, target: str, *extra: str) -> list[str]:
    return ["attribute", "--normal", str(paths["normal"]), "--abnormal", str(paths["abnormal"]),
            "--graph", str(paths["edges"]), "--target", target, *extra]


def test_a_10k_node_chain_ranks_its_fault_first(tmp_path, capsys):
    """Quadratic before (1k nodes 15 s, 4k 222 s, 10k killed); now near-linear, so this finishes."""
    paths = _chain(tmp_path, 10_000, fault=9_992)
    code, out, err = run_cli(_attribute(paths, "n9994", "--json"), capsys)
    assert code == 0, err
    assert json.loads(out)["root_causes"][0]["node"] == "n9992"


def test_a_graph_over_the_node_limit_is_refused(tmp_path, capsys):
    edges = tmp_path / "edges.csv"
    edges.write_text("".join(f"n{i},n{i + 1}\n" for i in range(20_000)))  # 20,001 nodes
    one_line_error(*run_cli(["attribute", "--normal", "x.csv", "--abnormal", "y.csv", "--graph", str(edges),
                             "--target", "n1"], capsys), "over the limit of 20000 nodes")


@pytest.mark.parametrize("threshold", ["nan", "inf", "-1", "0"])
def test_attribute_thresholds_must_be_positive_and_finite(tmp_path, capsys, threshold):
    paths = _chain(tmp_path, 5, fault=2)
    one_line_error(*run_cli(_attribute(paths, "n4", "--threshold", threshold), capsys), "positive finite")


@pytest.mark.parametrize("table", ["normal", "abnormal"])
@pytest.mark.parametrize("cell,fragment", [("fast", "'fast' (row 2), which is not a number"),
                                           ("inf", "infinite value")])
def test_text_or_inf_in_a_node_column_names_the_column(tmp_path, capsys, table, cell, fragment):
    paths = _chain(tmp_path, 5, fault=2)
    frame = pd.read_csv(paths[table]).astype(object)
    frame.loc[1, "n3"] = cell
    frame.to_csv(paths[table], index=False)
    code, out, err = run_cli(_attribute(paths, "n4"), capsys)
    one_line_error(code, out, err, f"column 'n3' of the {table} data holds")
    assert fragment in err, err


def test_sweep_toml_nested_or_not_utf8_is_one_line(tmp_path, capsys):
    from causalsre.errors import UserError
    from harness.sweep import load_sweep

    deep = tmp_path / "deep.toml"
    deep.write_text('base = "smoke"\nx = ' + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(UserError, match="deeper than 64"):
        load_sweep(deep)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'base = "caf\xe9"\n')
    with pytest.raises(UserError, match="not UTF-8"):
        load_sweep(latin)


@pytest.mark.parametrize("seed,fragment", [(-1, "greater than or equal to 0"), (10**20, "less than or equal"),
                                           (2**32 - 2, "passes the largest seed")])
def test_sweep_seeds_out_of_range_are_one_line(tmp_path, seed, fragment):
    """A negative seed used to reach numpy's default_rng as a ValueError traceback."""
    from causalsre.errors import UserError
    from harness.sweep import load_sweep

    text = (REPO_ROOT / "harness" / "configs" / "sweep_small.toml").read_text()
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(f"seed = {seed}\n" + "\n".join(line for line in text.splitlines()
                                                    if not line.startswith("seed")))
    base = (REPO_ROOT / "harness" / "configs" / "smoke.toml")
    sweep.write_text(sweep.read_text().replace('base = "smoke.toml"', f'base = "{base}"'))
    with pytest.raises(UserError, match=fragment):
        load_sweep(sweep)


def test_a_spec_over_the_size_limit_is_refused_before_reading(tmp_path, capsys):
    spec = tmp_path / "huge.yaml"
    spec.write_text(slo_text() + "# " + "x" * (10 * 2**20) + "\n")
    one_line_error(*run_cli(["slo", "check", str(spec)], capsys), "over the 10 MiB limit")

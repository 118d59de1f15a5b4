"""Security promises as tests: SQL never carries user text, no pickle/eval of user files, analysis is read-only.

The SQL audit parses every module and lists each f-string that builds SQL together with the expressions it
splices in. Each such expression was read and found to be a validated or internal name (the reason is
written next to it); a new one fails the test until someone audits it and adds it here.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import duckdb
import pytest

from causalsre.cli.main import main
from causalsre.errors import UserError
from tests.badinput.conftest import run_cli
from tests.conftest import FIXTURES, REPO_ROOT

SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|FROM|WHERE|ALTER|COPY|ATTACH|DETACH|PRAGMA)\b")
AUDITED: dict[str, set[str]] = {
    # our own column lists and placeholders
    "causalsre/causal/synthetic.py": {"name", "columns"},          # fixed table names and frame columns we build
    "causalsre/causal/table.py": {"placeholders", "bad"},           # "?, ?, ..." for bound run ids; NOT good_event_sql
    "causalsre/causal/changes.py": {"placeholders"},                # "?, ?, ..." for bound run ids
    "causalsre/causal/graph.py": {"condition"},                     # Window.where(): fixed columns, bound values
    "causalsre/causal/subsample.py": {"condition", "bad"},          # Window.where(); NOT good_event_sql(slo)
    "causalsre/whatif/tiers.py": {"condition", "good"},             # Window.where(); good_event_sql(tier rule)
    "causalsre/telemetry/importers/writer.py": {"table", "names", "_SAME_ROW[table]"},  # fixed table tuple, the
                                                                    # importer's own frame columns, constant joins
    "causalsre/telemetry/frames.py": {"columns"},                   # the importer's fixed column set
    "causalsre/telemetry/export.py": {"table"},                     # loops over the EXPORTED constant
    "causalsre/telemetry/migrations.py": {"MIGRATIONS_TABLE"},      # a module constant
    "causalsre/telemetry/dbstate.py": {"MIGRATIONS_TABLE"},         # the same constant (imported)
    "harness/writer.py": {"', '.join(columns)", "placeholders"},    # keys of the writer's own runs row
    "harness/merge.py": {"alias", "table", "ORDER_BY[table]"},      # src<N> aliases, RUN_TABLES constant
    # SQL fragments made by helpers that validate names against the view and bind every value
    "causalsre/slo/cube.py": {"', '.join(dimensions)", "', '.join(measures)", "', '.join(labels)", "good",
                              "filters", "', '.join((f'{rollup[name]} AS {name}' for name in names))",
                              "grouping",
                              # the counting sets' SELECTs: a loop index and the fixed label names above
                              "index", "', '.join(keys)", "', '.join(values)", "', '.join(dims)",
                              "bounds"},  # one of two fixed strings; the instants are bound parameters
    "causalsre/slo/goodput.py": {"good", "filters"},                # good_event_sql / where_sql
    "causalsre/slo/period.py": {"where_sql", "SPAN_TABLE", "name"},  # SPAN_TABLE: a constant; name: check_column + quote
    "causalsre/slo/source.py": {"SPAN_TABLE"},                      # a constant: request_metrics_span
    "causalsre/slo/sql.py": {"good", "filters", "bounds"},          # good_event_sql, where_sql, time_bounds_sql
    "causalsre/slo/timeline.py": {"rolling", "'WINDOW ' + window_defs if window_defs else ''"},  # numbers only
    "causalsre/slo/rolling.py": {"rolling", "'WINDOW ' + window_defs if window_defs else ''"},   # numbers only
    "causalsre/windows.py": {"sql", "a_sql", "b_sql"},              # Window.where(): fixed columns, bound values
}


def _sql_fstrings(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if SQL_WORDS.search(text):
                yield node.lineno, [ast.unparse(v.value) for v in node.values if isinstance(v, ast.FormattedValue)]


def _modules():
    for folder in ("causalsre", "harness"):
        yield from sorted((REPO_ROOT / folder).rglob("*.py"))


def test_every_sql_fstring_splices_only_audited_names():
    unaudited = []
    for path in _modules():
        rel = path.relative_to(REPO_ROOT).as_posix()
        for line, exprs in _sql_fstrings(path):
            unaudited += [f"{rel}:{line}: {e}" for e in exprs if e not in AUDITED.get(rel, set())]
    assert not unaudited, "SQL built from unaudited expressions (validate names, bind values):\n" + \
        "\n".join(unaudited)


FORBIDDEN_CALLS = {"pickle.load", "pickle.loads", "marshal.loads", "eval", "exec", "yaml.load", "yaml.unsafe_load",
                   "pd.read_pickle", "pandas.read_pickle", "joblib.load", "dill.load", "cloudpickle.load",
                   "shelve.open", "yaml.full_load"}


def _forbidden(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
        if name in FORBIDDEN_CALLS:
            found.append(f"{name} at line {node.lineno}")
        elif name == "torch.load" and keywords.get("weights_only") != "True":
            found.append(f"torch.load without weights_only=True at line {node.lineno}")
        elif name.endswith("np.load") and keywords.get("allow_pickle") == "True":
            found.append(f"np.load(allow_pickle=True) at line {node.lineno}")
    return found


def test_no_module_unpickles_or_evaluates_anything():
    found = {p.relative_to(REPO_ROOT).as_posix(): f for p in _modules() if (f := _forbidden(p))}
    assert not found, found


def test_the_scanner_sees_the_calls_it_forbids(tmp_path):
    # Guard against a scanner that finds nothing because it looks for the wrong thing.
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle, torch, yaml\npickle.load(f)\neval(s)\ntorch.load(p)\nyaml.load(t)\n"
                   "q = f\"SELECT * FROM {user_table}\"\n")
    assert len(_forbidden(bad)) == 4
    assert list(_sql_fstrings(bad)) == [(6, ["user_table"])]


# -- the entry points that take user text bind it as values or validate it as a name -----------------------
INJECTIONS = ["x' OR '1'='1", "x\"; DROP TABLE runs; --", "incident' --", "'; DELETE FROM requests; --"]


@pytest.mark.parametrize("text", INJECTIONS)
def test_window_text_is_bound_not_spliced(world, text):
    from causalsre.telemetry import connect_readonly
    from causalsre.windows import parse_window

    before = world.fingerprint()
    con = connect_readonly(world.path("good.duckdb"))
    try:
        for form in (f"run:{text}", f"phase:{text}", f"phase:incident@{text}"):
            with pytest.raises(UserError):
                parse_window(form, con)
    finally:
        con.close()
    assert world.fingerprint() == before


@pytest.mark.parametrize("text", INJECTIONS)
def test_slo_report_where_values_are_bound_and_columns_validated(world, capsys, text):
    db, slo = str(world.path("good.duckdb")), str(world.path("slo.yaml"))
    before = world.fingerprint()
    code, out, err = run_cli(["slo", "report", "--db", db, "--slo", slo, "--json", "--where", f"tenant={text}"],
                             capsys)
    # Matched as a literal tenant name, which no request has; spliced in, "OR '1'='1" would match them all.
    assert code == 2 and "no requests match" in err, (out, err)
    code, out, err = run_cli(["slo", "report", "--db", db, "--slo", slo, "--where", f"{text}=1"], capsys)
    assert code == 2 and "column" in err
    assert world.fingerprint() == before


def test_an_slo_metric_that_is_sql_is_refused(world, capsys):
    spec = world.path("slo.yaml").read_text().replace("metric: ttft_s", "metric: 'ttft_s\" OR 1=1 --'")
    world.path("inj.yaml").write_text(spec)
    before = world.fingerprint()
    code, _, err = run_cli(["slo", "report", "--db", str(world.path("good.duckdb")), "--slo",
                            str(world.path("inj.yaml"))], capsys)
    assert code == 2 and "OR 1=1" in err
    assert world.fingerprint() == before


def test_an_imported_column_named_like_sql_is_data(tmp_path):
    from causalsre.telemetry import connect_writable
    from causalsre.telemetry.imports import import_requests_file

    evil = 'x"; DROP TABLE runs; --'
    lines = (FIXTURES / "requests_small.csv").read_text().splitlines()
    src = tmp_path / "evil.csv"
    src.write_text("\n".join([lines[0] + f',"{evil.replace(chr(34), chr(34) * 2)}"']
                             + [line + ",1" for line in lines[1:]]) + "\n")
    con = connect_writable(tmp_path / "e.duckdb")
    try:
        import_requests_file(con, src)
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
        attributes = json.loads(con.execute("SELECT attributes FROM requests LIMIT 1").fetchone()[0])
        assert attributes[evil] == 1  # kept as data in the attributes JSON, never as a column name in SQL
    finally:
        con.close()


# -- analysis opens databases read-only -------------------------------------------------------------------
ANALYSIS = [
    ("db-info", ["db", "info", "{db}"]),
    ("db-check", ["db", "check", "{db}"]),
    ("db-export", ["db", "export", "{db}", "--parquet", "{out}"]),
    ("slo-report", ["slo", "report", "--db", "{db}", "--slo", "{slo}"]),
    # a known knob with a bad value: refused once the database says how the knob was measured
    ("whatif", ["whatif", "--db", "{db}", "--slo", "{slo}", "--window", "phase:incident", "--set", "max_num_seqs=x"]),
    ("effect", ["effect", "--db", "{db}", "--slo", "{slo}", "--treatment", "warp"]),
    # (--priors is read while the flags are parsed now, before the database: a phase or --out fails later)
    ("recommend", ["recommend", "--db", "{db}", "--slo", "{slo}", "--window", "phase:nonexistent"]),
    # (--out into a missing folder is refused while the flags are parsed now: prior draws only, to the end)
    ("fit", ["fit", "--db", "{db}", "--slo", "{slo}", "--sampler", "prior", "--draws", "10", "--chains", "1"]),
    ("harness-replay-source", ["harness", "replay", "{db}", "nope-s0", "--window", "incident", "--db", "{out.duckdb}"]),
]


@pytest.mark.parametrize("case_id,argv", ANALYSIS, ids=[c[0] for c in ANALYSIS])
def test_analysis_commands_open_the_database_read_only(case_id, argv, world, monkeypatch, capsys):
    """Spy on duckdb.connect: every connection an analysis command makes to the analysed file is read-only.

    (The commands may fail later on a deliberately unknown knob or priors file: by then they have opened the
    database, which is what this checks, and it keeps the test fast.)
    """
    db = world.path("suite.duckdb")
    if not db.is_file():
        pytest.skip("datasets/cpu-tiny/suite.duckdb is absent")
    opened: list[tuple[str, bool]] = []
    real_connect = duckdb.connect

    def spy(database=":memory:", read_only=False, *args, **kwargs):
        opened.append((str(database), bool(read_only)))
        return real_connect(database, read_only, *args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", spy)
    values = {"db": db, "slo": world.path("slo.yaml"), "out": world.path("export"), "nope.toml":
              world.path("nope.toml"), "out.duckdb": world.path("out.duckdb"),
              "nofolder.nc": world.path("nofolder") / "f.nc"}
    before = world.fingerprint()["suite.duckdb"]
    run_cli([str(values[a[1:-1]]) if a.startswith("{") else a for a in argv], capsys)
    to_db = [ro for path, ro in opened if Path(path).resolve() == db.resolve()]
    assert to_db, f"{case_id} never opened the database"
    assert all(to_db), f"{case_id} opened the database for writing"
    assert world.fingerprint()["suite.duckdb"] == before


def test_two_analysts_can_read_while_another_process_reads(world, capsys):
    """DuckDB shares a file between read-only processes only: a reader holding it proves we open read-only."""
    import os
    import subprocess
    import sys

    db = world.path("good.duckdb")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
         "print('holding', flush=True); sys.stdin.read()", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert main(["db", "info", str(db)]) == 0
        assert main(["slo", "report", "--db", str(db), "--slo", str(world.path("slo.yaml"))]) == 0
        # ...while a writer is refused, proving the holder really holds the file.
        code, _, err = run_cli(["db", "import", "requests", str(FIXTURES / "requests_small.csv"), "--db", str(db)],
                               capsys)
        assert code == 2 and "locked" in err
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_slo_report_out_escapes_names_and_labels_from_data(world, capsys):
    """Through the real `causalsre slo report --out report.html`: an SLO named <script> and a database file
    whose name is an HTML tag appear in the page as text, and none of them as markup."""
    spec = world.path("slo.yaml").read_text().replace("name: chat-latency", "name: <script>alert(1)</script>")
    world.path("evil.yaml").write_text(spec)
    db = world.path("<b onmouseover=alert(2)>.duckdb")
    world.path("good.duckdb").rename(db)
    out = world.path("report.html")
    code, _, err = run_cli(["slo", "report", "--db", str(db), "--slo", str(world.path("evil.yaml")), "--out",
                            str(out)], capsys)
    assert code == 0, err
    html = out.read_text()
    assert "<h1>SLO report: &lt;script&gt;alert(1)&lt;/script&gt;</h1>" in html
    assert "&lt;b onmouseover=alert(2)&gt;.duckdb" in html
    assert "<script>alert(1)" not in html and "<b onmouseover" not in html

"""The hostile-input sweep: every command's flags and input files, from the CLI's own tree (click introspection).

Three parts, each bounded by design (a fixed list of probes; a probe that runs past ``PROBE_S`` fails as
"ran on", it is never waited for):

1. every numeric option has a bound type: a finite maximum, and NaN/inf refused for floats;
2. every option and argument, given hostile text (empty, whitespace, RTL and NUL characters, 100,000
   characters, NaN, inf, 1e308, -1, 0, a 30-digit number), parses to an exit-2 one-line refusal or to a
   sane value; the command body is not run (``Command.invoke`` is stubbed), so this part is fast;
3. every input file of every command in :data:`tests.badinput.sweep.COMMANDS`, replaced one at a time by a
   FIFO, /dev/zero, random bytes, an empty file, a missing path, a 300-byte name, plain text, and (for a
   database) an older, schema-v3, future-schema, foreign, non-DuckDB or damaged database: exit 2, one line
   on stderr, no traceback, every database of the world byte-identical.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path

import click
import duckdb
import pytest

from causalsre.cli.main import cli
from causalsre.cli.options import FilePath, FiniteRange
from causalsre.telemetry import connect_writable, migrate
from tests.badinput.bad_files import REPO
from tests.badinput.conftest import World, run_cli
from tests.badinput.sweep import COMMANDS, DB_KINDS, FILE_KINDS, NOT_SWEPT
from tests.conftest import FIXTURES

PROBE_S = 90  # generous on a loaded 2-core machine; a refusal takes well under a second


def leaf_commands():
    stack = [(cli, ())]
    while stack:
        cmd, path = stack.pop()
        ctx = click.Context(cmd)
        if isinstance(cmd, click.Group):
            stack += [(cmd.get_command(ctx, n), path + (n,)) for n in cmd.list_commands(ctx)]
        else:
            yield path, cmd


LEAVES = sorted(leaf_commands(), key=lambda leaf: leaf[0])


# --- 1. numeric options are bounded -------------------------------------------------------------------------
# Plain float/int options whose command checks the value itself (each with a message naming the option).
CHECKED_IN_BODY = {("attribute", "--threshold"), ("eval", "govern", "--load"), ("eval", "govern", "--duration-s")}


def test_every_numeric_option_has_a_bounded_type():
    loose = []
    for path, cmd in LEAVES:
        for param in cmd.params:
            key = (*path, param.opts[0])
            kind = param.type
            if key in CHECKED_IN_BODY or isinstance(kind, (click.types.BoolParamType, click.Choice)):
                continue
            if isinstance(kind, click.types.FloatParamType) and not isinstance(kind, FiniteRange):
                loose.append(f"{' '.join(key)}: a float type that lets NaN through (use options.finite)")
            elif isinstance(kind, click.IntRange) and kind.max is None:
                loose.append(f"{' '.join(key)}: an IntRange without a maximum")
            elif type(kind) is click.types.IntParamType:
                loose.append(f"{' '.join(key)}: an unbounded int")
    assert loose == [], loose


# --- 2. hostile text for every option, parsed only -----------------------------------------------------------
TEXT = ["", " ", "\u202e\u0627\u0644", "a\x00b", "x" * 100_000, "NaN", "inf", "-inf", "1e308", "-1", "0",
        "9" * 30]


@contextmanager
def parse_only(monkeypatch):
    """Run click's parsing and conversion, record the parameters, never the command body."""
    seen = []
    monkeypatch.setattr(click.Command, "invoke", lambda self, ctx: seen.append(dict(ctx.params)))
    yield seen


def _filled(cmd: click.Command, skip: click.Parameter) -> list[str]:
    """Placeholder values for the other required parameters, so parsing reaches its end."""
    argv = []
    for param in cmd.params:
        if param is skip or not param.required:
            continue
        value = param.type.choices[0] if isinstance(param.type, click.Choice) else "1"
        argv += [value] if param.param_type_name == "argument" else [param.opts[0], value]
    return argv


@pytest.mark.parametrize("path,cmd", LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_hostile_text_in_any_option_is_refused_or_parsed_to_a_sane_value(path, cmd, monkeypatch, capsys):
    for param in cmd.params:
        if getattr(param, "is_flag", False):
            continue
        for text in TEXT:
            given = [text] if param.param_type_name == "argument" else [param.opts[0], text]
            with parse_only(monkeypatch) as seen:
                code, out, err = run_cli([*path, *given, *_filled(cmd, param)], capsys)
            where = (" ".join(path), param.name, text[:20])
            assert "Traceback" not in out + err, where
            if code == 2:
                assert err.startswith("error: ") and err.count("\n") == 1 and len(err) < 3000, (where, err[:300])
                continue
            assert code == 0 and seen, (where, code, err[:300])
            if (*path, param.opts[0]) in CHECKED_IN_BODY:
                continue  # NaN reaches the body, which refuses it (corpus: attribute-threshold-nan)
            value = seen[-1][param.name]
            for item in value if isinstance(value, tuple) else [value]:
                if isinstance(item, float):
                    assert math.isfinite(item), where
                if isinstance(item, int) and not isinstance(item, bool):
                    assert abs(item) < 2**63, where


# --- 3. hostile files in every input-file option -------------------------------------------------------------
def test_the_sweep_table_names_every_input_file_option():
    missing = []
    for path, cmd in LEAVES:
        swept = COMMANDS.get(path, ((), {}))[1]
        arguments = [p for p in cmd.params if p.param_type_name == "argument"]
        for param in cmd.params:
            if not isinstance(param.type, FilePath):
                continue
            key = f"#{arguments.index(param)}" if param in arguments else param.opts[0]
            if key not in swept and (*path, key) not in NOT_SWEPT and not (key.startswith("#") and "--db" in swept):
                missing.append(f"{' '.join(path)} {key}")
    assert missing == [], missing


def _good_files(root: Path) -> None:
    """The good inputs of COMMANDS' argvs (the corpus world holds the databases and specs)."""
    copies = {"requests.csv": FIXTURES / "requests_small.csv", "vllm.json": FIXTURES / "vllm_bench_small.json",
              "guidellm.json": FIXTURES / "guidellm" / "benchmarks_small.json",
              "sglang.jsonl": FIXTURES / "vllm_versions" / "sglang" / "bench_serving_max_running.jsonl",
              "otel.json": FIXTURES / "otel" / "traces.otlp.json", "events.csv": FIXTURES / "events" / "changes.csv",
              "scrape.prom": FIXTURES / "prometheus" / "vllm-metrics-1767225601.prom",
              "vllm.log": FIXTURES / "vllm_log" / "real-0.32" / "vllm.log.gz",
              "graph.yaml": REPO / "models" / "serving.yaml", "smoke.toml": REPO / "harness" / "configs" / "smoke.toml",
              "sweep.toml": REPO / "harness" / "configs" / "sweep_small.toml"}
    for name, source in copies.items():
        shutil.copy(source, root / name)
    from tests.badinput.bad_files import ALERT_WINDOWS

    (root / "aw.yaml").write_text(ALERT_WINDOWS)


def _hostile_databases(root: Path) -> None:
    con = duckdb.connect(str(root / "v3.duckdb"))
    migrate(con, target=3)  # the schema of the old suites under /work/*-suite*
    con.close()
    con = duckdb.connect(str(root / "foreign.duckdb"))  # another program's database
    con.execute("CREATE TABLE invoices (id INTEGER, total DECIMAL(10, 2)); INSERT INTO invoices VALUES (1, 9.5)")
    con.close()
    connect_writable(root / "damaged.duckdb").close()
    with open(root / "damaged.duckdb", "r+b") as handle:  # a block in the middle overwritten
        handle.seek(8192)
        handle.write(random.Random(7).randbytes(4096))


@pytest.fixture(scope="module")
def sweep_template(world_template, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep") / "world"
    shutil.copytree(world_template, root)
    _good_files(root)
    _hostile_databases(root)
    return root


@pytest.fixture(scope="module")
def pristine(sweep_template, tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("pristine") / "world"
    shutil.copytree(sweep_template, copy)
    return copy


@pytest.fixture
def sweep_world(sweep_template, pristine) -> World:
    # One world for every probe (a copy each would be ~10 GB of copying): each probe checks the fingerprint
    # of every database before and after; what a wrongly accepted probe changed is put back for the next.
    world = World(sweep_template)
    before = world.fingerprint()
    yield world
    for leftover in ("new.duckdb", "new.duckdb.wal"):
        (sweep_template / leftover).unlink(missing_ok=True)
    after = world.fingerprint()
    for name in set(before) | set(after):
        if before.get(name) != after.get(name):
            (sweep_template / name).unlink(missing_ok=True)
            if (pristine / name).is_file():
                shutil.copy(pristine / name, sweep_template / name)


def hostile_path(root: Path, kind: str, suffix: str) -> str:
    ext = ".duckdb" if suffix in ("db", "new-db") else suffix
    named = root / f"hostile-{kind}{ext}"
    if named.exists() or named.is_fifo():
        return str(named)
    if kind == "fifo":
        os.mkfifo(named)
    elif kind == "device":
        return "/dev/zero"
    elif kind == "binary":
        named.write_bytes(random.Random(3).randbytes(5000))
    elif kind == "empty":
        named.write_bytes(b"")
    elif kind == "missing":
        return str(root / "nofolder" / f"x{ext}")
    elif kind == "long-name":
        return str(root / ("a" * 300 + ext))
    elif kind == "text":
        named.write_text("plain text, not what was asked for\n")
    else:  # a database kind: a file of the corpus world
        return str(root / {"older": "older.duckdb", "v3": "v3.duckdb", "newer": "newer.duckdb",
                           "foreign": "foreign.duckdb", "not-a-db": "not_a_db.duckdb",
                           "missing-table": "missing_table.duckdb", "damaged": "damaged.duckdb"}[kind])
    return str(named)


def _kinds(option_kind: str) -> tuple[str, ...]:
    creatable = tuple(k for k in FILE_KINDS if k not in ("missing", "empty"))  # a database to create: fine
    if option_kind in ("db", "check-db"):
        return FILE_KINDS + DB_KINDS + ("damaged",)
    if option_kind == "new-db":
        return creatable + DB_KINDS + ("damaged",)
    if option_kind == "upgrade-db":  # upgrading an older schema (1, 3) is what these commands are for
        return creatable + tuple(k for k in DB_KINDS if k not in ("older", "v3")) + ("damaged",)
    return FILE_KINDS


PROBES = [(path, option, kind) for path, (_, options) in COMMANDS.items() for option, option_kind in options.items()
          for kind in _kinds(option_kind)]


class RanOn(BaseException):
    """A probe ran past PROBE_S: the hostile input was not refused up front (BaseException: no handler eats it)."""


@contextmanager
def time_bound(seconds: int):
    def stop(signum, frame):
        raise RanOn()

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _argv(path: tuple[str, ...], option: str, value: str, root: Path) -> list[str]:
    base, _ = COMMANDS[path]
    argv = [str(root / a[1:-1]) if a.startswith("{") and a.endswith("}") else a for a in base]
    if option.startswith("#"):
        argv[int(option[1:])] = value
    elif option in argv:
        argv[argv.index(option) + 1] = value
    else:
        argv += [option, value]
    return [*path, *argv]


@pytest.mark.slow
@pytest.mark.parametrize("path,option,kind", PROBES, ids=[f"{' '.join(p)} {o} {k}" for p, o, k in PROBES])
def test_a_hostile_file_in_any_input_option_is_one_line_and_changes_nothing(path, option, kind, sweep_world, capsys):
    if "{suite.duckdb}" in COMMANDS[path][0] and not (sweep_world.root / "suite.duckdb").is_file():
        pytest.skip("datasets/cpu-tiny/suite.duckdb is absent")
    suffix = COMMANDS[path][1][option]
    argv = _argv(path, option, hostile_path(sweep_world.root, kind, suffix), sweep_world.root)
    before = sweep_world.fingerprint()
    try:
        with time_bound(PROBE_S):
            code, out, err = run_cli(argv, capsys)
    except RanOn:
        pytest.fail(f"{' '.join(path)} {option} <{kind}> was not refused within {PROBE_S} s")
    assert "Traceback" not in out + err
    if suffix == "check-db" and code == 1:  # db check found the problem and reported it (its contract)
        assert "problem" in out, out[-500:]
    else:
        assert code == 2, (code, err[-500:], out[-300:])
        # One error line, the last; lines before it may only be progress (bench prints "... step" lines).
        lines = err.splitlines()
        assert lines and lines[-1].startswith("error: ") and sum(line.startswith("error") for line in lines) == 1, \
            err[-800:]
        assert all(line.startswith("... ") for line in lines[:-1]), err[-800:]
    assert sweep_world.fingerprint() == before
    assert not (sweep_world.root / "new.duckdb").exists()  # a refused run leaves no database behind

"""The CLI's shared options and parsers, defined once: every command module takes them from here.

One spelling everywhere (docs/cli.md, "One grammar"):

- ``--db FILE``: the telemetry database (``db *`` also still takes it as a positional PATH, a hidden alias);
- ``--json``: the result as JSON on stdout, nothing else there (progress and warnings go to stderr);
- ``--slo FILE`` / ``--slo-name NAME``: an OpenSLO spec and which of its SLOs (default: the first);
- ``--window TEXT``: the window grammar of :mod:`causalsre.windows`;
- ``--run ID``: restrict an analysis to one run (an unknown id is refused with the known ones);
- ``--set KNOB=VALUE``: an engine setting by its name in the settings table (``max_num_seqs=8``;
  ``engine.max_num_seqs=8`` is accepted as an alias);
- ``--seed N``: the seed of every random choice.

Click is imported here, the heavy libraries only inside the functions that need them.
"""

from __future__ import annotations

import json
import math

import click

from causalsre.errors import UserError
from causalsre.progress import progress_bar  # noqa: F401  (the CLI's bars: re-exported here)
from causalsre.windows import FORMS

class FilePath(click.Path):
    """An input file's type (``click.Path(dir_okay=False)`` plus): an existing FIFO, socket or device is refused
    while the flags are parsed, before any work. Reading a FIFO blocks until a writer comes, so ``--fit FIFO``
    computed a whole what-if and then hung. A missing file is left to the command, whose message says how to
    make one."""

    def __init__(self, **kwargs) -> None:
        super().__init__(dir_okay=False, **kwargs)

    def convert(self, value, param, ctx):
        if isinstance(value, str) and "\x00" in value:  # os.stat raised ValueError: a traceback
            self.fail("the path contains a NUL character", param, ctx)
        value = super().convert(value, param, ctx)
        import os

        if not os.path.exists(value):
            return value
        from causalsre.safeio import regular_file

        try:
            regular_file(value, what="file")
        except UserError as exc:
            self.fail(exc.one_line(), param, ctx)
        _check_not_both(value, param, ctx, against=OutputPath)
        return value


INPUT_FILE = FilePath()


def _checked_path(path_type: click.Path, value, param, ctx, check):
    """click's own path conversion, then ``check`` (a safeio rule raising UserError) as a usage error; a NUL
    byte is refused first (the OS would raise ValueError, a traceback)."""
    if isinstance(value, str) and "\x00" in value:
        path_type.fail("the path contains a NUL character", param, ctx)
    value = click.Path.convert(path_type, value, param, ctx)
    try:
        check(value)
    except UserError as exc:
        path_type.fail(exc.one_line(), param, ctx)
    return value


class OutputPath(click.Path):
    """An output file's type: checked while the flags are parsed (:func:`causalsre.safeio.output_file`: nothing
    there or a regular file, in a folder that exists) and never the same file as one of the command's inputs.
    ``fit --db t.duckdb --out t.duckdb`` wrote the fit over the telemetry it was fitted on; a report into a FIFO
    hung after the whole analysis; a missing folder for `fit --out` was found only after the fit."""

    def __init__(self, suffixes: tuple[str, ...] = (), **kwargs) -> None:
        super().__init__(dir_okay=False, **kwargs)
        self.suffixes = suffixes

    def convert(self, value, param, ctx):
        from causalsre.safeio import output_file

        value = _checked_path(self, value, param, ctx, lambda path: output_file(path, what="file"))
        from pathlib import Path

        if self.suffixes and Path(value).suffix.lower() not in self.suffixes:
            self.fail(f"{value} does not end in {' or '.join(self.suffixes)} (name the file with that suffix)",
                      param, ctx)
        _check_not_both(value, param, ctx, against=FilePath)
        return value


class OutputFolder(click.Path):
    """An output folder's type: nothing there yet or a folder (click's ``file_okay=False`` lets a FIFO or a
    device through, and the command then failed in ``mkdir``)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(file_okay=False, **kwargs)

    def convert(self, value, param, ctx):
        from causalsre.safeio import output_folder

        return _checked_path(self, value, param, ctx, lambda path: output_folder(path, what="folder"))


OUTPUT_FILE = OutputPath()


def same_file(a, b) -> bool:
    """Whether two paths name one file (through symlinks and ``..``), or would once written."""
    import os

    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # one of them is not there yet: compare where they would be
        return os.path.realpath(a) == os.path.realpath(b)


def _check_not_both(value, param, ctx, *, against: type) -> None:
    """Refuse an input that is one of the command's outputs (or the reverse), whichever flag came first: the
    other side's values already parsed are in ``ctx.params``."""
    if ctx is None or param is None or value is None:
        return
    for other in ctx.command.params:
        given = ctx.params.get(other.name) if other.name != param.name else None
        if given is None or not isinstance(other.type, against):
            continue
        for each in given if isinstance(given, (tuple, list)) else (given,):
            if each is not None and same_file(value, each):
                (out, out_value), (source, _) = sorted(((param, value), (other, each)),
                                                       key=lambda side: not isinstance(side[0].type, OutputPath))
                raise click.BadParameter(f"{_flag(out)} {out_value} is the same file as {_flag(source)} (writing it "
                                         "would destroy the input: choose another output path)", ctx=ctx, param=param)


def _flag(param) -> str:
    return param.opts[0] if param.opts else param.name


class FitPath(FilePath):
    """``--fit FILE.nc``: checked while the flags are parsed, because the fit is read only after the rest of the
    analysis (a postmortem's Shapley values took a minute before a missing or foreign --fit was refused)."""

    _SIGNATURES = (b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02")  # NetCDF-4 (HDF5) and NetCDF-3 files
    _FIX = "create it with `causalsre fit --out FILE.nc`"

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        try:
            with open(value, "rb") as handle:
                head = handle.read(8)
        except FileNotFoundError:
            self.fail(f"fit file {value} does not exist ({self._FIX})", param, ctx)
        except OSError as exc:
            self.fail(f"fit file {value} cannot be read ({exc.strerror}) ({self._FIX})", param, ctx)
        if not head.startswith(self._SIGNATURES):
            self.fail(f"{value} is not a saved fit (not a NetCDF file) ({self._FIX})", param, ctx)
        return value


FIT_FILE = FitPath()
DB_PATH = FilePath()
WINDOW_HELP = f"Window: {FORMS}."
SET_EXAMPLE = "--set max_num_seqs=8"


def db_option(help: str = "Telemetry database (DuckDB file).", required: bool = True, name: str = "db_path",
              default: str | None = None, show_default: str | None = None, written: bool = False):
    """``written=True``: the command writes into it; checked up front (:func:`check_output_db`)."""
    return click.option("--db", name, required=required and default is None, type=DB_PATH,
                        show_default=show_default, help=help, callback=check_output_db if written else None,
                        **_default(default))


def check_output_db(ctx, param, value):
    """A database a command writes into (harness runs, serve): refused while the flags are parsed when it is
    another program's, of a newer or an older schema, or damaged, as `db import` refuses it. A run into
    an older database used to migrate it as a side effect (and ran for minutes first); `db migrate` does that.
    """
    if value is not None:
        from pathlib import Path

        from causalsre.telemetry.schema import check_writable, inspect_database

        check_writable(Path(value), inspect_database(value), upgrade=False)
    return value


def _default(default: str | None) -> dict:
    # Click 8.3+ takes an explicit default=None as a given value, and a required option then never reports
    # "Missing option": every command ran on with db_path=None (a TypeError traceback). Pass none instead.
    return {} if default is None else {"default": default}


def slo_option(required: bool = True, default: str | None = None, show_default: str | None = None,
               help: str = "OpenSLO v1 spec file.", name: str = "slo_path"):
    return click.option("--slo", name, required=required and default is None, type=INPUT_FILE,
                        show_default=show_default, help=help, **_default(default))


def json_option(help: str = "Print the result as JSON (progress and warnings go to stderr)."):
    return click.option("--json", "as_json", is_flag=True, help=help)


def seed_option(default: int | None = 0, help: str = "Seed of every random choice."):
    # numpy, scikit-learn and PyMC take seeds in 0..2**32-1: -1 or 10**20 was a ValueError traceback.
    return click.option("--seed", type=SEED_VALUES, default=default, show_default=default is not None, help=help)


SEED_VALUES = click.IntRange(0, 2**32 - 1)  # the range; SEED below is the shared --seed option


class FiniteRange(click.FloatRange):
    """A float option's type: a finite number in [min, max]. click's FloatRange lets NaN through (every
    comparison with NaN is false), so ``--rate nan`` ran a benchmark at no rate; ``inf`` passed a range
    without a max. Every float option of the CLI takes this type."""

    name = "finite float range"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


def finite(min: float | None = None, max: float | None = None, **open_ends: bool) -> FiniteRange:
    """A finite float in [min, max] (``min_open=True``/``max_open=True`` exclude an end)."""
    return FiniteRange(min, max, **open_ends)


def not_blank(fix: str):
    """A text option's callback: an empty or blank value is refused naming the flag and what it takes. The
    library's own check words it for Python callers (``at must be None or a non-empty string ...
    (pass e.g. at='2026-03-01T10:00:00Z')``), which is not what a shell user typed."""

    def check(ctx, param, value):
        if isinstance(value, str) and not value.strip():
            raise UserError(f"{param.opts[0]} is empty", fix)
        return value

    return check


def window_option(flag: str = "--window", name: str = "window_text", required: bool = True, help: str = WINDOW_HELP):
    return click.option(flag, name, required=required, metavar="WINDOW", help=help,
                        callback=not_blank(f"give a window: {FORMS}"))


RUN_FIX = "give a run id; `causalsre db info --db FILE` lists the runs"


def run_option(help: str = "Restrict to one run (its id; `causalsre db info --db FILE` lists them); windows "
                           "then need no @RUN, e.g. --run rate_surge-s0 --window +10:+40.", name: str = "run_id"):
    return click.option("--run", name, default=None, metavar="ID", help=help, callback=not_blank(RUN_FIX))


def set_option(help: str = f"KNOB=VALUE, an engine setting (repeat for more), e.g. {SET_EXAMPLE}.",
               required: bool = False, name: str = "settings", metavar: str = "KNOB=VALUE"):
    return click.option("--set", name, multiple=True, required=required, metavar=metavar, help=help)


SLO = slo_option()
SLO_NAME = click.option("--slo-name", help="Which SLO of the file (default: the first).",
                        callback=not_blank("give the name of one SLO in the spec, or leave --slo-name out for the "
                                           "first"))
GRAPH = click.option("--graph", "graph_path", type=INPUT_FILE,
                     help="Causal graph spec (default: models/serving.yaml).")
def _check_priors(ctx, param, value):
    # Read when the flags are parsed: the priors are used only after a what-if's gcm part (a minute), which
    # ran to its end before a bad --priors file was refused.
    if value is not None:
        from causalsre.bayes.priors import load_priors

        load_priors(value)
    return value


PRIORS = click.option("--priors", "priors_path", type=INPUT_FILE, callback=_check_priors,
                      help="Priors TOML (default: models/priors/burn_logistic.toml).")
RUN = run_option()
DB = db_option()
JSON = json_option()
SEED = seed_option()


def echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


# --- the database: --db everywhere, the old positional PATH of `db *` kept as a hidden alias ---------------
class HiddenArgument(click.Argument):
    """A positional argument left out of the usage line: the old spelling a script may still use."""

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        return []


def legacy_path(name: str = "path"):
    return click.argument(name, required=False, type=DB_PATH, cls=HiddenArgument)


def one_db(option: str | None, positional: str | None, command: str) -> str:
    """The database of a `db` command: ``--db FILE``, or the old positional PATH; both only if the same."""
    if option and positional and option != positional:
        raise UserError(f"two databases given ({positional} and --db {option})", "give the database once: --db FILE")
    path = option or positional
    if not path:
        raise UserError("no database given", f"add --db FILE, e.g. causalsre {command} --db telemetry.duckdb")
    return path


# --- --set KNOB=VALUE, against the one settings table -------------------------------------------------------
def _split(pair: str, noun: str, example: str, *, allow_empty: bool = False) -> tuple[str, str]:
    key, sep, raw = pair.partition("=")
    key = key.strip()
    if not sep or not key or not (allow_empty or raw.strip()):
        raise UserError(f"--set {pair[:100]!r} is not {noun}", f"write e.g. {example}")
    return key, raw.strip()


def knob_name(key: str) -> str:
    """An engine setting's name; ``engine.NAME`` is the same setting (the harness's config key)."""
    return key[len("engine."):] if key.startswith("engine.") else key


def parse_knobs(pairs: tuple[str, ...] | list[str]) -> list[str]:
    """Analysis ``--set`` pairs as ``KNOB=VALUE`` with the knob checked against the settings table.

    The value is checked later against the same table (bounds, type) once the database says how the knob
    was measured (:func:`causalsre.whatif.context.parse_settings`).
    """
    from harness.engine.settings import ENGINE_SETTINGS

    knobs = {s.name for s in ENGINE_SETTINGS if s.graph is not None}
    out = []
    for pair in pairs:
        key, raw = _split(pair, "KNOB=VALUE", SET_EXAMPLE)
        name = knob_name(key)
        if name not in knobs:
            raise UserError(f"{key[:60]} is not an actionable knob (an engine setting of the settings table)",
                            f"choose one of {', '.join(sorted(knobs))} (e.g. {SET_EXAMPLE})")
        out.append(f"{name}={raw}")
    return out


def parse_overrides(pairs: tuple[str, ...] | list[str]) -> dict:
    """Harness ``--set`` pairs as config overrides: an engine setting by its name (``max_num_seqs=8``, or
    ``engine.max_num_seqs=8``), any other config value by its dotted key (``workload.rate=4``). Values are
    parsed as JSON when they can be (``8``, ``true``, ``null``, ``[...]``), else kept as text; the config's
    validation (derived from the settings table) checks them."""
    from harness.engine.settings import ENGINE_SETTINGS

    # The knobs (graph nodes); ``seed`` and ``model`` are not: a bare ``seed`` is the run's seed.
    knobs = {s.name for s in ENGINE_SETTINGS if s.graph is not None}
    out = {}
    for pair in pairs:
        key, raw = _split(pair, "KEY=VALUE", f"{SET_EXAMPLE} or --set workload.rate=4", allow_empty=True)
        if key in knobs:
            key = f"engine.{key}"
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out

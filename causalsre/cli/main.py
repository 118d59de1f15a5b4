"""Entry point of the ``causalsre`` command.

Command groups live in their own modules and are imported only when used (so ``causalsre --help`` does not
import torch or PyMC). Their shared options (``--db``, ``--json``, ``--slo``, ``--window``, ``--set``,
``--seed``) and the progress bar (on stderr) are defined once, in :mod:`causalsre.cli.options`.

Exit codes, the contract of every command (also the header of docs/cli.md, :mod:`causalsre.cli.reference`):

- 0: it did what was asked;
- 1: a check or gate it ran failed: ``db check`` found a problem, ``graph check`` an independence the data
  contradicts, ``slo check --strict`` a warning, ``slo report --fail-on-alert`` a firing alert;
- 2: a user error (a bad flag, file, window or value): one line on stderr, the problem and the fix. Every
  :class:`~causalsre.errors.UserError` becomes that line here and nowhere else.
"""

from __future__ import annotations

import errno
import importlib
import sys
from pathlib import Path

import click

from causalsre import __version__
from causalsre.errors import UserError, clip

# command name -> "module:attribute". Add a line here to register a command or group.
COMMANDS: dict[str, str] = {
    "bench": "causalsre.cli.bench:bench",
    "attribute": "causalsre.cli.attribute:attribute",
    "db": "causalsre.cli.db:db",
    "demo": "causalsre.cli.demo:demo",
    "docs": "causalsre.cli.docs:docs",
    "effect": "causalsre.cli.whatif:effect",
    "eval": "causalsre.cli.evaluate:evaluate",
    "fit": "causalsre.cli.fit:fit",
    "graph": "causalsre.cli.graph:graph",
    "harness": "causalsre.cli.harness:harness",
    "postmortem": "causalsre.cli.postmortem:postmortem",
    "recommend": "causalsre.cli.whatif:recommend",
    "serve": "causalsre.cli.serve:serve",
    "slo": "causalsre.cli.slo:slo",
    "whatif": "causalsre.cli.whatif:whatif",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="causalsre")
def cli() -> None:
    """Why an LLM inference service burned its error budget, and what would have prevented it."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line and return exit code 2."""
    try:
        # Non-standalone mode returns a command's ctx.exit() code instead of exiting.
        result = cli.main(args=argv, prog_name="causalsre", standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc.one_line()}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except click.ClickException as exc:
        # Usage errors (unknown flag, bad choice, value out of range) are user errors too.
        message = clip(exc.format_message())  # click echoes the value given: cut a hostile one
        hint = ""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            hint = f" (see `{ctx.command_path} --help`)"
        dashed = _dashed_file(argv if argv is not None else sys.argv[1:], exc)
        if dashed is not None:  # it said "No such option: -d" of a file named -dash.csv
            from causalsre.safeio import brief

            message, hint = (f"{message.rstrip('.')}: {brief(dashed)} is read as options because its name starts with '-'",
                             f" (write it as ./{dashed})")
        click.echo(f"error: {message}{hint}", err=True)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as exc:
        refused = _unusable_path(exc)
        if refused is None:
            raise
        click.echo(f"error: {refused}", err=True)
        return 2
    except ValueError as exc:
        if "null byte" not in str(exc):  # os.stat/open of a path with NUL in it (only via main([...]))
            raise
        click.echo("error: a value given contains a NUL character (remove it)", err=True)
        return 2
    except Exception as exc:
        damaged = _damaged_database(exc)
        if damaged is None:
            raise  # anything else is a bug and keeps its traceback
        click.echo(f"error: {damaged}", err=True)
        return 2
    return result if isinstance(result, int) else 0


def _dashed_file(argv: list[str], exc: click.ClickException) -> str | None:
    """The argument that names an existing file whose name starts with '-', when click read it as options."""
    if not isinstance(exc, click.NoSuchOption):
        return None
    for arg in argv:
        if isinstance(arg, str) and arg.startswith("-") and arg != "-" and "=" not in arg and len(arg) < 4096:
            try:
                if Path(arg).is_file():
                    return arg
            except (OSError, ValueError):
                continue
    return None


# OS errors that mean a path the user gave cannot be used as written, wherever a command first touches it
# (pathlib's exists()/is_file() raise them too): a name over the filesystem's limit, a permission, a loop.
_PATH_ERRNOS = (errno.ENAMETOOLONG, errno.EACCES, errno.EPERM, errno.ELOOP, errno.ENOTDIR, errno.EROFS)


def _unusable_path(exc: OSError) -> str | None:
    if exc.errno not in _PATH_ERRNOS or exc.filename is None:
        return None
    from causalsre.safeio import brief
    from causalsre.telemetry.failures import IN_A_FOLDER, file_in_the_way

    blocker = file_in_the_way(Path(exc.filename)) if exc.errno == errno.ENOTDIR else None
    if blocker is not None:  # it said "Not a directory (check the path: names under 255 bytes, ...)"
        return f"cannot use the path {brief(str(exc.filename))}: {brief(str(blocker))} is a file, not a folder " \
               f"({IN_A_FOLDER})"
    return (f"cannot use the path {brief(str(exc.filename))}: {exc.strerror} (check the path: names under 255 "
            "bytes, folders that exist and that you may read and write)")


# DuckDB's errors for a file that opened but whose pages cannot be read back (damaged in the middle, cut off
# while another process held it): the user restores the file; no analysis can go on.
_DAMAGED = ("IOException", "SerializationException")


def _damaged_database(exc: BaseException) -> str | None:
    if type(exc).__module__.split(".")[0] not in ("duckdb", "_duckdb"):
        return None
    if type(exc).__name__ not in _DAMAGED and "corrupt database file" not in str(exc).lower():
        return None
    first = " ".join(str(exc).split())[:200]
    return (f"the telemetry database could not be read ({first}) (restore the file from a copy, or re-create it "
            "with the harness or `causalsre db import`)")


def entry_point() -> None:
    sys.exit(main())

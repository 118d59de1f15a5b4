"""Progress bars on stderr, for the CLI and the notebook API alike (stdout stays the result).

Library functions report progress through a plain callback, ``progress(description=None, total=None)``: a
description starts a step of ``total`` units, a bare call advances it. :func:`step_progress` turns such a
callback into a bar; no bar is drawn where stderr is not a terminal (a log, a pipe, a notebook).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(description: str, *, total: float | None = None, disable: bool = False):
    """A rich progress bar on stderr; ``disable`` for --json."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn()]
    console = Console(stderr=True)
    # Not a terminal (a log, a pipe): no bar at all, so that an error stays the one line on stderr.
    with Progress(*columns, transient=True, disable=disable or not console.is_terminal, console=console) as bar:
        bar.add_task(description, total=total)
        yield bar


@contextlib.contextmanager
def step_progress(description: str, *, disable: bool = False) -> Iterator[Callable[..., None]]:
    """``with step_progress("postmortem") as progress:`` a library step callback drawn as one bar.

    The bar is closed when the block ends, before any other live display (PyMC's sampler bar) may start:
    rich allows one at a time."""
    with progress_bar(description, disable=disable) as bar:
        task = bar.task_ids[0]

        def progress(description: str | None = None, total: float | None = None) -> None:
            if description:
                bar.update(task, description=description, total=total, completed=0)
            else:
                bar.advance(task)

        yield progress

"""A rich progress bar showing simulated time, live throughput and median TTFT."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def live_progress(name: str, duration_s: float, *, enabled: bool):
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
               TextColumn("{task.fields[live]}"), TimeElapsedColumn()]
    with Progress(*columns, transient=False, console=Console(stderr=True)) as bar:  # stdout is the result
        task = bar.add_task(name, total=duration_s, live="")

        def update(elapsed_ns: int, stats) -> None:
            ttft = stats.median_ttft_s()
            live = (f"{stats.tokens_per_s(elapsed_ns):6.0f} tok/s  TTFT p50 "
                    f"{'-' if ttft is None else f'{ttft * 1000:.0f} ms'}  done {stats.num_done}"
                    f"  rejected {stats.num_rejected}")
            bar.update(task, completed=min(elapsed_ns / 1e9, duration_s), live=live)

        yield update
        bar.update(task, completed=duration_s)

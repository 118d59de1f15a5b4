"""`causalsre demo`: the five-minute tour, end to end on this machine."""

from __future__ import annotations

import json

import click

from causalsre.cli.options import SEED, OutputFolder, json_option


@click.command("demo")
@click.option("--out", "out_dir", default="causalsre-demo", show_default=True, type=OutputFolder(),
              help="Folder for the database copy, the replay and the reports.")
@click.option("--live", is_flag=True, help="Run the scenario live instead of loading the shipped dataset.")
@click.option("--method", type=click.Choice(["gcm", "bayes", "both"]), default="both", show_default=True,
              help="What-if methods to run.")
@SEED
@json_option("Print every result as JSON (progress goes to stderr).")
def demo(out_dir: str, live: bool, method: str, seed: int, as_json: bool) -> None:
    """A scenario with a known cause: its SLO burn, the postmortem, a verified what-if, and a report.

    Example: causalsre demo --out causalsre-demo
    """
    from rich.console import Console

    from causalsre.demo import demo_json, run_demo

    console = Console(stderr=True)
    with console.status("starting", spinner="dots") as status:
        def step(text: str) -> None:
            if not as_json:
                console.log(text)
            status.update(text)

        result = run_demo(out_dir, live=live, seed=seed, method=method, step=step)
    if as_json:
        click.echo(json.dumps(demo_json(result), indent=2, default=str))
        return
    click.echo("")
    for line in result.summary_lines():
        click.echo(click.wrap_text(line, width=100) + "\n")
    if result.truth:
        click.echo(f"Ground truth (injected fault): {', '.join(result.truth)}\n")
    click.echo("Reports:  " + "  ".join(str(p) for p in result.reports))
    click.echo(f"Database: {result.database}")

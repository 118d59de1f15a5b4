"""``causalsre eval``: accuracy of attribution on data whose root causes are known."""

from __future__ import annotations

import json
from pathlib import Path

import click

_REPO_SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "petshop"


@click.group("eval")
def evaluate() -> None:
    """Score attribution against ground truth (PetShop, shipped scenarios)."""


@evaluate.command("petshop")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=str(_REPO_SHARED),
              show_default="../shared/datasets/petshop beside the checkout", help="The PetShop dataset folder (low_traffic/, high_traffic/).")
@click.option("--export", "export_dir", type=click.Path(file_okay=False), default=None,
              help="Also write each incident as normal/abnormal/edges CSV files for `causalsre attribute`.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def petshop(data_dir, export_dir, as_json):
    """Top-1/top-3 of `attribute` on every PetShop train incident, next to the published baseline.

    Example: causalsre eval petshop --data ../shared/datasets/petshop --json
    """
    from rich.progress import Progress

    from causalsre.causal import petshop as ps

    with Progress(transient=True, disable=as_json) as bar:
        task = bar.add_task("incidents", total=16)
        result = ps.evaluate(data_dir, progress=lambda: bar.advance(task))
    if export_dir:
        result["exported"] = [str(p) for p in ps.export(data_dir, export_dir)]
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"method: {result['method']}")
    click.echo(f"{'scenario':<13} {'metric':<13} {'n':>2} {'top1':>6} {'top3':>6} {'base1':>6} {'base3':>6} "
               f"{'specif.':>7} {'s/inc':>6}")
    for c in result["cells"]:
        click.echo(f"{c['scenario']:<13} {c['metric']:<13} {c['n_incidents']:>2} {c['top1']:>6.3f} "
                   f"{c['top3']:>6.3f} {c['baseline_top1']:>6.3f} {c['baseline_top3']:>6.3f} "
                   f"{c['specificity']:>7.3f} {c['seconds_per_incident']:>6.2f}")


_DEFAULT_SLO = Path(__file__).resolve().parents[2] / "models" / "slos" / "llm-serving.yaml"


@evaluate.command("scenarios")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default="datasets", show_default=True,
              help="A scenario dataset folder (truth.json + .duckdb) or a folder of them.")
@click.option("--slo", "slo_path", type=click.Path(dir_okay=False), default=str(_DEFAULT_SLO),
              show_default="models/slos/llm-serving.yaml",
              help="OpenSLO spec deciding bad events (the first SLO in the file).")
@click.option("--graph", "graph_path", type=click.Path(dir_okay=False), default=None,
              help="Causal graph spec (default: models/serving.yaml).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def scenarios(data_dir, slo_path, graph_path, seed, as_json):
    """Top-1/top-3 accuracy of `postmortem` against each scenario's known root causes.

    Example: causalsre eval scenarios --json
    """
    from rich.progress import Progress

    from causalsre.causal import load_graph
    from causalsre.causal.graph import DEFAULT_GRAPH
    from causalsre.causal.scenarios import evaluate_dataset, find_datasets, summarize
    from causalsre.slo import load_slos

    graph = load_graph(graph_path or DEFAULT_GRAPH)
    slo = load_slos(slo_path)[0]
    rows = []
    with Progress(transient=True, disable=as_json) as bar:
        for folder in find_datasets(data_dir):
            task = bar.add_task(folder.name, total=None)
            rows += evaluate_dataset(folder, slo, graph, seed=seed, progress=lambda: bar.advance(task))
    result = summarize(rows)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for r in rows:
        mark = "ok " if r["top1"] else "MISS"
        click.echo(f"{mark} {r['scenario']:<36} truth {','.join(r['truth']):<28} ranked {', '.join(r['ranked'])}")
    click.echo(f"factor top-1 {result['top1']:.3f}  top-3 {result['top3']:.3f}   "
               f"family top-1 {result['family_top1']:.3f}  top-3 {result['family_top3']:.3f}   "
               f"({result['scenarios']} scenarios; targets: family top-1 >= 0.9, factor top-1 >= 0.8)")

from causalsre.cli.eval_whatif import whatif as _whatif_calibration  # noqa: E402  (owned by the what-if module)
evaluate.add_command(_whatif_calibration)

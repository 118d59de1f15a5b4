"""``causalsre attribute``: root causes of a target's anomaly in any wide table of metrics."""

from __future__ import annotations

import json

import click

from causalsre.cli.options import json_option


@click.command("attribute")
@click.option("--normal", "normal_path", required=True, type=click.Path(dir_okay=False),
              help="Normal-operation rows: CSV or Parquet, one column per node.")
@click.option("--abnormal", "abnormal_path", required=True, type=click.Path(dir_okay=False),
              help="Rows around the anomaly, same columns.")
@click.option("--graph", "graph_path", required=True, type=click.Path(dir_okay=False),
              help="Edge list CSV: cause,effect (a header row is optional).")
@click.option("--target", required=True, help="The node whose anomaly to explain.")
@click.option("--threshold", type=float, default=None,
              help="Robust z-score a root cause must exceed: positive and finite (default 4).")
@click.option("--top", type=click.IntRange(1), default=10, show_default=True, help="How many candidates to print.")
@json_option('Print {"root_causes": [{node, score}, ...]} best first.')
def attribute(normal_path, abnormal_path, graph_path, target, threshold, top, as_json):
    """Rank root-cause candidates of TARGET's anomaly (or say that nothing is anomalous).

    Example: causalsre attribute --normal normal.csv --abnormal incident.csv --graph edges.csv --target latency

    Every column named in the graph must be numeric; the graph may have up to 20,000 nodes.
    """
    from causalsre.causal.rootcause import DEFAULT_THRESHOLD, rank_root_causes, read_edges, read_table
    from causalsre.causal.rootcause_input import check_threshold

    threshold = DEFAULT_THRESHOLD if threshold is None else check_threshold(threshold)  # before reading files
    graph = read_edges(graph_path)
    normal, abnormal = read_table(normal_path), read_table(abnormal_path)
    ranked = rank_root_causes(normal, abnormal, graph, target, threshold=threshold)[:top]
    if as_json:
        click.echo(json.dumps({"target": target, "root_causes": [
            {"node": c.node, "score": round(c.score, 6), "marginal_z": round(c.marginal_z, 3),
             "residual_z": round(c.residual_z, 3)} for c in ranked]}))
        return
    if not ranked:
        click.echo(f"nothing anomalous: {target} is within its normal range")
        return
    click.echo(f"root-cause candidates for {target} (score: anomalies explained + share of the deviation)")
    for rank, cause in enumerate(ranked, start=1):
        click.echo(f"{rank:>3}. {cause.node}  score {cause.score:.3f}  z {cause.marginal_z:+.1f}"
                   f"  z|parents {cause.residual_z:+.1f}")

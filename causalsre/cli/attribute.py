"""``causalsre attribute``: root causes of a target's anomaly in any wide table of metrics."""

from __future__ import annotations

import os

import click

from causalsre.cli.options import INPUT_FILE, json_option


@click.command("attribute")
@click.option("--normal", "normal_path", required=True, type=INPUT_FILE,
              help="Normal-operation rows: CSV or Parquet, one column per node.")
@click.option("--abnormal", "abnormal_path", required=True, type=INPUT_FILE,
              help="Rows around the anomaly, same columns.")
@click.option("--graph", "graph_path", required=True, type=INPUT_FILE,
              help="Edge list CSV: cause,effect (a header row is optional).")
@click.option("--target", required=True, help="The node whose anomaly to explain.")
@click.option("--threshold", type=float, default=None,
              help="Robust z-score a root cause must exceed: positive and finite (default 4).")
@click.option("--top", type=click.IntRange(1, 20_000), default=10, show_default=True,
              help="How many candidates to print.")
@json_option('Print {"root_causes": [{node, score}, ...]} best first.')
def attribute(normal_path, abnormal_path, graph_path, target, threshold, top, as_json):
    """Rank root-cause candidates of TARGET's anomaly (or say that nothing is anomalous).

    Example: causalsre attribute --normal normal.csv --abnormal incident.csv --graph edges.csv --target latency

    Every column named in the graph must be numeric; the graph may have up to 20,000 nodes.
    """
    from causalsre.api import attribute as rank
    from causalsre.causal.rootcause_input import check_threshold
    from causalsre.safeio import WIDE_COLUMNS, check_table

    # Bounded before pandas reads them: a 200,000-column table took half a minute to be refused.
    # A missing file is left to the reader, which says so in the order it reads (the graph first).
    for what, path in (("--graph edge list", graph_path), ("--normal table", normal_path),
                       ("--abnormal table", abnormal_path)):
        if os.path.exists(path):
            check_table(path, what=what, max_columns=WIDE_COLUMNS)

    if threshold is not None:
        threshold = check_threshold(threshold)  # here, for the message to name the option (--threshold)
    # The one implementation is the API's (cs.attribute): this command parses options and prints.
    result = rank(normal_path, abnormal_path, graph=graph_path, target=target, threshold=threshold, top=top)
    if as_json:
        click.echo(result.to_json())
        return
    ranked = result.data["root_causes"]
    if not ranked:
        click.echo(f"nothing anomalous: {target} is within its normal range")
        return
    click.echo(f"root-cause candidates for {target} (score: anomalies explained + share of the deviation)")
    for place, cause in enumerate(ranked, start=1):
        click.echo(f"{place:>3}. {cause['node']}  score {cause['score']:.3f}  z {cause['marginal_z']:+.1f}"
                   f"  z|parents {cause['residual_z']:+.1f}")

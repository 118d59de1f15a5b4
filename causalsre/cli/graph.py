"""``causalsre graph``: check the causal graph against data, learn one from data, or draw it."""

from __future__ import annotations

import json

import click

from causalsre.cli.options import DB, GRAPH, INPUT_FILE, OUTPUT_FILE, RUN, SEED, SLO_NAME, finite, json_option, slo_option, \
    window_option
from causalsre.windows import FORMS

_WINDOW = window_option(required=False, help=f"Restrict to a window: {FORMS} (default: every request).")


def _table(db_path, graph, window_text, slo_path, slo_name=None, run_id=None):
    from causalsre.causal import build_analysis_table
    from causalsre.telemetry import connect_readonly
    from causalsre.windows import Window, parse_window

    slo = None
    if slo_path:
        from causalsre.whatif.context import pick_slo

        slo = pick_slo(slo_path, slo_name)
    con = connect_readonly(db_path)
    try:
        if window_text or run_id:  # --run alone is the whole run
            window = parse_window(window_text or "run:", con, run=run_id)  # "run:" takes the id from run=
        else:
            window = Window(label="all requests")
        return build_analysis_table(con, slo, window=window, graph=graph)
    finally:
        con.close()


@click.group("graph")
def graph() -> None:
    """Check the causal graph against data, learn one, or draw it."""


@graph.command("check")
@DB
@GRAPH
@_WINDOW
@RUN
@slo_option(required=False, help="SLO deciding is_bad.")
@SLO_NAME
@click.option("--alpha", type=finite(0, 1, min_open=True, max_open=True), default=0.01, show_default=True,
              help="Family-wise level (Bonferroni).")
@json_option()
def check(db_path, graph_path, window_text, run_id, slo_path, slo_name, alpha, as_json):
    """Test the independences the graph implies; list those the data contradicts. Exit 1 when any fails.

    Example: causalsre graph check --db datasets/cpu-tiny/suite.duckdb --graph models/serving.yaml

    One run's incident: causalsre graph check --db suite.duckdb --run rate_surge-s0 --window phase:incident
    """
    from causalsre.causal import load_graph
    from causalsre.causal.graph import DEFAULT_GRAPH
    from causalsre.causal.structure import check_graph

    spec = load_graph(graph_path or DEFAULT_GRAPH)
    result = check_graph(_table(db_path, spec, window_text, slo_path, slo_name, run_id), spec, alpha=alpha)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        _echo_check(result)
    if result["failed"]:
        raise click.exceptions.Exit(1)  # a check that found a problem (docs/cli.md: exit codes)


def _echo_check(result: dict) -> None:
    click.echo(f"{result['tests']} implied independences tested on {result['rows']} requests "
               f"({len(result['skipped_constant'])} constant nodes skipped); {len(result['failed'])} fail")
    for t in result["failed"]:
        given = ", ".join(t["given"]) or "nothing"
        click.echo(f"  {t['x']} and {t['y']} are dependent given {given} "
                   f"(partial rank corr {t['partial_corr']:+.2f}, p={t['p_value']:.1e}): an edge may be missing")


@graph.command("learn")
@DB
@click.option("--graph", "graph_path", type=INPUT_FILE, default=None, help="Spec to diff against.")
@_WINDOW
@RUN
@click.option("--method", type=click.Choice(["pc", "hill-climb"]), default="pc", show_default=True)
@SEED
@json_option()
def learn(db_path, graph_path, window_text, run_id, method, seed, as_json):
    """Learn a structure with pgmpy under the tier rule and print it as a diff against the spec.

    Example: causalsre graph learn --db datasets/cpu-tiny/suite.duckdb
    """
    from causalsre.causal import load_graph
    from causalsre.causal.graph import DEFAULT_GRAPH
    from causalsre.causal.structure import learn_graph

    spec = load_graph(graph_path or DEFAULT_GRAPH)
    result = learn_graph(_table(db_path, spec, window_text, None, run_id=run_id), spec, method=method.replace("-", ""),
                         seed=seed)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{method} on {result['rows']} requests, {len(result['nodes'])} varying nodes")
    for cause, effect in result["only_in_data"]:
        click.echo(f"+ {cause} -> {effect}")
    for cause, effect in result["only_in_spec"]:
        click.echo(f"- {cause} -> {effect}")
    click.echo(f"  ({len(result['in_both'])} edges in both; + learned only, - spec only)")


@graph.command("show")
@GRAPH
@click.option("--out", "out_path", required=True, type=OUTPUT_FILE, help="Image file (.png, .svg).")
@json_option('Print {"wrote": PATH, "nodes": N, "edges": N} as JSON.')
def show(graph_path, out_path, as_json):
    """Draw the graph, roots left and outcomes right, coloured by family.

    Example: causalsre graph show --out graph.png
    """
    from causalsre.causal import load_graph
    from causalsre.causal.graph import DEFAULT_GRAPH
    from causalsre.report.palette import check_image_path
    from causalsre.report.plots import draw_graph

    check_image_path(out_path, "--out")  # before drawing: a typo must not cost the work, nor a traceback
    spec = load_graph(graph_path or DEFAULT_GRAPH)
    draw_graph(spec, out_path)
    if as_json:
        click.echo(json.dumps({"wrote": out_path, "nodes": len(spec.nodes), "edges": len(spec.edges)}))
        return
    click.echo(f"wrote {out_path}")

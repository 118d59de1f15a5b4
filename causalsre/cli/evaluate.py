"""``causalsre eval``: accuracy of attribution on data whose root causes are known."""

from __future__ import annotations

import json

import click

from causalsre.cli.options import INPUT_FILE, OutputFolder, finite, json_option, seed_option, slo_option
from causalsre.resources import DEMO_SUITE
from causalsre.resources import SLO_SPEC as _DEFAULT_SLO  # models/slos/llm-serving.yaml, shipped as package data

_SHIPPED_SUITE = DEMO_SUITE.parent  # datasets/cpu-tiny, shipped as package data


@click.group("eval")
def evaluate() -> None:
    """Score attribution against ground truth (PetShop, shipped or generated scenario suites)."""


@evaluate.command("petshop")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), required=True,
              help="The PetShop dataset folder (low_traffic/, high_traffic/); it is not shipped with the package.")
@click.option("--export", "export_dir", type=OutputFolder(), default=None,
              help="Also write each incident as normal/abnormal/edges CSV files for `causalsre attribute`.")
@click.option("--peers", "peers", default=None, metavar="all|NAME,...",
              help="Also run peer methods on the same incidents (DoWhy gcm; RCAEval from the `peers` extra); "
                   "names: docs/evaluation.md. Missing ones are listed with the reason.")
@click.option("--synthetic", "synthetic", type=click.IntRange(0, 500), default=0, show_default=True,
              help="Also generate this many incidents per (traffic, metric) cell with a known culprit at any "
                   "service (from the normal data and the call graph); they join the leave-one-out pool.")
@seed_option(default=1, help="Seed of the --synthetic incidents (1 is the development seed).")
@click.option("--synthetic-out", "synthetic_dir", type=OutputFolder(), default=None,
              help="Keep the generated incidents in this folder (train-split layout); default: a temporary folder.")
@click.option("--peer-cap-s", "peer_cap_s", type=finite(0.1, 3600), default=120.0, show_default=True,
              help="Seconds a peer may take on one incident; past it the incident is a miss, listed as a timeout.")
@json_option("Print the results as JSON.")
def petshop(data_dir, export_dir, peers, synthetic, seed, synthetic_dir, peer_cap_s, as_json):
    """Leave-one-out top-1/top-3 of `attribute` on the PetShop train incidents, next to the published baseline.

    Every setting of `attribute` (gates, minimum share, unexplained share, path rule, footprint rule,
    abnormal window) is chosen on the other incidents for each held-out one; the per-fold choice is in
    --json. --synthetic N adds N generated incidents per cell whose culprit is any service, and also scores
    the shipped defaults (the frozen method) on them ("froz1"/"froz3"), listing each miss.

    Example: causalsre eval petshop --data ../shared/datasets/petshop --synthetic 25 --seed 1 --peers all --json
    """
    from rich.console import Console
    from rich.progress import Progress

    from causalsre.causal import petshop_eval as pe

    names = None if peers is None else [n.strip() for n in peers.split(",") if n.strip()]
    if names == ["all"]:
        names = "all"
    with Progress(transient=True, disable=as_json, console=Console(stderr=True)) as bar:
        task = bar.add_task("incidents x settings", total=16 + 4 * synthetic)
        result = pe.evaluate(data_dir, progress=lambda: bar.advance(task), peers=names, synthetic=synthetic,
                             seed=seed, synthetic_dir=synthetic_dir, peer_cap_s=peer_cap_s)
    if export_dir:
        from causalsre.causal.petshop import export

        result["exported"] = [str(p) for p in export(data_dir, export_dir)]
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for line in pe.summary_lines(result):
        click.echo(line)


@evaluate.command("scenarios")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=str(_SHIPPED_SUITE),
              show_default="the shipped cpu-tiny suite",
              help="A scenario suite folder (truth.json + .duckdb), e.g. one from `eval generate`, or a folder of them.")
@slo_option(default=str(_DEFAULT_SLO), show_default="models/slos/llm-serving.yaml",
            help="OpenSLO spec deciding bad events (the first SLO in the file); a suite folder with its own "
                 "slo.yaml uses that one instead.")
@click.option("--graph", "graph_path", type=INPUT_FILE, default=None,
              help="Causal graph spec (default: models/serving.yaml).")
@seed_option(help="Seed of the postmortem's sampling.")
@click.option("--peers", default=None, metavar="NAMES",
              help="Also score peer methods on the same cases: comma-separated (gcm_attribute_anomalies, "
                   "gcm_distribution_change, rcaeval_baro, rcaeval_nsigma, rcaeval_circa) or 'all'.")
@json_option("Print the results as JSON.")
def scenarios(data_dir, slo_path, graph_path, seed, peers, as_json):
    """Factor/family top-1 and top-3 of `postmortem` on each fault scenario, false alarms on the controls.

    The windows are each scenario's baseline and incident phases, unless its truth.json entry gives
    "windows": {"baseline": W, "incident": W} (any window form, within its run, e.g. "+2:+14" or ISO
    START/END); a suite folder's own slo.yaml replaces --slo for that folder.

    Example: causalsre eval scenarios --data /tmp/suite-7 --json
    """
    from rich.console import Console
    from rich.progress import Progress

    from causalsre.causal import load_graph
    from causalsre.causal.graph import DEFAULT_GRAPH
    from causalsre.evaluation.score import find_datasets, score_suite
    from causalsre.whatif.context import pick_slo

    graph = load_graph(graph_path or DEFAULT_GRAPH)
    slo = pick_slo(slo_path, None)  # the first SLO of the file
    find_datasets(data_dir)  # a missing suite fails before the progress bar starts
    if peers:  # an unknown peer fails before minutes of postmortems
        from causalsre.evaluation.scenario_peers import peer_names, score_peers

        peers = peer_names(peers)
    with Progress(transient=True, disable=as_json, console=Console(stderr=True)) as bar:
        task = bar.add_task("postmortems", total=None)
        result = score_suite(data_dir, slo, graph, seed=seed, progress=lambda: bar.advance(task))
        if peers:
            task = bar.add_task("peers", total=None)
            result["peers"] = score_peers(data_dir, slo, graph, peers, seed=seed,
                                          progress=lambda: bar.advance(task))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for r in result["cases"]:
        mark = ("FALSE ALARM" if r["false_alarm"] else "clean") if r["control"] else ("ok" if r["top1"] else "MISS")
        truth = ",".join(r["truth"]) or "(no cause)"
        click.echo(f"{mark:<11} {r['scenario']:<44} truth {truth:<36} ranked {', '.join(r['ranked'])}"
                   f"  {r['seconds']:.1f} s")
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    t = result["targets"]
    click.echo(f"factor top-1 {fmt(result['top1'])} (target >= {t['top1']})  all-true-in-top-3 "
               f"{fmt(result['top3'])} (>= {t['top3']})  family top-1 {fmt(result['family_top1'])} "
               f"(>= {t['family_top1']})  false alarms {fmt(result['false_alarm_rate'])} (<= {t['false_alarm_rate']})")
    click.echo(f"named top-1 (first and its interval excludes 0) {fmt(result.get('named_top1'))}")
    click.echo(f"{result['fault_scenarios']} fault scenarios, {result['controls']} controls, "
               f"{result['seconds']:.0f} s of postmortems")
    if peers:
        from causalsre.evaluation.scenario_peers import summary_lines

        for line in summary_lines(result["peers"]):
            click.echo(line)


@evaluate.command("generate")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), required=True,
              help="Seed of every draw: a seed draws the same scenarios (re-draws depend on the machine).")
@click.option("--count", type=click.IntRange(3, 10_000), default=12, show_default=True,  # 10**20: OverflowError
              help="Scenarios to draw.")
@click.option("--out", "out_dir", type=OutputFolder(), required=True,
              help="New folder for suite.duckdb, truth.json and manifest.json.")
@click.option("--phase-s", "phase_s", type=(float, float), default=(10.0, 16.0), show_default=True,
              metavar="MIN MAX", help="Range of each phase's length in seconds (short ones for a smoke suite).")
@click.option("--clock", type=click.Choice(["wall", "modelled"]), default="wall", show_default=True,
              help="modelled: every run (and every later replay of it) advances time by a step-cost model fitted "
                   "once at the start, so the machine's load does not move the burn; leaves out cpu_contention and "
                   "fewer_threads, which act through the machine's speed alone.")
@click.option("--clock-model", type=click.Path(dir_okay=False), default=None,
              help="With --clock modelled: reuse this clock_model.json (of an earlier suite or eval govern).")
@click.option("--resume", is_flag=True,
              help="Finish the interrupted suite in --out (same --seed, --count, --phase-s, --clock): the scenarios "
                   "it recorded are kept, the rest drawn as planned.")
@json_option("Print the manifest as JSON.")
def generate(seed, count, out_dir, phase_s, clock, clock_model, resume, as_json):
    """Draw a fresh scenario suite at random and record it with the harness (tiny model, one thread).

    At least a third are two-cause mixes and a tenth no-fault controls; each fault scenario is checked to
    burn budget and re-drawn (at most 3 times) when it does not. Ranges: docs/evaluation.md.

    Example: causalsre eval generate --seed 7 --count 12 --out /tmp/suite-7 [--clock modelled]
    """
    from rich.console import Console
    from rich.progress import Progress

    from causalsre.evaluation.generate import generate_suite, summary_lines

    with Progress(console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("generating", total=count)

        def progress(index: int, label: str) -> None:
            bar.update(task, completed=index, description=label)

        manifest = generate_suite(out_dir, seed=seed, count=count, phase_s=phase_s, progress=progress,
                                  clock=clock, clock_model=clock_model, resume=resume)
        bar.update(task, completed=count, description="done")
    if as_json:
        click.echo(json.dumps(manifest, indent=2, default=str))
        return
    for line in summary_lines(manifest):
        click.echo(line)


from causalsre.cli.eval_whatif import whatif as _whatif_calibration  # noqa: E402  (owned by the what-if module)
evaluate.add_command(_whatif_calibration)
from causalsre.cli.eval_govern import govern as _govern  # noqa: E402  (the governor's evaluation)
evaluate.add_command(_govern)

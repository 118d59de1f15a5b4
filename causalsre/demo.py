"""The end-to-end demo: a scenario with a known cause, its SLO burn, the postmortem, a verified what-if,
and a report. `causalsre demo` prints a short summary; `report.html` and `report.md` hold the rest.

The telemetry comes from the shipped dataset (`datasets/cpu-tiny`, built by the harness's scenario suite,
installed with the package) when it is there, else the scenario is run live on this machine; the what-if's
`--verify` always runs the harness for real.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from causalsre.errors import UserError
from causalsre.resources import DEMO_SUITE as DATASET  # datasets/cpu-tiny, shipped as package data
from causalsre.resources import DEMO_TRUTH as TRUTH
from causalsre.resources import SLO_SPEC
from causalsre.telemetry import first_row

SCENARIO = "push_max_num_seqs"


@dataclass
class DemoResult:
    out_dir: Path
    database: Path
    run_id: str
    source: str
    slo: dict
    postmortem: dict
    whatif: dict
    truth: list[str]
    reports: list[Path] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    def summary_lines(self) -> list[str]:
        from causalsre.report.builders import postmortem_summary, slo_summary, whatif_summary

        return [slo_summary(self.slo), postmortem_summary(self.postmortem), whatif_summary(self.whatif)]


def _prepare_database(out_dir: Path, live: bool, seed: int, step: Callable[[str], None]) -> tuple[Path, str, str]:
    database = out_dir / "telemetry.duckdb"
    from causalsre.safeio import copy_file, remove_file

    remove_file(database)  # a regular file or a link (the link goes, never its target); a FIFO is refused
    if not live and DATASET.exists():
        copy_file(DATASET, database, what="demo database")
        return database, f"{SCENARIO}-s0", "shipped dataset cpu-tiny"
    from harness.scenarios import run_scenario

    step(f"running scenario {SCENARIO} live (about a minute)")
    run_id = run_scenario(SCENARIO, database, seed=seed)
    return database, run_id, f"scenario {SCENARIO} run live on this machine"


def blamed_knob(postmortem: dict, graph) -> str | None:
    """The top-attributed factor that an operator can change (a knob of the graph), if any."""
    for row in postmortem.get("attributions", []):
        node = graph.nodes.get(row["factor"])
        if node is not None and node.actionable and node.role == "knob" and row["contribution"] > 0:
            return row["factor"]
    return None


def baseline_value(database: Path, run_id: str, knob: str) -> float | None:
    """The knob's value during the baseline phase (what the incident changed it from)."""
    from causalsre.telemetry import connect_readonly

    con = connect_readonly(database)
    try:
        row = first_row(con.execute(
            "SELECT s.value FROM settings_timeline s JOIN phases p ON p.run_id = s.run_id "
            "WHERE s.run_id = ? AND p.name = 'baseline' AND s.setting = ? AND s.start_ns <= p.start_ns "
            "ORDER BY s.start_ns DESC LIMIT 1", [run_id, knob]))
    finally:
        con.close()
    return None if row is None or row[0] is None else float(row[0])


def run_demo(out_dir: str | Path, *, live: bool = False, seed: int = 0, method: str = "both",
             step: Callable[[str], None] = lambda _: None) -> DemoResult:
    """Run the whole demo into ``out_dir``; returns every result (also written as report.html/.md)."""
    from causalsre.causal import load_graph
    from causalsre.causal.graph import DEFAULT_GRAPH
    from causalsre.causal.postmortem import postmortem
    from causalsre.slo import load_slos
    from causalsre.slo.report import build_report
    from causalsre.telemetry import connect_readonly
    from causalsre.whatif.run import run_whatif
    from causalsre.windows import parse_window

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file", "give a folder for the demo's output")
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    step("[1/5] telemetry")
    database, run_id, source = _prepare_database(out_dir, live, seed, step)
    timings["telemetry"] = time.perf_counter() - clock
    slo = load_slos(SLO_SPEC)[0]
    graph = load_graph(DEFAULT_GRAPH)

    step("[2/5] SLO and error budget")
    clock = time.perf_counter()
    con = connect_readonly(database)
    try:
        timelines: list = []
        slo_report = build_report(con, [slo], where={"run_id": run_id}, timelines=timelines)[0]
        step("[3/5] postmortem: why the budget burned")
        timings["slo"] = time.perf_counter() - clock
        clock = time.perf_counter()
        baseline = parse_window(f"phase:baseline@{run_id}", con)
        incident = parse_window(f"phase:incident@{run_id}", con)
        pm = postmortem(con, slo, baseline, incident, graph, seed=seed)
        pm["slo"] = slo.name
    finally:
        con.close()
    timings["postmortem"] = time.perf_counter() - clock

    knob = blamed_knob(pm, graph) or "max_num_seqs"
    value = baseline_value(database, run_id, knob)
    if value is None:
        raise UserError(f"the demo's run {run_id} has no baseline value for {knob}", "rebuild the dataset")
    setting = f"{knob}={value:g}"
    step(f"[4/5] what-if: {setting}, verified by replaying the incident through the engine")
    clock = time.perf_counter()
    whatif = run_whatif(str(database), str(SLO_SPEC), f"phase:incident@{run_id}", [setting], method=method,
                        verify=True, verify_db=str(out_dir / "verify.duckdb"), seed=seed)
    timings["whatif"] = time.perf_counter() - clock

    truth = []
    if TRUTH.exists() and source.startswith("shipped"):
        truth = json.loads(TRUTH.read_text()).get(SCENARIO, {}).get("root_cause_factors", [])
    result = DemoResult(out_dir, database, run_id, source, slo_report, pm, whatif, truth, timings_s=timings)
    step("[5/5] report")
    result.reports = write_demo_reports(result, graph, timelines)
    return result


def write_demo_reports(result: DemoResult, graph, timelines) -> list[Path]:
    from causalsre.report import Report, Section, Table, write_report
    from causalsre.report.builders import diagnostics_section, postmortem_sections, slo_section, whatif_section

    setup = Section("What happened", paragraphs=[
        f"Telemetry: {result.source} (run {result.run_id}), written by the harness: a Llama-style model served by "
        "this project's inference engine (continuous batching, chunked prefill, paged KV cache) under a "
        "Poisson load. Twelve seconds of baseline, then a configuration push lowered max_num_seqs.",
        "The postmortem does not read the injected fault: the ground truth is kept apart and shown here only "
        "to check the answer."],
        tables=[Table(["ground truth (injected)", "value"], [["root-cause factors", ", ".join(result.truth) or "-"]])]
        if result.truth else [])
    sections = [setup, slo_section([result.slo], timelines), *postmortem_sections(result.postmortem, graph),
                whatif_section(result.whatif)]
    diagnostics = diagnostics_section(result.whatif.get("diagnostics"))
    if diagnostics is not None:
        sections.append(diagnostics)
    report = Report("causalsre demo: why the error budget burned, and what would have prevented it",
                    result.summary_lines(), sections,
                    {"database": str(result.database), "run": result.run_id, "source": result.source,
                     **{f"time {k} (s)": round(v, 1) for k, v in result.timings_s.items()}})
    return [write_report(report, result.out_dir / "report.html"), write_report(report, result.out_dir / "report.md")]


def demo_json(result: DemoResult) -> dict[str, Any]:
    return {"database": str(result.database), "run_id": result.run_id, "source": result.source,
            "reports": [str(p) for p in result.reports], "truth": result.truth, "slo": result.slo,
            "postmortem": result.postmortem, "whatif": result.whatif, "timings_s": result.timings_s}

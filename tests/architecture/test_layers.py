"""The layers of docs/architecture.md, checked on the source of every module (imports at module level and
inside functions alike, read with ast):

    harness/engine/  ->  nothing of causalsre, nothing of the harness outside the engine
    harness/         ->  causalsre only for the telemetry contract (schema, connect, storage errors) and
                         the error type
    causalsre/       ->  harness only for the contract modules (the error type, the settings table), except
                         in the modules that run the harness (replay, demo, bench, serve, suite generation)
    no import cycles, at module level or through function-level imports
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.architecture.imports import ImportGraph

ROOT = Path(__file__).resolve().parents[2]

# What the harness may use of causalsre: the telemetry store's contract and the one error type.
HARNESS_MAY_IMPORT = {
    "causalsre.errors",  # UserError (defined in harness.engine.errors, re-exported here)
    "causalsre.telemetry",  # SCHEMA_VERSION, connect_readonly/connect_writable, migrate, schema_version
    "causalsre.telemetry.schema",  # the same functions, and remove_database
    "causalsre.telemetry.failures",  # one-line storage errors (disk full, locked file) for the writer
    "causalsre.safeio",  # the bounded readers of user files (size, UTF-8, nesting, YAML aliases): input contract
}
# Known breaches, each with the work that removes it (a strict xfail below notices when it is gone).
KNOWN_HARNESS_EXCEPTIONS: dict[str, str] = {}
KNOWN_CYCLES: dict[frozenset, str] = {}
# Harness modules that the analysis may import anywhere: the error class and the settings table (names,
# bounds, graph nodes and `runs` columns of every engine setting) are shared vocabulary, like the schema.
CONTRACT_MODULES = {"harness.engine.errors", "harness.settings", "harness.engine.settings"}
# The analysis modules that run the harness, and so may import any of it.
RUNS_THE_HARNESS = {
    "causalsre.cli.bench": "the engine benchmark",
    "causalsre.bench.serve": "drives the engine in-process and behind `causalsre serve` (bench serve)",
    "causalsre.cli.harness": "harness run/sweep/scenario/suite/replay commands",
    "causalsre.cli.serve": "serves the engine over HTTP",
    "causalsre.demo": "runs the demo scenario live without the shipped dataset",
    "causalsre.whatif.verify": "replays a window through the engine (whatif --verify)",
    "causalsre.whatif.governor": "the governor's tiers (its config loader) and replays under it (whatif, recommend)",
    "causalsre.causal.verify": "replays the incident with each named cause reverted (postmortem --verify)",
    "causalsre.evaluation.generate": "records random scenario suites with the harness",
    "causalsre.evaluation.generate_clock": "fits eval generate's step-cost model on real engine steps (modelled clock)",
    "causalsre.evaluation.ranges": "the documented ranges are the harness's own knob and fault sets",
    "causalsre.evaluation.govern": "runs every scheduling policy on the same requests (eval govern)",
    "causalsre.evaluation.govern_traffic": "builds and calibrates eval govern's traffic with the harness",
    "causalsre.evaluation.govern_clock": "fits eval govern's step-cost model on real engine steps (modelled clock)",
    "causalsre.evaluation.govern_vllm": "runs eval govern through the gateway in front of the real vLLM peer",
}


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return ImportGraph(ROOT, ["causalsre", "harness", "bench"])


def _is(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_engine_imports_nothing_outside_itself(graph):
    found = [imp.where(ROOT) for imp in graph.imports if _is(imp.importer, "harness.engine")
             and (_is(imp.target, "causalsre") or (_is(imp.target, "harness") and not _is(imp.target, "harness.engine")))]
    assert not found, "the engine must stand alone (docs/architecture.md):\n" + "\n".join(found)


def _harness_beyond_the_contract(graph) -> list:
    return [imp for imp in graph.imports if _is(imp.importer, "harness") and _is(imp.target, "causalsre")
            and graph.resolve(imp.target) not in HARNESS_MAY_IMPORT]


def test_the_harness_uses_only_the_telemetry_contract_and_the_error_type(graph):
    found = [imp.where(ROOT) for imp in _harness_beyond_the_contract(graph)
             if graph.resolve(imp.target) not in KNOWN_HARNESS_EXCEPTIONS]
    assert not found, "harness -> causalsre beyond the contract (docs/architecture.md):\n" + "\n".join(found)


@pytest.mark.skipif(not KNOWN_HARNESS_EXCEPTIONS, reason="no known exceptions")
@pytest.mark.xfail(strict=True, reason="; ".join(KNOWN_HARNESS_EXCEPTIONS.values()))
def test_the_known_harness_exceptions_are_gone(graph):
    # strict: once the import is gone this passes, fails as XPASS, and the entry must be removed above
    assert not [imp.where(ROOT) for imp in _harness_beyond_the_contract(graph)]


def test_the_analysis_imports_the_harness_only_where_it_runs_it(graph):
    found = [imp.where(ROOT) for imp in graph.imports if _is(imp.importer, "causalsre") and _is(imp.target, "harness")
             and imp.importer not in RUNS_THE_HARNESS and graph.resolve(imp.target) not in CONTRACT_MODULES]
    assert not found, "causalsre -> harness outside the modules that run it (docs/architecture.md):\n" + "\n".join(found)


def test_the_listed_modules_exist(graph):
    # a renamed module must be renamed here too, or the allowance silently covers nothing
    listed = set(RUNS_THE_HARNESS) | CONTRACT_MODULES | HARNESS_MAY_IMPORT
    assert not listed - set(graph.modules), sorted(listed - set(graph.modules))


def _members(cycle: list[str]) -> frozenset[str]:
    return frozenset(step.split()[1] for step in cycle)  # "path:line importer -> target"


@pytest.mark.parametrize("top_level_only", [True, False], ids=["module-level", "with-function-level"])
def test_no_import_cycles(graph, top_level_only):
    cycles = [c for c in graph.cycles(top_level_only=top_level_only) if _members(c) not in KNOWN_CYCLES]
    shown = "\n\n".join("\n".join(cycle) for cycle in cycles)
    assert not cycles, f"import cycles (move the shared piece into a module both import):\n{shown}"


@pytest.mark.skipif(not KNOWN_CYCLES, reason="no known cycles")
@pytest.mark.xfail(strict=True, reason="; ".join(KNOWN_CYCLES.values()))
def test_the_known_cycles_are_gone(graph):
    # strict: once the cycle is gone this passes, fails as XPASS, and the entry must be removed above
    assert not [c for c in graph.cycles(top_level_only=False) if _members(c) in KNOWN_CYCLES]

"""Every factor the harness records, in one table, and every list of them derived from it.

:data:`harness.engine.settings.ENGINE_SETTINGS` declares the engine's knobs; :data:`FACTORS` here adds what
the harness itself records about a run: injected hardware faults (``step_delay_s``, ``cpu_contention``),
the workload (offered ``arrival_rate``, ``burstiness``, mean lengths, the heaviest ``tenant``) and the
``runs`` columns that are no knob (``arrival_process``). Each entry says its graph node in
``models/serving.yaml`` or why it is excluded; ``tests/causal/test_graph_coverage.py`` fails when the graph
and this table disagree, and the postmortem refuses a graph that omits a setting that changed between its
windows (:func:`causalsre.causal.graph.check_recorded_settings`).

The run-level bounds below are documented in docs/harness.md; they bound the work one run may ask for.
"""

from __future__ import annotations

from harness.engine.settings import ENGINE_SETTINGS, SETTINGS, TEXT_KINDS, Setting

# Run-level bounds (docs/harness.md "Limits"): a rate or duration past these is a typo, not an experiment.
MAX_RATE_RPS = 10_000.0            # offered requests per second, base plus surges and floods
MAX_DURATION_S = 86_400.0          # one day of arrivals (and at most one day of drain)
MAX_REQUESTS = 10_000_000          # requests one run may schedule (rate x duration)
MAX_SEED = SETTINGS["seed"].high   # seeds are 32-bit everywhere
MAX_TOKENS = 1_048_576             # a prompt or output length
MAX_CONCURRENCY = 10_000           # closed-loop clients
MAX_LOAD_FRACTION = 100.0          # of the calibrated capacity
MAX_FACTOR = 1_000.0               # a surge or length factor
MAX_THREADS = int(SETTINGS["num_threads"].high)
MAX_CONTENTION_WORKERS = 256
MAX_STEP_DELAY_S = 60.0

_W, _H = "workload", "hardware"

# Factors the harness records that are not engine knobs. ``zero_when_absent``: injected faults (no row, no
# injection). ``per_request``: the analysis measures it per request (the graph node is that measurement).
FACTORS: tuple[Setting, ...] = (
    Setting("step_delay_s", "float", 0.0, _H, "step_delay_s", "extra delay per engine step (fault)", low=0,
            high=MAX_STEP_DELAY_S, fault_kinds=("step_delay",)),
    Setting("cpu_contention", "int", 0, _H, "cpu_contention", "busy competing processes (fault)", low=0,
            high=MAX_CONTENTION_WORKERS, fault_kinds=("cpu_contention",)),
    Setting("arrival_rate", "float", None, _W, "arrival_rate", "offered requests per second", low=0,
            low_open=True, high=MAX_RATE_RPS, nullable=True, runs_column="arrival_rate",
            fault_kinds=("rate_surge",)),
    Setting("burstiness", "float", 1.0, _W, "burstiness", "gamma shape of inter-arrival times", low=0,
            low_open=True, high=1e6, nullable=True, runs_column="burstiness", fault_kinds=("burstier",)),
    Setting("prompt_tokens", "float", None, _W, "prompt_tokens", "mean prompt length", low=1, high=MAX_TOKENS,
            fault_kinds=("longer_prompts",)),
    Setting("output_tokens", "float", None, _W, "output_tokens", "mean output length", low=1, high=MAX_TOKENS,
            fault_kinds=("longer_outputs",)),
    Setting("tenant", "choice", "default", _W, "tenant", "heaviest tenant by offered share",
            fault_kinds=("tenant_flood",)),
    # A closed loop's load is its clients, not a rate: the bench importers record a closed-loop result's
    # --max-concurrency here (vllm bench serve and sglang.bench_serving with --request-rate inf).
    Setting("max_concurrency", "int", None, _W, "max_concurrency", "closed-loop clients (--max-concurrency)",
            low=1, high=MAX_CONCURRENCY, nullable=True),
    Setting("arrival_process", "choice", "poisson", _W, None, "poisson, gamma, closed, trace, ...",
            runs_column="arrival_process",
            excluded="its effect is measured by the arrival_rate and burstiness nodes"),
)
ZERO_WHEN_ABSENT_FACTORS = frozenset({"step_delay_s", "cpu_contention"})
PER_REQUEST_FACTORS = frozenset({"arrival_rate", "prompt_tokens", "output_tokens", "tenant"})

ALL_SETTINGS: dict[str, Setting] = {s.name: s for s in ENGINE_SETTINGS + FACTORS}

# --- derived lists --------------------------------------------------------------------------------------
# fault kind -> (family, factor) for every fault but config_push (which takes its factors from its knobs).
FAULT_FACTORS = {kind: (s.family, s.name) for s in ALL_SETTINGS.values() for kind in s.fault_kinds}
# Knobs a config_push may set.
PUSHABLE_KNOBS = frozenset(s.name for s in ENGINE_SETTINGS if s.pushable)
# Knobs the fault injector applies through Engine.update_config.
ENGINE_KNOBS = tuple(s.name for s in ENGINE_SETTINGS if s.live)
# Engine settings the fault injector records in run_settings (every one that is a graph node).
RECORDED_ENGINE_SETTINGS = tuple(s.name for s in ENGINE_SETTINGS if s.graph is not None)
# Settings stored as value_text in run_settings.
TEXT_SETTINGS = frozenset(s.name for s in ALL_SETTINGS.values() if s.kind in TEXT_KINDS)
# runs column -> engine setting, for the runs row.
RUNS_COLUMNS = {s.runs_column: s.name for s in ENGINE_SETTINGS if s.runs_column is not None}
# Graph node -> (harness config key, fault kinds that set the same factor): what whatif --verify can replay.
REPLAY_KNOBS = {s.graph: (f"engine.{s.name}", s.fault_kinds) for s in ENGINE_SETTINGS if s.graph is not None}
# Workload node -> harness config key a replay sets like a knob: a closed loop's clients (harness/replay.py
# replays a closed loop as one). The other workload causes are reverted in the replayed requests instead.
REPLAY_WORKLOAD = {"max_concurrency": "workload.concurrency"}
INTEGER_KNOBS = frozenset(s.graph for s in ENGINE_SETTINGS if s.graph is not None and s.integral)
BOOLEAN_KNOBS = frozenset(s.graph for s in ENGINE_SETTINGS if s.graph is not None and s.kind == "bool")
# Analysis table: graph node read from run_settings -> the runs column holding its t0 value (None: no column).
_TABLE_SETTINGS = [s for s in ALL_SETTINGS.values() if s.graph is not None and s.name not in PER_REQUEST_FACTORS]
SETTING_FALLBACK = {s.graph: s.runs_column for s in _TABLE_SETTINGS}
CATEGORICAL_SETTINGS = frozenset(s.graph for s in _TABLE_SETTINGS if s.kind in TEXT_KINDS)
ZERO_WHEN_ABSENT = frozenset(s.graph for s in _TABLE_SETTINGS if s.name in ZERO_WHEN_ABSENT_FACTORS)
# Recorded name (run_settings.setting or the setting behind a runs column) -> graph node, or None: excluded.
GRAPH_NODE = {s.name: s.graph for s in ALL_SETTINGS.values()}
EXCLUDED = {s.name: s.excluded for s in ALL_SETTINGS.values() if s.graph is None}
RUNS_COLUMN_SETTING = {s.runs_column: s.name for s in ALL_SETTINGS.values() if s.runs_column is not None}


def knob(name: str) -> Setting:
    """The engine setting behind a graph node (UserError if the harness cannot set it)."""
    from harness.engine.errors import UserError

    for s in ENGINE_SETTINGS:
        if s.graph == name:
            return s
    raise UserError(f"the harness cannot set {name}", f"use one of {', '.join(REPLAY_KNOBS)}")

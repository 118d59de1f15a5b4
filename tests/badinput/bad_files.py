"""The bad files of the corpus world: name -> text. Each is one realistic mistake in an otherwise good file."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GOOD_SLO = REPO / "models" / "slos" / "llm-serving.yaml"
SUITE = REPO / "datasets" / "cpu-tiny" / "suite.duckdb"
_SLO = GOOD_SLO.read_text()


def _slo(old: str, new: str) -> str:
    assert old in _SLO, old  # the corpus must stay in step with the shipped spec
    return _SLO.replace(old, new)


ALERT_WINDOWS = """apiVersion: sloth.slok.dev/v1
kind: AlertWindows
spec:
  sloPeriod: 30d
  page:
    quick: {errorBudgetPercent: 2, shortWindow: 5m, longWindow: 1h}
    slow: {errorBudgetPercent: 5, shortWindow: 30m, longWindow: 6h}
  ticket:
    quick: {errorBudgetPercent: 10, shortWindow: 2h, longWindow: 1d}
    slow: {errorBudgetPercent: 10, shortWindow: 6h, longWindow: 3d}
"""

_GRAPH_HEAD = """target: is_bad
nodes:
  max_num_seqs: {role: knob, family: batching, type: discrete, actionable: true}
  queue_len: {role: engine_state, family: batching, type: continuous}
  is_bad: {role: outcome, family: outcome, type: binary}
"""

_RUN = """name = "bad"
duration_s = 2
[engine]
model = "tiny"
[workload]
arrival = "poisson"
rate = 2.0
"""

BAD_FILES: dict[str, str] = {
    "empty.yaml": "",
    "not_yaml.yaml": "key: [unclosed\n",
    "list.yaml": "- apiVersion: openslo/v1\n- kind: SLO\n",
    # SLO specs: malformed and semantically wrong
    "slo_v2.yaml": _slo("apiVersion: openslo/v1", "apiVersion: openslo/v2"),
    "slo_target_150.yaml": _slo("target: 0.99", "target: 1.5"),
    "slo_target_text.yaml": _slo("target: 0.99", "target: high"),
    "slo_no_objectives.yaml": _slo("objectives: [{displayName: fast, target: 0.99}]", "objectives: []"),
    "slo_bad_op.yaml": _slo("op: lte, value: 1.0", "op: roughly, value: 1.0"),
    "slo_unknown_metric.yaml": _slo("metric: ttft_s", "metric: time_to_nirvana_s"),
    "slo_number_vs_text.yaml": _slo("op: lte, value: 1.0", "op: lte, value: fast"),
    "slo_bad_duration.yaml": _slo("duration: 30d", "duration: 30 fortnights"),
    "slo_bad_budgeting.yaml": _slo("budgetingMethod: Occurrences", "budgetingMethod: Vibes"),
    "slo_no_name.yaml": _slo("  name: chat-latency\n", ""),
    "slo_no_slo_doc.yaml": ALERT_WINDOWS,
    "slo_twice.yaml": _SLO + "---\n" + _SLO,
    # Sloth AlertWindows
    "aw_short_not_shorter.yaml": ALERT_WINDOWS.replace("shortWindow: 5m, longWindow: 1h",
                                                        "shortWindow: 2h, longWindow: 1h"),
    "aw_percent_zero.yaml": ALERT_WINDOWS.replace("errorBudgetPercent: 2,", "errorBudgetPercent: 0,"),
    "aw_no_ticket.yaml": ALERT_WINDOWS.split("  ticket:")[0],
    # graph specs
    "graph_cycle.yaml": _GRAPH_HEAD.replace("max_num_seqs: {role: knob", "load: {role: engine_state, family: "
                                            "workload, type: continuous}\n  max_num_seqs: {role: knob")
    + "edges:\n  - [queue_len, load]\n  - [load, queue_len]\n  - [queue_len, is_bad]\n",
    "graph_unknown_node.yaml": _GRAPH_HEAD + "edges:\n  - [max_num_seqs, queue_lenght]\n",
    "graph_bad_role.yaml": _GRAPH_HEAD.replace("role: knob", "role: wish"),
    "graph_tier.yaml": _GRAPH_HEAD + "edges:\n  - [is_bad, max_num_seqs]\n",
    "graph_no_target.yaml": _GRAPH_HEAD.replace("target: is_bad", "target: happiness"),
    # attribute inputs (edge lists and wide tables)
    "edges_cycle.csv": "cause,effect\na,b\nb,a\n",
    "edges_three_cols.csv": "a,b,c\n",
    "edges_empty.csv": "",
    "edges_ab.csv": "cause,effect\na,b\n",
    "table_ab.csv": "a,b\n" + "".join(f"{i % 5},{i % 7}\n" for i in range(40)),
    "table_a_only.csv": "a\n1\n2\n",
    "table_header_only.csv": "a,b\n",
    "table_text.csv": "a,b\n" + "".join(f"x{i},y{i}\n" for i in range(40)),
    # importer inputs
    "req_missing_cols.csv": "arrival_time,ttft_s\n2026-01-01T00:00:00Z,0.2\n",
    "req_bad_time.csv": "arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status\n"
                        "not a time,0.2,1.2,100,11,ok\n",
    "req_wrong_type.csv": "arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status\n"
                          "2026-01-01T00:00:00Z,fast,1.2,100,11,ok\n",
    "req_negative.csv": "arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status\n"
                        "2026-01-01T00:00:00Z,0.2,1.2,-100,11,ok\n",
    "vllm_not_object.json": "[1, 2, 3]",
    # harness run configs and sweeps
    "run_unknown_key.toml": _RUN.replace("[engine]", "[engine]\nmax_num_seq = 8"),
    "run_zero_seqs.toml": _RUN.replace("[engine]", "[engine]\nmax_num_seqs = 0"),
    "run_negative_duration.toml": _RUN.replace("duration_s = 2", "duration_s = -2"),
    "run_phase_past_end.toml": _RUN + "[[phases]]\nname = \"late\"\nstart_s = 1\nend_s = 99\n",
    "run_fault_unknown.toml": _RUN + "[[faults]]\nkind = \"meteor\"\nat_s = 1\n",
    "run_not_toml.toml": "name = \"unterminated\n",
    "run_both_rates.toml": _RUN.replace("rate = 2.0", "rate = 2.0\nload_fraction = 0.5"),
    "run_trace_missing.toml": _RUN.replace('arrival = "poisson"\nrate = 2.0',
                                           'arrival = "trace"\ntrace = { path = "no_such_trace.csv" }'),
    "run_trace_garbage.toml": _RUN.replace('arrival = "poisson"\nrate = 2.0',
                                           'arrival = "trace"\ntrace = { path = "trace_garbage.csv" }'),
    "trace_garbage.csv": "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,lots,some\n",
    "run_trace_no_columns.toml": _RUN.replace('arrival = "poisson"\nrate = 2.0',
                                              'arrival = "trace"\ntrace = { path = "trace_no_columns.csv" }'),
    "trace_no_columns.csv": "when,what\n1,2\n",
    "sweep_unknown_factor.toml": 'base = "run_ok.toml"\nruns = 2\n[factors]\nwarp_speed = [1, 2]\n',
    "sweep_zero_runs.toml": 'base = "run_ok.toml"\nruns = 0\n[factors]\nmax_num_seqs = [2, 4]\n',
    "sweep_bad_level.toml": 'base = "run_ok.toml"\nruns = 2\n[factors]\nmax_num_seqs = [0, 4]\n',
    "sweep_unknown_base.toml": 'base = "no_such_base"\nruns = 2\n[factors]\nmax_num_seqs = [2, 4]\n',
    "run_ok.toml": _RUN,
}

"""The corpus: (case id, argv with {file} placeholders resolved inside the world folder, error fragment).

Grouped by command. Every case must exit with code 2, print one ``error:`` line containing the fragment
(case-insensitive), print no traceback, and leave every database byte-identical.
"""

from __future__ import annotations

Case = tuple[str, list[str], str]

DB: list[Case] = [
    ("db-info-missing-file", ["db", "info", "{nope.duckdb}"], "does not exist"),
    ("db-info-not-a-database", ["db", "info", "{not_a_db.duckdb}"], "cannot open"),
    ("db-info-older-schema", ["db", "info", "{older.duckdb}"], "older than this causalsre reads"),
    ("db-info-newer-schema", ["db", "info", "{newer.duckdb}"], "newer than this causalsre supports"),
    ("db-info-missing-table", ["db", "info", "{missing_table.duckdb}"], "missing table"),
    ("db-info-a-folder", ["db", "info", "{nofolder}"], "does not exist"),
    ("db-export-older", ["db", "export", "{older.duckdb}", "--parquet", "{out}"], "db migrate"),
    ("db-migrate-missing", ["db", "migrate", "{nope.duckdb}"], "does not exist"),
    ("db-migrate-newer", ["db", "migrate", "{newer.duckdb}"], "newer"),
    ("db-init-newer", ["db", "init", "{newer.duckdb}"], "newer"),
    ("db-init-in-missing-folder", ["db", "init", "{nofolder/x.duckdb}"], "does not exist"),
    ("db-migrate-not-a-database", ["db", "migrate", "{not_a_db.duckdb}"], "not a readable DuckDB database"),
]

IMPORTS: list[Case] = [
    ("import-missing-file", ["db", "import", "requests", "{nope.csv}", "--db", "{good.duckdb}"], "does not exist"),
    ("import-into-newer", ["db", "import", "requests", "{nope.csv}", "--db", "{newer.duckdb}"], "newer"),
    # An import never migrates as a side effect (it did, before even reading the file): `db migrate` does.
    ("import-into-older", ["db", "import", "requests", "{nope.csv}", "--db", "{older.duckdb}"], "db migrate"),
    ("import-into-not-a-database", ["db", "import", "requests", "{nope.csv}", "--db", "{not_a_db.duckdb}"],
     "not a readable DuckDB database"),
    ("import-vllm-not-json", ["db", "import", "vllm-bench", "{empty.yaml}", "--db", "{good.duckdb}"],
     "empty.yaml"),  # "is empty" or "not valid JSON": the file named either way
    ("import-vllm-not-object", ["db", "import", "vllm-bench", "{vllm_not_object.json}", "--db", "{good.duckdb}"],
     "vllm_not_object.json"),
    ("import-csv-missing-columns", ["db", "import", "requests", "{req_missing_cols.csv}", "--db", "{good.duckdb}"],
     "e2e_s"),
    ("import-csv-unparsable-time", ["db", "import", "requests", "{req_bad_time.csv}", "--db", "{good.duckdb}"],
     "arrival_time"),
    ("import-csv-wrong-type", ["db", "import", "requests", "{req_wrong_type.csv}", "--db", "{good.duckdb}"],
     "ttft_s"),
    ("import-csv-negative-tokens", ["db", "import", "requests", "{req_negative.csv}", "--db", "{good.duckdb}"],
     "prompt_tokens"),
    ("import-parquet-missing-column", ["db", "import", "requests", "{no_ttft.parquet}", "--db", "{good.duckdb}"],
     "ttft_s"),
    ("import-parquet-unparsable-time", ["db", "import", "requests", "{bad_times.parquet}", "--db",
                                        "{good.duckdb}"], "arrival_time"),
    ("import-parquet-wrong-type", ["db", "import", "requests", "{wrong_types.parquet}", "--db", "{good.duckdb}"],
     "prompt_tokens"),
    ("import-not-a-table", ["db", "import", "requests", "{not_yaml.yaml}", "--db", "{good.duckdb}"], "not_yaml"),
]

FLAGS: list[Case] = [
    ("unknown-flag", ["db", "info", "{good.duckdb}", "--colour"], "No such option"),
    ("unknown-command", ["frobnicate"], "No such command"),
    ("missing-required-flag", ["db", "import", "requests", "{nope.csv}"], "Missing option"),
]

_REPORT = ["slo", "report", "--db", "{good.duckdb}", "--slo"]
SLO: list[Case] = [
    ("slo-check-missing", ["slo", "check", "{nope.yaml}"], "does not exist"),
    ("slo-check-empty", ["slo", "check", "{empty.yaml}"], "no kind: SLO"),
    ("slo-check-not-yaml", ["slo", "check", "{not_yaml.yaml}"], "not valid YAML"),
    ("slo-check-list", ["slo", "check", "{list.yaml}"], "not a mapping"),
    ("slo-check-api-v2", ["slo", "check", "{slo_v2.yaml}"], "openslo/v1"),
    ("slo-check-target-150", ["slo", "check", "{slo_target_150.yaml}"], "1.5"),
    ("slo-check-target-text", ["slo", "check", "{slo_target_text.yaml}"], "high"),
    ("slo-check-no-objectives", ["slo", "check", "{slo_no_objectives.yaml}"], "objectives"),
    ("slo-check-bad-op", ["slo", "check", "{slo_bad_op.yaml}"], "roughly"),
    ("slo-check-unknown-metric", ["slo", "check", "{slo_unknown_metric.yaml}"], "time_to_nirvana_s"),
    ("slo-check-number-vs-text", ["slo", "check", "{slo_number_vs_text.yaml}"], "ttft_s"),
    ("slo-check-bad-duration", ["slo", "check", "{slo_bad_duration.yaml}"], "30 fortnights"),
    ("slo-check-bad-budgeting", ["slo", "check", "{slo_bad_budgeting.yaml}"], "Vibes"),
    ("slo-check-no-name", ["slo", "check", "{slo_no_name.yaml}"], "metadata.name"),
    ("slo-check-no-slo-doc", ["slo", "check", "{slo_no_slo_doc.yaml}"], "no kind: SLO"),
    ("slo-check-names-repeat", ["slo", "check", "{slo_twice.yaml}"], "repeat"),
    ("slo-check-aw-short-not-shorter", ["slo", "check", "{slo.yaml}", "--alert-windows",
                                        "{aw_short_not_shorter.yaml}"], "not shorter"),
    ("slo-check-aw-zero-percent", ["slo", "check", "{slo.yaml}", "--alert-windows", "{aw_percent_zero.yaml}"],
     "errorBudgetPercent"),
    ("slo-check-aw-no-ticket", ["slo", "check", "{slo.yaml}", "--alert-windows", "{aw_no_ticket.yaml}"],
     "ticket"),
    ("slo-check-aw-none", ["slo", "check", "{slo.yaml}", "--alert-windows", "{slo.yaml}"], "AlertWindows"),
    ("slo-report-unknown-metric", _REPORT + ["{slo_unknown_metric.yaml}"], "time_to_nirvana_s"),
    ("slo-report-older-db", ["slo", "report", "--db", "{older.duckdb}", "--slo", "{slo.yaml}"], "db migrate"),
    ("slo-report-newer-db", ["slo", "report", "--db", "{newer.duckdb}", "--slo", "{slo.yaml}"], "newer"),
    ("slo-report-missing-table", ["slo", "report", "--db", "{missing_table.duckdb}", "--slo", "{slo.yaml}"],
     "missing table"),
    ("slo-report-not-a-db", ["slo", "report", "--db", "{not_a_db.duckdb}", "--slo", "{slo.yaml}"], "cannot open"),
    ("slo-report-where-unknown-column", _REPORT + ["{slo.yaml}", "--where", "colour=red"], "colour"),
    ("slo-report-where-not-pair", _REPORT + ["{slo.yaml}", "--where", "tenant"], "COLUMN=VALUE"),
    ("slo-report-where-not-number", _REPORT + ["{slo.yaml}", "--where", "prompt_tokens=lots"], "number"),
    ("slo-report-at-garbage", _REPORT + ["{slo.yaml}", "--at", "teatime"], "teatime"),
    ("slo-report-min-events-zero", _REPORT + ["{slo.yaml}", "--min-events", "0"], "min-events"),
    ("slo-report-group-by-unknown", _REPORT + ["{slo.yaml}", "--group-by", "colour"], "group-by"),
    ("slo-report-bad-resolution", _REPORT + ["{slo.yaml}", "--plot", "{p.png}", "--resolution", "often"],
     "often"),
    ("slo-report-bad-resolution-without-plot", _REPORT + ["{slo.yaml}", "--resolution", "often"], "often"),
    ("slo-report-plot-missing-folder", _REPORT + ["{slo.yaml}", "--plot", "{nofolder/p.png}"], "nofolder"),
    ("slo-report-plot-unknown-format", _REPORT + ["{slo.yaml}", "--plot", "{p.docx}"], "docx"),
    ("slo-report-aw-bad", _REPORT + ["{slo.yaml}", "--alert-windows", "{aw_short_not_shorter.yaml}"],
     "not shorter"),
    # Issue 18: values DuckDB could not compare, and instants outside years 1970..2200.
    ("slo-report-where-json-column", _REPORT + ["{slo.yaml}", "--where", "attributes=x"], "cannot filter"),
    ("slo-report-where-time-text", _REPORT + ["{slo.yaml}", "--where", "arrival_ts=yesterday"], "ISO 8601"),
    ("slo-report-where-20-digits", _REPORT + ["{slo.yaml}", "--where", "request_id=12345678901234567890"],
     "does not fit"),
    ("slo-report-at-year-1", _REPORT + ["{slo.yaml}", "--at", "0001-01-01T00:00:00+01:00"], "1970..2200"),
    ("slo-report-at-year-9999", _REPORT + ["{slo.yaml}", "--at", "9999-12-31T23:59:59"], "1970..2200"),
]

_RUN = ["harness", "run"]
HARNESS: list[Case] = [
    ("harness-run-missing-config", _RUN + ["{nope.toml}", "--db", "{good.duckdb}"], "does not exist"),
    ("harness-run-not-toml", _RUN + ["{run_not_toml.toml}", "--db", "{good.duckdb}"], "not valid TOML"),
    ("harness-run-unknown-key", _RUN + ["{run_unknown_key.toml}", "--db", "{good.duckdb}"], "max_num_seq"),
    ("harness-run-zero-seqs", _RUN + ["{run_zero_seqs.toml}", "--db", "{good.duckdb}"], "max_num_seqs"),
    ("harness-run-negative-duration", _RUN + ["{run_negative_duration.toml}", "--db", "{good.duckdb}"],
     "duration_s"),
    ("harness-run-phase-past-end", _RUN + ["{run_phase_past_end.toml}", "--db", "{good.duckdb}"], "late"),
    ("harness-run-unknown-fault", _RUN + ["{run_fault_unknown.toml}", "--db", "{good.duckdb}"], "kind"),
    ("harness-run-both-rates", _RUN + ["{run_both_rates.toml}", "--db", "{good.duckdb}"], "not both"),
    ("harness-run-trace-missing", _RUN + ["{run_trace_missing.toml}", "--db", "{good.duckdb}"], "no_such_trace"),
    ("harness-run-trace-unparsable", _RUN + ["{run_trace_garbage.toml}", "--db", "{good.duckdb}"],
     "trace_garbage.csv"),
    ("harness-run-trace-no-columns", _RUN + ["{run_trace_no_columns.toml}", "--db", "{good.duckdb}"],
     "lacks columns"),
    ("harness-run-set-unknown", _RUN + ["{run_ok.toml}", "--db", "{good.duckdb}", "--set", "engine.warp=9"],
     "engine.warp"),
    ("harness-run-set-not-pair", _RUN + ["{run_ok.toml}", "--db", "{good.duckdb}", "--set", "max_num_seqs"],
     "KEY=VALUE"),
    ("harness-run-set-out-of-range", _RUN + ["{run_ok.toml}", "--db", "{good.duckdb}", "--set",
                                             "engine.max_num_seqs=-3"], "max_num_seqs"),
    ("harness-run-seed-not-int", _RUN + ["{run_ok.toml}", "--db", "{good.duckdb}", "--seed", "one"], "seed"),
    ("harness-run-bad-trace-leaves-no-new-db", _RUN + ["{run_trace_garbage.toml}", "--db", "{new.duckdb}"],
     "trace_garbage.csv"),
    ("harness-run-into-newer-db", _RUN + ["{run_ok.toml}", "--db", "{newer.duckdb}"], "newer"),
    ("harness-run-into-not-a-db", _RUN + ["{run_ok.toml}", "--db", "{not_a_db.duckdb}"], "cannot open"),
    ("harness-run-into-missing-folder", _RUN + ["{run_ok.toml}", "--db", "{nofolder/x.duckdb}"], "does not exist"),
    ("harness-scenario-unknown", ["harness", "scenario", "meteor_strike", "--db", "{good.duckdb}"],
     "unknown scenario"),
    ("harness-sweep-missing", ["harness", "sweep", "{nope.toml}", "--db", "{good.duckdb}"], "does not exist"),
    ("harness-sweep-unknown-factor", ["harness", "sweep", "{sweep_unknown_factor.toml}", "--db", "{good.duckdb}"],
     "warp_speed"),
    ("harness-sweep-zero-runs", ["harness", "sweep", "{sweep_zero_runs.toml}", "--db", "{good.duckdb}"], "runs"),
    ("harness-sweep-bad-level", ["harness", "sweep", "{sweep_bad_level.toml}", "--db", "{good.duckdb}"],
     "max_num_seqs"),
    ("harness-sweep-unknown-base", ["harness", "sweep", "{sweep_unknown_base.toml}", "--db", "{good.duckdb}"],
     "no_such_base"),
    ("harness-sweep-bad-backend", ["harness", "sweep", "{run_ok.toml}", "--db", "{good.duckdb}", "--backend",
                                   "slurm"], "backend"),
    ("harness-replay-unknown-run", ["harness", "replay", "{suite.duckdb}", "nope-s0", "--window", "incident",
                                    "--db", "{good.duckdb}"], "nope-s0"),
    ("harness-replay-bad-window", ["harness", "replay", "{suite.duckdb}", "burstier-s0", "--window", "1:x",
                                   "--db", "{good.duckdb}"], "window"),
    ("harness-replay-unknown-phase", ["harness", "replay", "{suite.duckdb}", "burstier-s0", "--window", "lunch",
                                      "--db", "{good.duckdb}"], "lunch"),
]

_ATTR = ["attribute", "--normal", "{table_ab.csv}", "--abnormal", "{table_ab.csv}"]
ATTRIBUTE: list[Case] = [
    ("attribute-graph-cycle", _ATTR + ["--graph", "{edges_cycle.csv}", "--target", "b"], "cycle"),
    ("attribute-graph-three-columns", _ATTR + ["--graph", "{edges_three_cols.csv}", "--target", "b"], "columns"),
    ("attribute-graph-empty", _ATTR + ["--graph", "{edges_empty.csv}", "--target", "b"], "edges_empty.csv"),
    ("attribute-graph-missing", _ATTR + ["--graph", "{nope.csv}", "--target", "b"], "does not exist"),
    ("attribute-target-unknown", _ATTR + ["--graph", "{edges_ab.csv}", "--target", "zz"], "zz"),
    ("attribute-table-missing-node", ["attribute", "--normal", "{table_a_only.csv}", "--abnormal",
                                      "{table_ab.csv}", "--graph", "{edges_ab.csv}", "--target", "b"], "b"),
    ("attribute-table-no-rows", ["attribute", "--normal", "{table_header_only.csv}", "--abnormal",
                                 "{table_ab.csv}", "--graph", "{edges_ab.csv}", "--target", "b"], "no rows"),
    ("attribute-table-text", ["attribute", "--normal", "{table_text.csv}", "--abnormal", "{table_text.csv}",
                              "--graph", "{edges_ab.csv}", "--target", "b"], "not a number"),
    ("attribute-table-not-a-table", ["attribute", "--normal", "{not_a_db.duckdb}", "--abnormal", "{table_ab.csv}",
                                     "--graph", "{edges_ab.csv}", "--target", "b"], "not a column"),
    ("attribute-top-zero", _ATTR + ["--graph", "{edges_ab.csv}", "--target", "b", "--top", "0"], "top"),
    ("attribute-threshold-nan", _ATTR + ["--graph", "{edges_ab.csv}", "--target", "b", "--threshold", "nan"],
     "positive finite"),
    ("attribute-threshold-negative", _ATTR + ["--graph", "{edges_ab.csv}", "--target", "b", "--threshold", "-4"],
     "positive finite"),
]


def _analysis(command: str, *extra: str, db: str = "{suite.duckdb}", slo: str = "{slo.yaml}") -> list[str]:
    return [command, "--db", db, "--slo", slo, *extra]


_SET = ("--set", "max_num_seqs=8")
WINDOWS: list[Case] = [
    ("whatif-window-reversed", _analysis("whatif", "--window", "2026-11-28T00:54:00Z/2026-11-28T00:49:00Z", *_SET),
     "ends before it starts"),
    ("whatif-window-empty", _analysis("whatif", "--window", "2026-11-28T00:50:00Z/2026-11-28T00:50:00Z", *_SET),
     "is empty: start equals end"),
    ("whatif-window-outside-data", _analysis("whatif", "--window", "1999-01-01T00:00:00Z/1999-01-02T00:00:00Z",
                                             *_SET), "holds no requests"),
    ("whatif-window-unknown-phase", _analysis("whatif", "--window", "phase:lunch", *_SET), "no such phase"),
    ("whatif-window-unknown-run", _analysis("whatif", "--window", "run:nope-s0", *_SET), "not in the database"),
    ("whatif-window-gibberish", _analysis("whatif", "--window", "last tuesday", *_SET), "not understood"),
    ("whatif-window-bad-iso", _analysis("whatif", "--window", "2026-13-01T00:00:00Z/2026-13-02T00:00:00Z", *_SET),
     "ISO 8601"),
    ("recommend-window-reversed", _analysis("recommend", "--window", "2026-11-28T00:54:00Z/2026-11-28T00:49:00Z"),
     "ends before it starts"),
]

_INCIDENT = ("--window", "phase:incident")
WHATIF: list[Case] = [
    ("whatif-set-unknown-knob", _analysis("whatif", *_INCIDENT, "--set", "warp=9"), "warp"),
    ("whatif-set-not-pair", _analysis("whatif", *_INCIDENT, "--set", "max_num_seqs"), "KNOB=VALUE"),
    ("whatif-set-not-number", _analysis("whatif", *_INCIDENT, "--set", "max_num_seqs=many"), "number"),
    ("whatif-set-not-actionable", _analysis("whatif", *_INCIDENT, "--set", "tenant=x"), "actionable"),
    ("whatif-method-unknown", _analysis("whatif", *_INCIDENT, *_SET, "--method", "magic"), "method"),
    ("whatif-slo-name-unknown", _analysis("whatif", *_INCIDENT, *_SET, "--slo-name", "nope"), "nope"),
    ("whatif-graph-cycle", _analysis("whatif", *_INCIDENT, *_SET, "--graph", "{graph_cycle.yaml}"), "cycle"),
    ("whatif-graph-unknown-node", _analysis("whatif", *_INCIDENT, *_SET, "--graph", "{graph_unknown_node.yaml}"),
     "queue_lenght"),
    ("whatif-bad-slo", _analysis("whatif", *_INCIDENT, *_SET, slo="{slo_target_150.yaml}"), "1.5"),
    ("whatif-older-db", _analysis("whatif", *_INCIDENT, *_SET, db="{older.duckdb}"), "db migrate"),
    ("whatif-newer-db", _analysis("whatif", *_INCIDENT, *_SET, db="{newer.duckdb}"), "newer"),
    ("whatif-missing-table", _analysis("whatif", *_INCIDENT, *_SET, db="{missing_table.duckdb}"), "missing table"),
    ("whatif-fit-missing", _analysis("whatif", *_INCIDENT, *_SET, "--method", "bayes", "--fit", "{nope.nc}"),
     "nope.nc"),
    ("whatif-fit-not-netcdf", _analysis("whatif", *_INCIDENT, *_SET, "--method", "bayes", "--fit",
                                        "{not_yaml.yaml}"), "not_yaml.yaml"),
    ("effect-unknown-treatment", _analysis("effect", "--treatment", "warp"), "warp"),
    ("effect-not-actionable", _analysis("effect", "--treatment", "tenant"), "tenant"),
    ("effect-graph-bad-role", _analysis("effect", "--treatment", "max_num_seqs", "--graph",
                                        "{graph_bad_role.yaml}"), "wish"),
    ("effect-graph-tier", _analysis("effect", "--treatment", "max_num_seqs", "--graph", "{graph_tier.yaml}"),
     "is_bad"),
    ("effect-graph-no-target", _analysis("effect", "--treatment", "max_num_seqs", "--graph",
                                         "{graph_no_target.yaml}"), "happiness"),
    ("recommend-top-zero", _analysis("recommend", *_INCIDENT, "--top", "0"), "top"),
    ("recommend-priors-not-toml", _analysis("recommend", *_INCIDENT, "--priors", "{run_not_toml.toml}"),
     "run_not_toml.toml"),
    ("fit-draws-out-of-range", _analysis("fit", "--draws", "5"), "draws"),
    ("fit-chains-zero", _analysis("fit", "--chains", "0"), "chains"),
    ("fit-sampler-unknown", _analysis("fit", "--sampler", "guess"), "sampler"),
    ("fit-empty-db", _analysis("fit", "--sampler", "prior", db="{empty_db.duckdb}"), "holds no requests"),
    ("fit-priors-missing", _analysis("fit", "--priors", "{nope.toml}"), "nope.toml"),
    ("fit-out-missing-folder", _analysis("fit", "--sampler", "prior", "--out", "{nofolder/f.nc}"), "nofolder"),
]

# Cases that fail today because of a bug in a module whose author is still at work: case id -> the bug.
KNOWN_BUGS: dict[str, str] = {
}


def _postmortem(baseline: str, incident: str, *extra: str, db: str = "{suite.duckdb}") -> list[str]:
    return ["postmortem", "--db", db, "--slo", "{slo.yaml}", "--baseline", baseline, "--incident", incident,
            *extra]


_BASE, _INC = "phase:baseline@burstier-s0", "phase:incident@burstier-s0"
POSTMORTEM: list[Case] = [
    ("postmortem-baseline-reversed", _postmortem("2026-11-28T00:54:00Z/2026-11-28T00:49:00Z", _INC),
     "ends before it starts"),
    ("postmortem-incident-outside-data", _postmortem(_BASE, "1999-01-01T00:00:00Z/1999-01-02T00:00:00Z"),
     "holds no requests"),
    ("postmortem-windows-overlap", _postmortem("run:burstier-s0", _INC), "overlap"),
    ("postmortem-same-window-twice", _postmortem(_INC, _INC), "overlap"),
    ("postmortem-unknown-phase", _postmortem("phase:lunch", _INC), "no such phase"),
    ("postmortem-unknown-run", _postmortem(_BASE, "run:nope-s0"), "not in the database"),
    ("postmortem-pairs-out-of-range", _postmortem(_BASE, _INC, "--pairs", "5"), "pairs"),
    ("postmortem-graph-cycle", _postmortem(_BASE, _INC, "--graph", "{graph_cycle.yaml}"), "cycle"),
    ("postmortem-slo-name-unknown", _postmortem(_BASE, _INC, "--slo-name", "nope"), "nope"),
    ("postmortem-out-missing-folder", _postmortem(_BASE, _INC, "--out", "{nofolder/p.json}"), "nofolder"),
    ("postmortem-older-db", _postmortem(_BASE, _INC, db="{older.duckdb}"), "db migrate"),
    ("postmortem-missing-table", _postmortem(_BASE, _INC, db="{missing_table.duckdb}"), "missing table"),
]

GRAPH: list[Case] = [
    ("graph-check-cycle", ["graph", "check", "--db", "{suite.duckdb}", "--graph", "{graph_cycle.yaml}"], "cycle"),
    ("graph-check-unknown-node", ["graph", "check", "--db", "{suite.duckdb}", "--graph",
                                  "{graph_unknown_node.yaml}"], "queue_lenght"),
    ("graph-check-window-reversed", ["graph", "check", "--db", "{suite.duckdb}", "--window",
                                     "2026-11-28T00:54:00Z/2026-11-28T00:49:00Z"], "ends before it starts"),
    ("graph-check-alpha-out-of-range", ["graph", "check", "--db", "{suite.duckdb}", "--alpha", "2"], "alpha"),
    ("graph-check-bad-slo", ["graph", "check", "--db", "{suite.duckdb}", "--slo", "{slo_bad_op.yaml}"], "roughly"),
    ("graph-check-newer-db", ["graph", "check", "--db", "{newer.duckdb}"], "newer"),
    ("graph-learn-method-unknown", ["graph", "learn", "--db", "{suite.duckdb}", "--method", "oracle"], "method"),
    ("graph-learn-unknown-phase", ["graph", "learn", "--db", "{suite.duckdb}", "--window", "phase:lunch"],
     "no such phase"),
    ("graph-learn-missing-table", ["graph", "learn", "--db", "{missing_table.duckdb}"], "missing table"),
    ("graph-show-cycle", ["graph", "show", "--graph", "{graph_cycle.yaml}", "--out", "{g.png}"], "cycle"),
    ("graph-show-bad-role", ["graph", "show", "--graph", "{graph_bad_role.yaml}", "--out", "{g.png}"], "wish"),
    ("graph-show-unknown-format", ["graph", "show", "--out", "{g.docx}"], "docx"),
    ("graph-show-missing-folder", ["graph", "show", "--out", "{nofolder/g.png}"], "nofolder"),
]

# Numbers past what the libraries behind an option take (found walking the click tree; each was a traceback,
# an OverflowError, or a run that never ended). Fixed in the option types (cli/options.py SEED, fit, evaluate,
# eval_govern, postmortem).
_BIG = "99999999999999999999"
NUMBERS: list[Case] = [
    ("postmortem-seed-negative", _postmortem(_BASE, _INC, "--seed", "-1"), "0<=x<=4294967295"),
    ("postmortem-seed-huge", _postmortem(_BASE, _INC, "--seed", _BIG), "0<=x<=4294967295"),
    ("postmortem-pairs-huge", _postmortem(_BASE, _INC, "--pairs", _BIG), "pairs"),
    ("whatif-seed-negative", _analysis("whatif", *_INCIDENT, *_SET, "--seed", "-1"), "--seed"),
    ("fit-draws-huge", _analysis("fit", "--draws", _BIG), "draws"),
    ("fit-chains-huge", _analysis("fit", "--chains", _BIG), "chains"),
    ("eval-generate-count-huge", ["eval", "generate", "--seed", "1", "--count", _BIG, "--out", "{gen}"], "count"),
    ("eval-generate-seed-negative", ["eval", "generate", "--seed", "-1", "--out", "{gen}"], "seed"),
    ("eval-govern-seeds-huge", ["eval", "govern", "--seeds", _BIG, "--quick"], "seeds"),
    ("recommend-seed-negative", _analysis("recommend", *_INCIDENT, "--seed", "-1"), "--seed"),
    # A text value for a numeric treatment was a ValueError traceback (fixed in whatif/effect.py).
    ("effect-control-not-a-number", _analysis("effect", "--treatment", "max_num_seqs", "--control", "abc"),
     "--control 'abc' is not a number"),
    ("effect-treated-empty", _analysis("effect", "--treatment", "max_num_seqs", "--treated", ""), "--treated ''"),
]

CASES: list[Case] = (DB + IMPORTS + FLAGS + SLO + HARNESS + ATTRIBUTE + WINDOWS + WHATIF + POSTMORTEM + GRAPH
                     + NUMBERS)

"""The hostile-input sweep's table: every input-file option of every command, with a good argv around it.

``COMMANDS`` maps a command path to its good argv (``{placeholders}`` are files of the corpus world) and the
options that name an input file, each with its kind: ``db`` (a DuckDB we read), ``new-db`` (a DuckDB the
command creates if missing), ``upgrade-db`` (``db migrate``/``db init``, which upgrade an older schema by
design), ``check-db`` (``db check``, which reports a bad database with exit code 1), or a file suffix (``.yaml``, ``.toml``, ``.csv``, ``.json``, ``.nc``). The test
(:mod:`tests.badinput.test_sweep`) replaces one of them at a time with each hostile file of ``HOSTILE`` and
requires the one-line refusal. ``test_sweep`` also checks that this table names every input-file option the
CLI has (click introspection), so a new option cannot be left out.
"""

from __future__ import annotations

_PHASES = ("--baseline", "phase:baseline@push_max_num_seqs-s0", "--incident", "phase:incident@push_max_num_seqs-s0")
_WINDOW = ("--window", "phase:incident@push_max_num_seqs-s0")
_ANALYSIS = ("--db", "{suite.duckdb}", "--slo", "{slo.yaml}")
_NEW = ("--db", "{new.duckdb}")

# command path -> (good argv after the path, {input option (or "#N" for the N-th argument): kind})
COMMANDS: dict[tuple[str, ...], tuple[tuple[str, ...], dict[str, str]]] = {
    ("slo", "check"): (("{slo.yaml}", "--alert-windows", "{aw.yaml}"), {"#0": ".yaml", "--alert-windows": ".yaml"}),
    ("slo", "report"): (("--db", "{good.duckdb}", "--slo", "{slo.yaml}", "--alert-windows", "{aw.yaml}"),
                        {"--db": "db", "--slo": ".yaml", "--alert-windows": ".yaml"}),
    ("db", "info"): (("--db", "{good.duckdb}"), {"--db": "db"}),
    ("db", "check"): (("--db", "{good.duckdb}"), {"--db": "check-db"}),
    ("db", "export"): (("--db", "{good.duckdb}", "--parquet", "{export}"), {"--db": "db"}),
    ("db", "migrate"): (("--db", "{good.duckdb}"), {"--db": "upgrade-db"}),
    ("db", "init"): (("--db", "{good.duckdb}"), {"--db": "upgrade-db"}),
    ("db", "import", "requests"): (("{requests.csv}", *_NEW), {"#0": ".csv", "--db": "new-db"}),
    ("db", "import", "table"): (("{requests.csv}", *_NEW), {"#0": ".csv", "--db": "new-db"}),
    ("db", "import", "vllm-bench"): (("{vllm.json}", *_NEW), {"#0": ".json", "--db": "new-db"}),
    ("db", "import", "guidellm"): (("{guidellm.json}", *_NEW), {"#0": ".json", "--db": "new-db"}),
    ("db", "import", "sglang-bench"): (("{sglang.jsonl}", *_NEW), {"#0": ".jsonl", "--db": "new-db"}),
    ("db", "import", "otel"): (("{otel.json}", *_NEW), {"#0": ".json", "--db": "new-db"}),
    ("db", "import", "events"): (("{events.csv}", *_NEW), {"#0": ".csv", "--db": "new-db"}),
    ("db", "import", "vllm-log"): (("{vllm.log}", "--year", "2026", *_NEW), {"#0": ".log", "--db": "new-db"}),
    ("db", "import", "prometheus"): (("{scrape.prom}", "--at", "2026-01-01T10:00Z", "--run", "r", *_NEW),
                                     {"#0": ".prom", "--db": "new-db"}),
    ("postmortem",): ((*_ANALYSIS, *_PHASES, "--graph", "{graph.yaml}"),
                      {"--db": "db", "--slo": ".yaml", "--graph": ".yaml", "--fit": ".nc"}),
    ("whatif",): ((*_ANALYSIS, *_WINDOW, "--set", "max_num_seqs=16"),
                  {"--db": "db", "--slo": ".yaml", "--graph": ".yaml", "--priors": ".toml", "--fit": ".nc",
                   "--governor": ".toml", "--verify-db": "new-db"}),
    ("effect",): ((*_ANALYSIS, "--treatment", "max_num_seqs"), {"--db": "db", "--slo": ".yaml", "--graph": ".yaml"}),
    ("recommend",): ((*_ANALYSIS, *_WINDOW),
                     {"--db": "db", "--slo": ".yaml", "--graph": ".yaml", "--priors": ".toml", "--fit": ".nc",
                      "--governor": ".toml"}),
    ("fit",): ((*_ANALYSIS, "--sampler", "prior"),
               {"--db": "db", "--slo": ".yaml", "--graph": ".yaml", "--priors": ".toml"}),
    ("graph", "check"): (("--db", "{suite.duckdb}", "--slo", "{slo.yaml}"),
                         {"--db": "db", "--graph": ".yaml", "--slo": ".yaml"}),
    ("graph", "learn"): (("--db", "{suite.duckdb}"), {"--db": "db", "--graph": ".yaml"}),
    ("graph", "show"): (("--out", "{g.svg}"), {"--graph": ".yaml"}),
    ("attribute",): (("--normal", "{table_ab.csv}", "--abnormal", "{table_ab.csv}", "--graph", "{edges_ab.csv}",
                      "--target", "b"), {"--normal": ".csv", "--abnormal": ".csv", "--graph": ".csv"}),
    ("harness", "run"): (("{smoke.toml}", *_NEW), {"#0": ".toml", "--db": "new-db"}),
    ("harness", "scenario"): (("rate_surge", *_NEW), {"--db": "new-db"}),
    ("harness", "sweep"): (("{sweep.toml}", *_NEW), {"#0": ".toml", "--db": "new-db"}),
    ("harness", "replay"): (("--from", "{suite.duckdb}", *_WINDOW, *_NEW), {"--from": "db", "--db": "new-db"}),
    ("serve",): (("{smoke.toml}", "--port", "0"), {"#0": ".toml", "--db": "new-db"}),
    ("eval", "whatif"): ((*_ANALYSIS, "--limit", "1"),
                         {"--db": "db", "--slo": ".yaml", "--fit": ".nc", "--calibrate-from": ".json"}),
    ("eval", "scenarios"): (("--slo", "{slo.yaml}", "--graph", "{graph.yaml}"), {"--slo": ".yaml", "--graph": ".yaml"}),
    ("bench", "postmortem"): (("--db", "{suite.duckdb}"), {"--db": "db"}),
}
# Options that take an input file and are not swept here, with the reason.
NOT_SWEPT = {
    ("serve", "--governor"): "only read with --upstream, which needs a live upstream first (test_hostile_boundaries)",
    ("eval", "govern", "--trace"): "read by the harness trace reader: check_table covers it (test_sweep's unit part)",
    ("eval", "govern", "--clock-model"): "read only with --clock modelled after a calibration run",
    ("eval", "petshop", "--data"): "a folder",
}

# Hostile stand-ins for a file: (id, how to make it, which option kinds it applies to).
FILE_KINDS = ("fifo", "device", "binary", "empty", "missing", "long-name", "text")
DB_KINDS = ("older", "v3", "newer", "foreign", "not-a-db", "missing-table")

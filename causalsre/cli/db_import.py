"""`causalsre db import vllm-bench|sglang-bench|prometheus|vllm-log|otel|guidellm|events|table FILE... --db DB [--json]`.

Each command reads and checks every file before it opens the database, then writes everything in one
transaction (:func:`causalsre.telemetry.importers.writer.write_batches`); a bad file changes nothing.
The commands are registered on the `db import` group in :mod:`causalsre.cli.db`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from causalsre.cli.options import INPUT_FILE, db_option, json_option, run_option
from causalsre.telemetry import first_row

FILES = click.argument("files", nargs=-1, required=True, type=INPUT_FILE)
FILES_OR_DIRS = click.argument("files", nargs=-1, required=True, type=click.Path())  # a folder of scrapes


def _common(command):
    command = json_option("Print the run ids and row counts as JSON.")(command)
    return db_option("Telemetry database (created if missing).")(command)


def _write(db_path: str, batches: list, as_json: bool) -> None:
    from causalsre.telemetry import connect_writable
    from causalsre.telemetry.importers.writer import write_batches

    created = not Path(db_path).exists()
    try:
        con = connect_writable(db_path, upgrade=False)  # an older schema is upgraded only by `db migrate`
        try:
            write_batches(con, batches)
        finally:
            con.close()
    except Exception as exc:
        from causalsre.errors import UserError
        from causalsre.telemetry.failures import storage_error

        if created:  # a failed import into a new path leaves no empty database behind
            for leftover in (Path(db_path), Path(db_path + ".wal")):
                leftover.unlink(missing_ok=True)
        problem = None if isinstance(exc, UserError) else storage_error(db_path, exc)
        if problem is not None:
            raise problem from None  # disk full or another I/O failure: one line naming the file
        raise
    # "notes" only where a file leaves something out: a complete import's JSON is as it always was
    runs = [{"run_id": b.run_id, "kind": b.kind, "attached": b.attach, **b.counts(), **({"notes": b.notes} if b.notes
                                                                                      else {})} for b in batches]
    for batch in batches:  # what the files cannot tell the postmortem: said now, on stderr (importers/coverage.py)
        for note in batch.notes:
            click.echo(f"note: {batch.run_id}: {note}", err=True)
    if as_json:
        click.echo(json.dumps({"db": db_path, "runs": runs}, indent=2))
        return
    for run in runs:
        counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in run.items()
                           if k in ("requests", "metric_samples", "operator_events", "run_settings") and v)
        verb = "added to run" if run["attached"] else "as run"
        click.echo(f"imported {counts or 'nothing'} into {db_path} {verb} {run['run_id']}")


@click.command("vllm-bench")
@FILES
@_common
@click.option("--name", default=None, help="Label for the run (default: the file name).")
@click.option("--utc-offset", "offset", default=None,
              help="UTC offset of the benchmark client's clock, e.g. +02:00 (vLLM writes `date` in local time; "
                   "default UTC).")
@click.option("--keep-failed", is_flag=True,
              help="Import a result whose every request failed (an outage) as errors instead of refusing it.")
def vllm_bench(files: tuple[str, ...], db_path: str, as_json: bool, name: str | None, offset: str | None,
               keep_failed: bool) -> None:
    """Import vLLM `bench serve --save-result --save-detailed` JSON: one run per result.

    Arrivals are the real send times minus the client-side queue times (start_times, queue_times); files
    without them fall back to request_submit_times or evenly spaced "approximate" arrivals. A closed loop
    (--request-rate inf --max-concurrency N) is measured from sending: its requests were all queued at once.

    Example: causalsre db import vllm-bench vllm-0.32-result.json --db telemetry.duckdb --json
    """
    from causalsre.telemetry.importers import vllm_bench as importer

    _write(db_path, importer.parse(list(files), name=name, offset=offset, keep_failed=keep_failed), as_json)


@click.command("sglang-bench")
@FILES
@_common
@click.option("--name", default=None, help="Label for the runs (default: the file name).")
@click.option("--started-at", "started_at", default=None,
              help="When the file's first benchmark began (ISO 8601 or epoch seconds): sglang writes no wall "
                   "clock (default: the last result ends at the file's modification time).")
@click.option("--keep-failed", is_flag=True,
              help="Import a result whose every request failed (an outage) as errors instead of refusing it.")
def sglang_bench(files: tuple[str, ...], db_path: str, as_json: bool, name: str | None, started_at: str | None,
                 keep_failed: bool) -> None:
    """Import `python -m sglang.bench_serving --output-file X.jsonl --output-details` results: one run per line.

    sglang writes no send time per request: arrivals are spread evenly over each run's duration (all at 0
    for --request-rate inf without --max-concurrency), and each request ends at its last token. Server
    settings come from the result's server_info (later sglang versions).

    Example: causalsre db import sglang-bench sglang_1202_200_256_32.jsonl --db telemetry.duckdb --json
    """
    from causalsre.telemetry.importers import sglang_bench as importer

    _write(db_path, importer.parse(list(files), name=name, started_at=started_at, keep_failed=keep_failed), as_json)


@click.command("prometheus")
@FILES_OR_DIRS
@_common
@run_option("Add the samples to this existing run (e.g. a vllm-bench import).")
@click.option("--at", "at", default=None, help="Scrape time of a single text file (ISO 8601 or epoch seconds).")
@click.option("--name", default=None, help="Label for a new run (default: the first file name).")
def prometheus(files: tuple[str, ...], db_path: str, as_json: bool, run_id: str | None, at: str | None,
               name: str | None) -> None:
    """Import Prometheus scrapes, query_range JSON or promtool tsdb dumps (metric_samples).

    A text scrape's time comes from `--at`, a `# scrape_time <epoch or ISO>` comment, or a file name like
    metrics-1767225600.txt (in that order). A file may hold many scrapes, each after its own `# scrape_time`
    line (or ended by OpenMetrics `# EOF`); a directory stands for its files; gzip is read as is. All files
    of one command become one run, or join `--run RUN`.

    Example: causalsre db import prometheus scrapes/ --db telemetry.duckdb --run import-vllm-bench-3f2a
    """
    from causalsre.telemetry.importers import prometheus as importer

    _write(db_path, [importer.parse(list(files), run_id=run_id, at=at, name=name)], as_json)


@click.command("vllm-log")
@FILES
@_common
@run_option("Add the log's samples, settings and restarts to this existing run (e.g. a vllm-bench import).")
@click.option("--year", type=click.IntRange(2000, 2199), default=None,
              help="Year of the log's first line (vLLM's timestamps have none; default with --run: the run's).")
@click.option("--utc-offset", "offset", default=None,
              help="UTC offset of the server's clock, e.g. +02:00 (vLLM logs local time; default UTC).")
@click.option("--name", default=None, help="Label for a new run (default: the first file name).")
def vllm_log(files: tuple[str, ...], db_path: str, as_json: bool, run_id: str | None, year: int | None,
             offset: str | None, name: str | None) -> None:
    """Import a vLLM server log (what `vllm serve` writes): stats lines, start-up settings and restarts.

    The stats line vLLM writes every 10 s while busy (running, waiting, KV cache usage) becomes metric_samples
    under the Prometheus importer's names; each start's flags (`non-default args:`) become run_settings, and a
    second start in the log is a restart (an operator event). Give rotated files oldest first.

    Example: causalsre db import vllm-log vllm.log --db telemetry.duckdb --run import-vllm-bench-3f2a
    """
    from causalsre.telemetry.importers import vllm_log as importer

    reference_s = _run_start(db_path, run_id) if run_id is not None and year is None else None
    _write(db_path, [importer.parse(list(files), run_id=run_id, year=year, reference_s=reference_s, offset=offset,
                                    name=name)], as_json)


def _run_start(db_path: str, run_id: str) -> float:
    """Epoch seconds of a run's start, read before anything is written: the year of a log attached to it."""
    from causalsre.errors import UserError
    from causalsre.telemetry import connect_readonly

    con = connect_readonly(db_path)
    try:
        rows = con.execute("SELECT epoch_us(started_at) FROM runs WHERE run_id = ?", [run_id]).fetchall()
    finally:
        con.close()
    if not rows or rows[0][0] is None:
        raise UserError(f"run {run_id!r} is not in the database",
                        "`causalsre db info --db DB` lists the runs; leave out --run and give --year to create a new one")
    return rows[0][0] / 1e6


@click.command("otel")
@FILES
@_common
@click.option("--name", default=None, help="Label for the run (default: the first file name).")
def otel(files: tuple[str, ...], db_path: str, as_json: bool, name: str | None) -> None:
    """Import OpenTelemetry OTLP JSON traces: each LLM request span (vLLM's, or GenAI conventions) is a request.

    Example: causalsre db import otel traces.otlp.json --db telemetry.duckdb
    """
    from causalsre.telemetry.importers import otel as importer

    _write(db_path, [importer.parse(list(files), name=name)], as_json)


@click.command("guidellm")
@FILES
@_common
@click.option("--name", default=None, help="Label prefix for the runs (default: the file name).")
def guidellm(files: tuple[str, ...], db_path: str, as_json: bool, name: str | None) -> None:
    """Import a guidellm benchmark report (benchmarks.json): one run per benchmark (rate) in the report.

    Example: causalsre db import guidellm benchmarks.json --db telemetry.duckdb
    """
    from causalsre.telemetry.importers import guidellm as importer

    _write(db_path, importer.parse(list(files), name=name), as_json)


@click.command("events")
@FILES
@_common
@run_option("Attach the events to this existing run.")
@click.option("--name", default=None, help="Label for a new run (default: the file name).")
def events(files: tuple[str, ...], db_path: str, as_json: bool, run_id: str | None, name: str | None) -> None:
    """Import operator events (deploys, config pushes, scale events) from CSV: time,key,value[,kind].

    Rows of kind `config` whose value is a number or a word are also recorded as setting changes
    (run_settings), so the postmortem sees them like a harness config push.

    Example: causalsre db import events changes.csv --db telemetry.duckdb --run import-vllm-bench-3f2a
    """
    from causalsre.telemetry.importers import events as importer

    _write(db_path, [importer.parse(list(files), run_id=run_id, name=name)], as_json)


@click.command("table")
@click.argument("file", type=INPUT_FILE)
@_common
@click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD",
              help="The file's column COLUMN holds FIELD (repeatable), e.g. --map latency_ms=e2e_s.")
@click.option("--unit", "units", multiple=True, metavar="FIELD=UNIT",
              help="FIELD is in UNIT: s, ms or us (ttft_s, e2e_s, tpot_s; arrival_time as epoch numbers).")
@click.option("--name", default=None, help="Label for the run (default: the file name).")
def table(file: str, db_path: str, as_json: bool, maps: tuple[str, ...], units: tuple[str, ...],
          name: str | None) -> None:
    """Import any per-request CSV/Parquet file, naming which column is which field and its unit.

    Fields: arrival_time, ttft_s, e2e_s, prompt_tokens, output_tokens, status (required), tpot_s, tenant,
    priority, request_id, target_output_tokens, finish_reason, num_preemptions (docs/importers/table.md).
    Columns already named like a field need no --map; every other column is kept as a request attribute
    (a factor for the postmortem, e.g. gpu_type). A bad mapping is one line, exit 2, nothing written.

    Example: causalsre db import table gateway.csv --db t.duckdb --map ts=arrival_time --map first_token_ms=ttft_s --map latency_ms=e2e_s --unit ttft_s=ms --unit e2e_s=ms --map in_tok=prompt_tokens --map out_tok=output_tokens --map result=status
    """
    from causalsre.safeio import REQUEST_COLUMNS, check_table
    from causalsre.telemetry import connect_writable
    from causalsre.telemetry.failures import storage_error
    from causalsre.telemetry.importers.table import check_mapping, import_table, parse_pairs
    from causalsre.telemetry.imports import _read_table

    mapping, unit_map = parse_pairs(maps, "--map"), parse_pairs(units, "--unit")

    if Path(file).exists():  # bounded before pandas reads it (200,000 columns ran for minutes)
        check_table(file, what="file", max_columns=REQUEST_COLUMNS)
    frame, _ = _read_table(Path(file))  # a bad file or mapping fails here, before the database is opened
    check_mapping(mapping, unit_map, list(frame.columns), Path(file).name)
    created = not Path(db_path).exists()
    try:
        con = connect_writable(db_path, upgrade=False)  # an older schema is upgraded only by `db migrate`
        try:
            run_id = import_table(con, file, mapping=mapping, units=unit_map, name=name)
            count = first_row(con.execute("SELECT count(*) FROM requests WHERE run_id = ?", [run_id]))[0]
        finally:
            con.close()
    except Exception as exc:
        from causalsre.errors import UserError

        if created:  # a failed import into a new path leaves no empty database behind
            for leftover in (Path(db_path), Path(db_path + ".wal")):
                leftover.unlink(missing_ok=True)
        problem = None if isinstance(exc, UserError) else storage_error(db_path, exc)
        if problem is not None:
            raise problem from None
        raise
    if as_json:
        click.echo(json.dumps({"db": db_path, "runs": [{"run_id": run_id, "kind": "import-table",
                                                         "requests": count}]}, indent=2))
        return
    click.echo(f"imported {count} requests from {file} into {db_path} as run {run_id}")

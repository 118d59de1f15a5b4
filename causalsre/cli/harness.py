"""`causalsre harness ...`: run the load harness (configs, sweeps, fault scenarios) into a telemetry database."""

from __future__ import annotations

import json
import os

import click

from causalsre.cli import options
from causalsre.telemetry import first_row


def _quiet_threads() -> None:
    # One intra-op thread unless the user asked otherwise: the engine sets its own from the config.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _summary(db: str, run_id: str) -> dict:
    from causalsre.telemetry import connect_readonly

    con = connect_readonly(db)
    try:
        row = first_row(con.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_ok), count(*) FILTER (WHERE status = 'rejected'), "
            "quantile_cont(ttft_s, 0.5), quantile_cont(ttft_s, 0.9), quantile_cont(tpot_s, 0.5) "
            "FROM request_metrics WHERE run_id = ?", [run_id]))
        status = first_row(con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]))[0]
    finally:
        con.close()
    return {"run_id": run_id, "status": status, "requests": row[0], "ok": row[1], "rejected": row[2],
            "ttft_p50_s": row[3], "ttft_p90_s": row[4], "tpot_p50_s": row[5]}


def _echo_runs(db: str, run_ids: list[str], as_json: bool) -> None:
    summaries = [_summary(db, r) for r in run_ids]
    if as_json:
        click.echo(json.dumps(summaries if len(summaries) != 1 else summaries[0], indent=2))
        return
    for s in summaries:
        ttft = "-" if s["ttft_p50_s"] is None else f"{s['ttft_p50_s'] * 1000:.0f} ms"
        click.echo(f"{s['run_id']}: {s['status']}, {s['requests']} requests ({s['ok']} ok, {s['rejected']} "
                   f"rejected), TTFT p50 {ttft} -> {db}")


db_option = options.db_option("DuckDB telemetry file (created if missing; an older schema is refused: "
                               "`causalsre db migrate` first).", name="db", written=True)
seed_option = options.seed_option(None, "Seed for every random choice (default: the config's).")
json_option = options.json_option("Print a JSON summary.")
# --set: an engine setting by name (max_num_seqs=8; engine.max_num_seqs=8 too), other config values dotted.
_SET_HELP = "Override a config value: an engine setting by name, e.g. --set max_num_seqs=8, another by its dotted key"


def target_options(command):
    """--target/--model/--engine: drive an OpenAI-compatible server instead of the embedded engine."""
    command = click.option("--engine", type=click.Choice(["builtin", "vllm"]), default="builtin", show_default=True,
                           help="vllm: start the peer vLLM (make peer-vllm) with the config's engine settings, "
                                "drive it, stop it.")(command)
    command = click.option("--model", "model_name", default=None,
                           help="With --target: the served model name the requests ask for.")(command)
    return click.option("--target", default=None, metavar="URL",
                        help="Drive this OpenAI-compatible server (e.g. http://127.0.0.1:8000) instead of the "
                             "engine; the harness does not manage it.")(command)


def _target(target: str | None, model_name: str | None, engine: str) -> dict:
    """run()'s target/engine keywords from the CLI options (one-line errors for bad combinations)."""
    from causalsre.errors import UserError

    if target is None:
        if model_name is not None:
            raise UserError("--model goes with --target", "add --target URL, or drop --model")
        return {"engine": "vllm"} if engine == "vllm" else {}
    if engine == "vllm":
        raise UserError("--target and --engine vllm both name the server", "give one of them")
    if not target.startswith(("http://", "https://")):
        raise UserError(f"--target {target!r} is not an http(s) URL", "e.g. --target http://127.0.0.1:8000")
    if not model_name:
        raise UserError("--target needs --model NAME", f"the served model name ({target}/v1/models lists it)")
    from harness.http_target import Target

    return {"target": Target(target, model_name)}


@click.group()
def harness() -> None:
    """Run the inference engine under chosen loads and faults and record telemetry."""


@harness.command("run")
@click.argument("config", type=options.INPUT_FILE)
@db_option
@seed_option
@options.set_option(_SET_HELP + ", e.g. --set workload.rate=4 (value parsed as JSON if it can be).",
                    name="overrides", metavar="KEY=VALUE")
@target_options
@json_option
def run_command(config: str, db: str, seed: int | None, overrides: tuple[str, ...], target: str | None,
                model_name: str | None, engine: str, as_json: bool) -> None:
    """Run one configuration (a TOML file) into a database.

    Example: causalsre harness run harness/configs/smoke.toml --db telemetry.duckdb --seed 1

    Against a server: causalsre harness run harness/configs/smoke.toml --db t.duckdb --target http://127.0.0.1:8000 --model tiny
    """
    _quiet_threads()
    from harness.config import load_run_config

    where = _target(target, model_name, engine)
    cfg = load_run_config(config)
    if overrides:
        cfg = cfg.with_overrides(_parse_overrides(overrides))
    run_id = _run(cfg, db, seed, as_json, where)
    _echo_runs(db, [run_id], as_json)


def _run(cfg, db: str, seed: int | None, as_json: bool, where: dict) -> str:
    """The embedded engine's run, or (with a target or --engine vllm) the HTTP run against a server."""
    if where:
        from harness.http_run import run_http

        return run_http(cfg, db, seed, progress=not as_json, **where)
    from harness.runner import run

    return run(cfg, db, seed=seed, progress=not as_json)


_parse_overrides = options.parse_overrides


@harness.command("sweep")
@click.argument("sweep_file", type=options.INPUT_FILE)
@db_option
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--ray-address", default=None, help="Ray cluster address (default: start a local Ray).")
@target_options
@json_option
def sweep_command(sweep_file: str, db: str, backend: str, ray_address: str | None, target: str | None,
                  model_name: str | None, engine: str, as_json: bool) -> None:
    """Run a randomized design (Latin hypercube or random) over factor levels.

    Example: causalsre harness sweep harness/configs/sweep_small.toml --db sweep.duckdb --backend ray

    On vLLM (started per run with its engine settings): causalsre harness sweep my_sweep.toml --engine vllm --db v.duckdb
    """
    _quiet_threads()
    from harness.sweep import run_sweep

    where = _target(target, model_name, engine)
    run_ids = run_sweep(sweep_file, db, backend=backend, ray_address=ray_address, progress=not as_json, **where)
    _echo_runs(db, run_ids, as_json)


@harness.command("scenario")
@click.argument("name")
@db_option
@options.SEED
@options.set_option(_SET_HELP + ", e.g. --set calibrated_capacity_rps=3 for a server.", name="overrides",
                    metavar="KEY=VALUE")
@target_options
@json_option
def scenario_command(name: str, db: str, seed: int, overrides: tuple[str, ...], target: str | None,
                     model_name: str | None, engine: str, as_json: bool) -> None:
    """Run a fault scenario (see `causalsre harness list`).

    Example: causalsre harness scenario push_max_num_seqs --db incident.duckdb

    On vLLM: causalsre harness scenario rate_surge --engine vllm --set calibrated_capacity_rps=2 --db v.duckdb
    """
    _quiet_threads()
    from harness.scenarios import load_scenario, run_scenario

    where = _target(target, model_name, engine)
    if where:
        cfg = load_scenario(name)
        if overrides:
            cfg = cfg.with_overrides(_parse_overrides(overrides))
        run_id = _run(cfg, db, seed, as_json, where)
    else:
        run_id = run_scenario(name, db, seed=seed, progress=not as_json,
                              overrides=_parse_overrides(overrides) or None)
    _echo_runs(db, [run_id], as_json)


@harness.command("list")
@json_option
def list_command(as_json: bool) -> None:
    """List the fault scenarios and their root causes.

    Example: causalsre harness list --json
    """
    from harness.scenarios import list_scenarios, load_scenario, scenario_truth

    truths = [scenario_truth(load_scenario(name)) for name in list_scenarios()]
    if as_json:
        click.echo(json.dumps(truths, indent=2))
        return
    for t in truths:
        click.echo(f"{t['scenario']:<36} {','.join(t['families']):<20} {','.join(t['root_cause_factors'])}")


@harness.command("suite")
@click.argument("out_dir", type=options.OutputFolder())
@options.SEED
@click.option("--only", multiple=True, help="Run only these scenarios (repeatable).")
@options.json_option("Print the manifest as JSON (progress stays on stderr).")
def suite_command(out_dir: str, seed: int, only: tuple[str, ...], as_json: bool) -> None:
    """Build the scenario-suite dataset (suite.duckdb, manifest.json, truth.json) in OUT_DIR.

    Example: causalsre harness suite datasets/cpu-tiny
    """
    _quiet_threads()
    from harness.suite import build_suite

    command = f"causalsre harness suite {out_dir} --seed {seed}" + "".join(f" --only {n}" for n in only)
    manifest = build_suite(out_dir, seed=seed, names=list(only) or None, progress=True, command=command)
    if as_json:
        options.echo_json(manifest)
        return
    for name, entry in manifest["scenarios"].items():
        click.echo(f"{name}: {json.dumps(entry['slo_check'])}")


@harness.command("replay")
@click.argument("legacy", nargs=-1, cls=options.HiddenArgument)  # the old SOURCE_DB RUN_ID, kept working
@click.option("--from", "source_db", type=options.INPUT_FILE, metavar="FILE",
              help="The recorded database to replay from (only read).")
@options.window_option(help=f"What to replay: {options.FORMS}. The old forms NAME (a phase of --run) and "
                            "START_S:END_S (= +START_S:+END_S) still work.")
@options.run_option(help="The run, for a window that names none (phase:NAME, +S:+E).")
@options.db_option("DuckDB file the replay is written into (created if missing; not the source).", name="db",
                   written=True)
@options.set_option("The intervention, KNOB=VALUE, e.g. --set max_num_seqs=8 (engine.max_num_seqs=8 and other "
                    "dotted config keys work too).", name="overrides")
@target_options
@json_option
def replay_command(legacy: tuple[str, ...], source_db: str | None, window_text: str, run_id: str | None, db: str,
                   overrides: tuple[str, ...], target: str | None, model_name: str | None, engine: str,
                   as_json: bool) -> None:
    """Replay a recorded window's exact requests with an intervention applied.

    Example: causalsre harness replay --from incident.duckdb --window phase:incident@push_max_num_seqs-s0
    --set max_num_seqs=16 --db whatif.duckdb

    The old spelling `harness replay SOURCE_DB RUN_ID --window incident --set engine.max_num_seqs=16 --db OUT`
    still works.

    On a server: causalsre harness replay --from incident.duckdb --window phase:incident@RUN --target http://127.0.0.1:8000 --model tiny --db w.duckdb
    """
    _quiet_threads()
    from harness.replay import replay_window

    where = _target(target, model_name, engine)
    source_db, run_id = _replay_source(legacy, source_db, run_id)
    run_id, window = _replay_window(source_db, window_text, run_id)
    new_id = replay_window(source_db, run_id, window, _parse_overrides(overrides), db, progress=not as_json,
                           **where)
    _echo_runs(db, [new_id], as_json)


def _replay_source(legacy: tuple[str, ...], source_db: str | None, run_id: str | None) -> tuple[str, str | None]:
    """--from/--run, or the old positional SOURCE_DB [RUN_ID]; one line when they conflict or are missing."""
    from causalsre.errors import UserError
    from causalsre.safeio import regular_file

    if len(legacy) > 2:
        raise UserError(f"unexpected arguments {' '.join(legacy[2:])[:80]!r}",
                        "give the source with --from FILE and the run with --window ...@RUN or --run")
    if legacy:
        if source_db and source_db != legacy[0]:
            raise UserError("two source databases given", "give the source once: --from FILE")
        source_db = legacy[0]
        if len(legacy) == 2:
            if run_id and run_id != legacy[1]:
                raise UserError("two runs given", "give the run once: --run ID or @RUN in the window")
            run_id = legacy[1]
    if not source_db:
        raise UserError("no source database given", "add --from FILE (the recorded database to replay from)")
    regular_file(source_db, what="source database", missing_fix="check the --from path")
    return source_db, run_id


def _replay_window(source_db: str, text: str, run_id: str | None) -> tuple[str, str | tuple[float, float]]:
    """The window grammar, parsed against the source, as the replay's (run, phase name or (start_s, end_s))."""
    from causalsre.telemetry import connect_readonly
    from causalsre.windows import legacy_replay_window, parse_window, run_offsets

    con = connect_readonly(source_db)
    try:
        window = parse_window(legacy_replay_window(text), con, run=run_id)
        run, phase, start_s, end_s = run_offsets(window, con)
    finally:
        con.close()
    return run, (phase if phase is not None and window.start is None else (start_s, end_s))

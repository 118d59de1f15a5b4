"""`causalsre serve`: the engine behind an OpenAI-compatible API, recording telemetry as the harness does."""

from __future__ import annotations

import ipaddress
import json
import os

import click

from causalsre.cli.options import INPUT_FILE, db_option, json_option


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.command("serve")
@click.argument("config", required=False, type=INPUT_FILE)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback only unless you say otherwise).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="TCP port (0 picks a free one and prints it).")
@db_option("DuckDB telemetry file (created if missing); without it nothing is recorded.", required=False, name="db",
           written=True)
@click.option("--api-key", envvar="CAUSALSRE_API_KEY", default=None,
              help="Require 'Authorization: Bearer KEY' on /v1/* (or set CAUSALSRE_API_KEY).")
@click.option("--model-name", default=None, help="Model id clients send and /v1/models lists "
                                                 "(default causalsre-<preset>).")
@click.option("--max-queue", type=click.IntRange(1, 1_000_000), default=None,
              help="Waiting-queue bound; beyond it requests get 429 (default: the config's max_queue_len; "
                   "256 with --upstream).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              default="warning", show_default=True, help="uvicorn's log level.")
@click.option("--upstream", default=None, metavar="URL",
              help="Run as a gateway in front of this OpenAI-compatible server (e.g. a vLLM) instead of the "
                   "engine: the governor queues, orders and sheds there (docs/serve.md, Gateway).")
@click.option("--upstream-model", default=None, metavar="NAME",
              help="With --upstream: the model name to send upstream (default: the first it lists).")
@click.option("--governor", "governor_file", default=None, type=INPUT_FILE, metavar="TIERS.toml",
              help="With --upstream: a TOML file with a [governor] section and [[governor.tiers]] "
                   "(a harness run config works).")
@click.option("--policy", type=click.Choice(["fcfs", "priority", "edf", "budget"]), default=None,
              help="With --upstream: the gateway's queue order (default: budget with --governor, else fcfs).")
@click.option("--max-concurrency", type=click.IntRange(1, 4096), default=8, show_default=True,
              help="With --upstream: requests in flight to the upstream at once; the rest wait in the gateway.")
@json_option("Print the startup line as JSON.")
def serve(config: str | None, host: str, port: int, db: str | None, api_key: str | None,
          model_name: str | None, max_queue: int | None, log_level: str, upstream: str | None,
          upstream_model: str | None, governor_file: str | None, policy: str | None, max_concurrency: int,
          as_json: bool) -> None:
    """Serve the engine over /v1/completions, /v1/chat/completions, /v1/models, /health and /metrics.

    CONFIG is an optional harness run config (its [engine] section, plus an optional [serve] section for
    limits; see docs/serve.md). Stop it with Ctrl-C or SIGTERM; telemetry is flushed as it runs.

    Example: causalsre serve harness/configs/smoke.toml --port 8000 --db serve.duckdb --api-key secret

    As a gateway: causalsre serve --upstream http://127.0.0.1:8000 --governor tiers.toml --port 8100 --db gw.duckdb
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if upstream is not None:
        _run_gateway(config=config, host=host, port=port, db=db, api_key=api_key, model_name=model_name,
                    max_queue=max_queue, log_level=log_level, upstream=upstream, upstream_model=upstream_model,
                    governor_file=governor_file, policy=policy, max_concurrency=max_concurrency, as_json=as_json)
        return
    if governor_file is not None or policy is not None or upstream_model is not None:
        from causalsre.errors import UserError

        raise UserError("--governor, --policy and --upstream-model are gateway options",
                        "add --upstream URL, or set the engine's policy and [governor] in CONFIG")
    from harness.serve import load_serve_settings
    from harness.serve.app import create_app
    from harness.serve.loop import EngineLoop
    from harness.serve.server import bind, serve_forever

    settings = load_serve_settings(config, model_name=model_name, max_queue=max_queue, api_key=api_key)
    sock = bind(host, port)
    loop = EngineLoop(settings, db)
    try:
        loop.start()
    except BaseException:
        sock.close()
        raise
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{bound_host if ':' not in bound_host else f'[{bound_host}]'}:{bound_port}"
    info = {"url": url, "host": bound_host, "port": bound_port, "model": settings.model_name, "db": db,
            "run_id": loop.run_id, "api_key_required": settings.api_key is not None}
    if not _is_loopback(host) and settings.api_key is None:
        click.echo(f"warning: listening on {host} without --api-key: anyone who can reach it can use it", err=True)
    if as_json:
        click.echo(json.dumps(info))
    else:
        recorded = f"telemetry run {loop.run_id} -> {db}" if db else "no telemetry (no --db)"
        click.echo(f"serving {settings.model_name} on {url} ({recorded}); Ctrl-C stops")
    # Flush now: a parent process waiting for the port reads this line.
    click.get_text_stream("stdout").flush()
    app = create_app(loop)
    serve_forever(app, sock, log_level=log_level)


def _run_gateway(*, config, host, port, db, api_key, model_name, max_queue, log_level, upstream, upstream_model,
                 governor_file, policy, max_concurrency, as_json) -> None:
    """`serve --upstream`: the governor as a gateway in front of another server (harness.serve.gateway)."""
    from causalsre.errors import UserError
    from harness.serve.gateway import BATCHING_NOTE, GatewaySettings, load_governor_toml, probe_upstream
    from harness.serve.gateway_app import create_gateway_app
    from harness.serve.server import bind, serve_forever

    if config is not None:
        raise UserError("CONFIG sets the built-in engine, which a gateway does not run",
                        "drop CONFIG; put the tiers in a file for --governor")
    if api_key is not None and not api_key.strip():
        raise UserError("--api-key is empty", "pass a non-empty key, or leave the flag out")
    governor = load_governor_toml(governor_file) if governor_file is not None else None
    base = upstream.rstrip("/")
    served = probe_upstream(base, upstream_model)
    settings = GatewaySettings(upstream=base, upstream_model=served, model_name=model_name or served,
                               policy=policy or ("budget" if governor is not None else "fcfs"),
                               max_concurrency=max_concurrency, max_queue=max_queue or 256, governor=governor,
                               api_key=api_key)
    sock = bind(host, port)
    app = create_gateway_app(settings, db)
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{bound_host if ':' not in bound_host else f'[{bound_host}]'}:{bound_port}"
    tiers = [t.name for t in governor.all_tiers] if governor is not None else []
    info = {"url": url, "host": bound_host, "port": bound_port, "model": settings.model_name, "db": db,
            "upstream": base, "upstream_model": served, "policy": settings.policy, "tiers": tiers,
            "max_concurrency": max_concurrency, "api_key_required": api_key is not None, "note": BATCHING_NOTE}
    if not _is_loopback(host) and api_key is None:
        click.echo(f"warning: listening on {host} without --api-key: anyone who can reach it can use it", err=True)
    if as_json:
        click.echo(json.dumps(info))
    else:
        recorded = f"telemetry -> {db}" if db else "no telemetry (no --db)"
        click.echo(f"gateway for {base} ({served}) on {url}: policy {settings.policy}, {max_concurrency} in "
                   f"flight, tiers {', '.join(tiers) or 'none'}; {BATCHING_NOTE} ({recorded}); Ctrl-C stops")
    click.get_text_stream("stdout").flush()
    serve_forever(app, sock, log_level=log_level)

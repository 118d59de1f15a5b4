"""`causalsre serve`: the engine behind an OpenAI-compatible API, recording telemetry as the harness does."""

from __future__ import annotations

import ipaddress
import json
import os

import click

from causalsre.cli.options import db_option, json_option


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.command("serve")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback only unless you say otherwise).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="TCP port (0 picks a free one and prints it).")
@db_option("DuckDB telemetry file (created if missing); without it nothing is recorded.", required=False, name="db")
@click.option("--api-key", envvar="CAUSALSRE_API_KEY", default=None,
              help="Require 'Authorization: Bearer KEY' on /v1/* (or set CAUSALSRE_API_KEY).")
@click.option("--model-name", default=None, help="Model id clients send and /v1/models lists "
                                                 "(default causalsre-<preset>).")
@click.option("--max-queue", type=click.IntRange(1, None), default=None,
              help="Waiting-queue bound; beyond it requests get 429 (default: the config's max_queue_len).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              default="warning", show_default=True, help="uvicorn's log level.")
@json_option("Print the startup line as JSON.")
def serve(config: str | None, host: str, port: int, db: str | None, api_key: str | None,
          model_name: str | None, max_queue: int | None, log_level: str, as_json: bool) -> None:
    """Serve the engine over /v1/completions, /v1/chat/completions, /v1/models, /health and /metrics.

    CONFIG is an optional harness run config (its [engine] section, plus an optional [serve] section for
    limits; see docs/serve.md). Stop it with Ctrl-C or SIGTERM; telemetry is flushed as it runs.

    Example: causalsre serve harness/configs/smoke.toml --port 8000 --db serve.duckdb --api-key secret
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
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

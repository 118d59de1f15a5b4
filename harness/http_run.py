"""Run a config against an OpenAI-compatible server instead of the embedded engine.

``run_http(cfg, db, target=Target(url, model))`` drives a server someone else runs; ``engine="vllm"``
starts the peer vLLM itself (:mod:`harness.peers.vllm_server`) and always stops it. The workload is the
schedule the engine would get (same seed, same arrivals, lengths and tenants); requests, per-token times,
events, settings, faults and phases go through the telemetry writer as for an engine run, and ``/metrics``
scrapes go into ``metric_samples``.

Faults: workload faults reshape the schedule and CPU contention starts busy processes, as always. Faults
that change the server (config_push, kv_shrink, fewer_threads) need a server the harness manages: at the
fault's time the harness stops sending, drains the requests in flight (up to ``drain_timeout_s``), restarts
vLLM with the new flags while the run's clock stands still, and resumes the schedule where it stopped; the
change is in ``run_settings`` (from the fault's time) and ``operator_events``. ``step_delay`` has no
counterpart on a server and is refused.
"""

from __future__ import annotations

import os
import platform
import socket
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from causalsre.errors import UserError
from harness.config import EngineSection, RunConfig, load_run_config
from harness.faults import ENGINE_KNOBS
from harness.http_drive import HttpDrive
from harness.http_target import RunClock, Target
from harness.runner import _runs_row, fit_to_model, prepare

SERVER_FAULTS = ("config_push", "kv_shrink", "fewer_threads")  # they change the server itself
# Settings of the server itself: unknown for a server the harness does not run (the client-side timeout stays).
SERVER_SETTINGS = (set(EngineSection.model_fields) | set(ENGINE_KNOBS) | {"step_delay_s"}) - {"request_timeout_s"}


def check_http_config(cfg: RunConfig, *, managed: bool) -> None:
    """What an HTTP target cannot do, refused before anything starts."""
    for fault in cfg.faults:
        if fault.kind == "step_delay":
            raise UserError("fault 'step_delay' delays the embedded engine's steps; a server has no such hook",
                            "drop the fault, or run on the embedded engine")
        if fault.kind in SERVER_FAULTS and not managed:
            raise UserError(f"fault '{fault.kind}' changes the server: the harness does not manage this server",
                            "use --engine vllm (the harness starts and restarts vLLM), or drop the fault")
    if cfg.workload.load_fraction is not None and cfg.calibrated_capacity_rps is None:
        raise UserError("workload.load_fraction is calibrated on the embedded engine, not on this server",
                        "pass --set calibrated_capacity_rps=N (the server's capacity in requests/s), "
                        "or give workload.rate")


class _Managed:
    """The vLLM server the harness runs, restartable on the same port with other engine settings."""

    def __init__(self, engine_section, served_model_name: str):
        from harness.peers.vllm_server import VllmServer

        self.server = VllmServer(engine_section, served_model_name=served_model_name)
        self.engine = engine_section

    def start(self) -> None:
        self.server.start()

    def restart(self, knobs: dict[str, Any]) -> None:
        from harness.peers.vllm_server import VllmServer

        port, name = self.server.port, self.server.served_model_name
        self.server.stop()
        self.engine = self.engine.model_copy(update=knobs)
        self.server = VllmServer(self.engine, served_model_name=name, port=port, log_path=self.server.log_path)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()


def check_target(target: Target) -> None:
    """Fail at once, in one line, when nothing answers at the URL or it does not serve the model."""
    import httpx

    try:
        response = httpx.get(f"{target.base_url}/v1/models", timeout=10.0)
    except httpx.TransportError as exc:
        raise UserError(f"cannot reach {target.url} ({type(exc).__name__})",
                        "start the server first, or check --target") from None
    try:
        served = [m["id"] for m in response.json()["data"]] if response.status_code == 200 else None
    except (ValueError, KeyError, TypeError):
        served = None  # not the OpenAI listing: nothing to check against
    if served is not None and target.model not in served:
        raise UserError(f"{target.url} serves {served}, not {target.model!r}", "pass one of those as --model")


def _host_info(target: Target, managed: _Managed | None) -> dict[str, Any]:
    info = {"host": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "writer_pid": os.getpid(), "target": target.url,
            "served_model": target.model, "engine": "vllm" if managed else "external"}
    if managed is not None:
        info.update(vllm_flags=managed.server.flags, vllm_env=managed.server.env)
    return info


def run_http(cfg: RunConfig | str | Path, db_path: str | Path, seed: int | None = None, *,
             target: Target | None = None, engine: str | None = None, progress: bool = False,
             run_id: str | None = None) -> str:
    """Drive ``target`` (or a vLLM started here when ``engine='vllm'``) with ``cfg``; returns the run id."""
    from causalsre.telemetry import connect_writable
    from harness.http_metrics import MetricBuffer
    from harness.writer import TelemetryWriter

    if engine not in (None, "vllm"):
        raise UserError(f"unknown engine {engine!r} for an HTTP run", "use --engine vllm")
    if (target is None) == (engine is None):
        raise UserError("an HTTP run needs either --target URL or --engine vllm", "give exactly one of them")
    if not isinstance(cfg, RunConfig):
        cfg = load_run_config(cfg)
    check_http_config(cfg, managed=engine == "vllm")
    cfg, seed, rate, schedule = prepare(cfg, seed)
    managed = None
    if engine == "vllm":
        from harness.peers.vllm_server import MAX_MODEL_LEN

        schedule = [fit_to_model(spec, MAX_MODEL_LEN) for spec in schedule]
        managed = _Managed(cfg.engine, served_model_name=cfg.engine.model)
    else:
        check_target(target)
    run_id = run_id or f"{cfg.name}-s{seed}-{uuid.uuid4().hex[:8]}"
    con = connect_writable(db_path)  # before the server's minutes of start-up: a bad --db fails at once
    try:
        status = "incomplete"
        try:
            if managed is not None:
                managed.start()  # stopped below whatever happens, Ctrl-C included
                target = Target(managed.server.url, managed.server.served_model_name)
            writer = TelemetryWriter(con, run_id)
            buffer = MetricBuffer(con, run_id)
            clock = RunClock()
            row = _runs_row(cfg, seed, rate, datetime.now(timezone.utc).replace(tzinfo=None),
                            _host_info(target, managed))
            if managed is None:  # the config's engine section says nothing about a server we do not run
                row.update({k: None for k in row if k in SERVER_SETTINGS and k != "seed"})  # seed: the run's
            writer.start(row)
            try:
                HttpDrive(cfg, seed, rate, schedule, target, clock, writer, buffer, managed, progress,
                          server_settings=SERVER_SETTINGS).run()
                status = "complete"
            finally:
                try:
                    buffer.close()
                finally:
                    writer.close(status)
        finally:
            if managed is not None:
                managed.stop()
    finally:
        con.close()
    return run_id

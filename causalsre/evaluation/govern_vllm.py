"""``causalsre eval govern --target vllm``: the same tiers and traffic through the gateway in front of real vLLM.

One vLLM server (the peer virtualenv, ``.venv-vllm``) runs for the whole evaluation with the engine's own
limits (``max_num_seqs`` 16, 256 batched tokens, fcfs); for every run a fresh gateway (``causalsre serve
--upstream``, a subprocess, as a user starts it) with one policy and the tiers, ``--max-concurrency`` equal to
vLLM's ``max_num_seqs``, so vLLM's own queue stays empty and the order is the gateway's. The harness drives the
gateway over HTTP (``run_http``) with the group's explicit requests; each tier's budget is measured on the
client's database (what a user sees, the gateway's time included) and the governor's decisions on the
gateway's. Calibration (capacity bursts, the half-load run) goes through one fcfs gateway kept for the
purpose, so a gateway-bound capacity is the one measured. The groups are the engine evaluation's
(``causalsre.evaluation.govern.evaluate_govern``): speed probe (the embedded engine's, the same machine)
and capacity just before each, thresholds held in machine time, policy order rotated, drift flagged.

Batching depth is out of a gateway's reach: vLLM's ``max_num_seqs`` and ``max_num_batched_tokens`` are fixed
at its start, and the gateway drops its governor's ``batching_depth`` decisions; vtc is not a gateway policy.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from causalsre.errors import UserError
from causalsre.safeio import write_text
from causalsre.evaluation import govern_traffic as T
from causalsre.evaluation.govern_measure import close_group, measure_run, tier_slos

GATEWAY_POLICIES = ("fcfs", "priority", "edf", "budget")
NOTE = ("target vllm: the gateway in front of the real vLLM peer. Batching depth is out of a gateway's reach "
        "(vLLM's max_num_seqs and max_num_batched_tokens are fixed at its start; the governor's batching_depth "
        "decisions are dropped), it cannot preempt a running request, and vtc is not a gateway policy.")
GATEWAY_START_S = 180.0   # a bound for a busy shared machine (imports, the upstream probe), not a figure
BURST = 32                # capacity probe: 2 x max_num_seqs requests at once, as harness.capacity does


def check_policies(policies: list[str]) -> list[str]:
    missing = [p for p in policies if p not in GATEWAY_POLICIES]
    if missing:
        raise UserError(f"policy {missing[0]!r} is not a gateway policy (--target vllm has "
                        f"{', '.join(GATEWAY_POLICIES)})", "leave it out of --policies")
    return policies


def check_available() -> None:
    """Refuse, before any work, where the peer virtualenv is not built or the platform cannot run it."""
    from harness.peers.vllm_server import SETUP_FIX, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        raise UserError(f"--target vllm: the vLLM peer is unavailable: {reason}", SETUP_FIX)


def vllm_engine():
    """The engine settings vLLM starts with: the evaluation engine's limits (harness.peers.vllm_server maps them)."""
    from harness.config import EngineSection

    return EngineSection(**dict(T.engine_section("fcfs"), seed=0))


def governor_toml(section: dict[str, Any]) -> str:
    """The ``[governor]`` TOML of a governor section (scalars, strings, lists and booleans only)."""
    lines = ["[governor]"] + [f"{k} = {toml_value(v)}" for k, v in section.items() if k != "tiers"]
    for tier in section["tiers"]:
        lines += ["", "[[governor.tiers]]"] + [f"{k} = {toml_value(v)}" for k, v in tier.items()]
    return "\n".join(lines) + "\n"


def toml_value(value: Any) -> str:
    """One TOML value. json.dumps wrote an infinite threshold as ``Infinity`` (TOML's is ``inf``: the file did
    not parse) and refused a NumPy float32; floats are written with repr, which TOML reads back exactly."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()  # a NumPy scalar
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # an int, or a string (JSON's escapes are TOML's basic-string escapes)


class Gateway:
    """``causalsre serve --upstream URL`` in a subprocess, for one run; stopped with SIGTERM (it flushes)."""

    def __init__(self, upstream: str, model: str, tiers: Path | None, policy: str, concurrency: int, db: Path):
        self.args = [sys.executable, "-m", "causalsre", "serve", "--upstream", upstream, "--upstream-model", model,
                     "--policy", policy, "--max-concurrency", str(concurrency), "--max-queue", "64",
                     "--port", "0", "--db", str(db), "--json"] + (["--governor", str(tiers)] if tiers else [])
        self.child: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> "Gateway":
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
        self.child = subprocess.Popen(self.args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.child.stdout.readline()), daemon=True)
        reader.start()
        reader.join(GATEWAY_START_S)
        if not line or not line[0].strip():
            self.child.kill()
            error = self.child.stderr.read().strip().splitlines()
            raise UserError(f"the gateway did not start: {error[-1] if error else 'no output'}",
                            "run the same `causalsre serve --upstream ...` by hand to see why")
        self.url = json.loads(line[0])["url"]
        return self

    def __exit__(self, *exc) -> None:
        child, self.child = self.child, None
        if child is None:
            return
        child.terminate()
        try:
            child.wait(60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)


def _fit(requests: list[tuple]) -> list[tuple]:
    """Requests within vLLM's context (prompt + output <= its max_model_len): the prompt is cut, as run_http's
    managed runs do."""
    from harness.peers.vllm_server import MAX_MODEL_LEN

    return [(a, max(1, min(p, MAX_MODEL_LEN - o)), o, t, pr, i) for a, p, o, t, pr, i in requests]


def _drive(url: str, model: str, workload: str, requests, db: Path, *, seed: int, duration_s: float,
           drain_s: float, run_id: str) -> None:
    """The harness client (fcfs config: no priority field is sent; the gateway orders) on explicit requests."""
    from harness.config import parse_run_config
    from harness.http_run import run_http
    from harness.http_target import Target

    if db.exists():
        raise UserError(f"{db} already exists", "pass a new --out folder")
    cfg = T.policy_config(workload, "fcfs", requests=requests, load=1.0, capacity=1.0, seed=seed,
                          duration_s=duration_s, drain_s=drain_s, thresholds=None)
    run_http(parse_run_config(cfg, source=cfg["name"]), db, seed=seed, target=Target(url, model), run_id=run_id)


def _capacity(ctx, folder: Path, workload: str, seed: int, lengths, tag: str) -> float:
    """Saturated requests/s through the calibration gateway: BURST requests at once, ok ones / time to the last."""
    from causalsre.telemetry import connect_readonly, first_row

    many = T.schedule(workload, load=1.0, seed=seed, capacity=4 * BURST, duration_s=1.0, lengths=lengths,
                      trace_path=ctx["trace_path"])[:BURST]
    burst = _fit([(i * 1e-3, p, o, t, pr, i) for i, (_, p, o, t, pr, _) in enumerate(many)])
    db = folder / f"capacity-{tag}.duckdb"
    _drive(ctx["calibration_url"], ctx["model"], workload, burst, db, seed=seed, duration_s=1.0,
           drain_s=max(30.0, ctx["drain_s"]), run_id=f"govern-vllm-{workload}-capacity-{tag}")
    con = connect_readonly(db)
    try:
        ok, span = first_row(con.execute("SELECT count(*) FILTER (WHERE is_ok), (max(arrival_ns + COALESCE(e2e_s, 0) * 1e9) "
                               "- min(arrival_ns)) / 1e9 FROM request_metrics"))
    finally:
        con.close()
    if not ok or not span:
        raise UserError(f"vLLM finished none of the {BURST} capacity-probe requests ({db})",
                        "see the vLLM log; the machine may be very busy")
    return float(ok) / float(span)


def _calibrate(ctx, folder: Path, workload: str, lengths) -> tuple[float, dict]:
    # A fresh vLLM's first requests pay its lazy set-up (seconds each on a busy machine): one burst first,
    # thrown away, or the capacity comes out low and the half-load TTFT threshold many seconds long.
    _capacity(ctx, folder, workload, 0, lengths, "warmup")
    capacity = _capacity(ctx, folder, workload, 0, lengths, "calibration")
    ctx["say"](f"{workload}: half-load run through the gateway ({capacity:.2f} req/s capacity)")
    requests = _fit(T.schedule(workload, load=T.CALIBRATION_LOAD, seed=0, capacity=capacity,
                               duration_s=ctx["duration_s"], lengths=lengths, trace_path=ctx["trace_path"]))
    db = folder / "calibration.duckdb"
    _drive(ctx["calibration_url"], ctx["model"], workload, requests, db, seed=0, duration_s=ctx["duration_s"],
           drain_s=ctx["drain_s"], run_id=f"govern-vllm-{workload}-calibration")
    thresholds = T.latency_thresholds(db, T.latency_factor(modelled=False))   # vLLM runs on the wall clock
    thresholds["calibration_speed_ms"] = T.probe_speed_ms(lengths)
    return capacity, dict(thresholds, rule=f"per tier {thresholds['factor']:g} x a 95 % upper bound of the tier's "
                                           f"quantile of ok requests at {T.CALIBRATION_LOAD:g}x load (fcfs "
                                           "gateway in front of vLLM)",
                          calibration_db=str(db))


def run_vllm_group(ctx, folder: Path, workload: str, load: float, seed: int, order: list[str], lengths, base):
    """One (load, seed) group in front of vLLM: what ``govern._run_group`` does for the embedded engine."""
    say, duration_s = ctx["say"], ctx["duration_s"]
    prefix = f"x{load:g}-s{seed}-"
    speed_before = T.probe_speed_ms(lengths)
    capacity = _capacity(ctx, folder, workload, seed, lengths, prefix.rstrip("-"))
    thresholds = T.scaled_thresholds(base, speed_before)
    slos = tier_slos(folder, thresholds, prefix=prefix)
    tiers = folder / f"{prefix}tiers.toml"
    write_text(tiers, governor_toml(T.governor_section(thresholds, duration_s)))
    requests = _fit(T.schedule(workload, load=load, seed=seed, capacity=capacity, duration_s=duration_s,
                               lengths=lengths, trace_path=ctx["trace_path"]))
    hashes, group, probes = {}, {}, [speed_before]
    for policy in order:
        ctx["done"] += 1
        say(f"[{ctx['done']}/{ctx['total']}] vllm {workload} load {load:g} seed {seed} {policy} ({len(requests)} "
            f"requests, {capacity:.2f} req/s capacity, {time.perf_counter() - ctx['started']:.0f} s so far)")
        db, gw_db = folder / f"{prefix}{policy}.duckdb", folder / f"{prefix}{policy}-gateway.duckdb"
        with Gateway(ctx["vllm_url"], ctx["model"], tiers, policy, ctx["concurrency"], gw_db) as gateway:
            _drive(gateway.url, ctx["model"], workload, requests, db, seed=seed, duration_s=duration_s,
                   drain_s=ctx["drain_s"], run_id=f"govern-vllm-{workload}-{prefix}{policy}")
        measured = measure_run(db, slos, actions_db=gw_db)
        hashes[policy] = measured.pop("_hash")
        curves = measured.pop("_burndown")
        measured.pop("_speed_ms")   # an HTTP run records no engine probe: the machine's is taken after the run
        speed = T.probe_speed_ms(lengths)
        probes.append(speed)
        group[policy] = ({"load": load, "workload": workload, "seed": seed, "policy": policy, **measured,
                          "speed_probe_ms": probes[-2], "speed_probe_after_ms": speed}, curves)
    case = close_group(folder, workload, load, seed, order, requests, capacity, thresholds, slos, hashes, group,
                       probes, say)
    return case, group


def open_vllm(ctx, say) -> tuple[Any, Any]:
    """Start vLLM and the calibration gateway; (server, gateway), both to be stopped by the caller."""
    from harness.peers.vllm_server import VllmServer

    check_available()
    engine = vllm_engine()
    say("starting vLLM from .venv-vllm (a minute or more on 2 cores)")
    server = VllmServer(engine, served_model_name=engine.model).start()
    try:
        ctx.update(vllm_url=server.url, model=engine.model, concurrency=engine.max_num_seqs,
                   vllm_flags=server.flags, vllm_log=str(server.log_path))
        gateway = Gateway(server.url, engine.model, None, "fcfs", engine.max_num_seqs,
                          Path(ctx["out_dir"]) / "calibration-gateway.duckdb").__enter__()
    except BaseException:
        server.stop()
        raise
    ctx["calibration_url"] = gateway.url
    return server, gateway


def calibrate_workload(ctx, folder: Path, workload: str, lengths) -> tuple[float, dict]:
    return _calibrate(ctx, folder, workload, lengths)

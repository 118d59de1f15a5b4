"""The governor as a gateway: its own queue and concurrency limit in front of any OpenAI-compatible server.

``causalsre serve --upstream URL`` (docs/serve.md, "Gateway"). The gateway cannot see inside the upstream's
engine, so what the engine's scheduler does per step the gateway does per request, with the SAME policy
objects (:mod:`harness.engine.governor`): a waiting request is a :class:`Ticket` (the fields the policies
read off an engine sequence), ``max_concurrency`` seats stand for ``max_num_seqs``, and a seat is given when
a request starts and freed when its response ends. What it cannot do: change the upstream's batching depth
(the governor's ``batching_depth`` decisions are dropped, never applied or recorded), or preempt a request
the upstream already runs (``seat_victim`` is never asked). The HTTP app is :mod:`harness.serve.gateway_app`.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from causalsre.errors import UserError
from harness.engine.governor.config import GovernorConfig
from harness.engine.governor.governor import Governor
from harness.engine.governor.ordering import make_policy

GATEWAY_POLICIES = ("fcfs", "priority", "edf", "budget")
# vtc charges served tokens per engine step and sjf reads remaining work: neither is known per request here.
BATCHING_NOTE = "batching depth is the upstream's: the gateway's control actions never change it"


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    upstream: str                      # base URL, no trailing slash
    upstream_model: str                # the model name sent upstream; clients may send it or model_name
    model_name: str                    # what /v1/models lists (default: the upstream's name)
    policy: str = "budget"
    max_concurrency: int = 8           # requests in flight to the upstream at once
    max_queue: int = 256               # waiting requests beyond this get 429 queue_full
    governor: GovernorConfig | None = None
    api_key: str | None = None
    retry_after_s: int = 1
    max_body_bytes: int = 1 << 20
    flush_interval_s: float = 0.75
    scrape_interval_s: float = 1.0
    upstream_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if self.policy not in GATEWAY_POLICIES:
            raise UserError(f"the gateway has no policy {self.policy!r}", f"use one of {', '.join(GATEWAY_POLICIES)}")
        if self.policy in ("edf", "budget") and self.governor is None:
            raise UserError(f"policy '{self.policy}' needs tiers", "pass --governor TIERS.toml with [[governor.tiers]]")

    def to_json_dict(self) -> dict:
        return {"upstream": self.upstream, "upstream_model": self.upstream_model, "model_name": self.model_name,
                "policy": self.policy, "max_concurrency": self.max_concurrency, "max_queue": self.max_queue,
                "governor": None if self.governor is None else self.governor.to_dict(), "note": BATCHING_NOTE}


@dataclass(eq=False, slots=True)
class Ticket:
    """One request through the gateway: what the policies read off an engine ``Sequence``."""

    request_id: int
    tenant: str | None
    priority: int
    arrival_ns: int
    num_prompt_tokens: int
    target_output_tokens: int
    order: int
    go: asyncio.Future = field(default=None)
    first_token_ns: int | None = None
    last_token_ns: int | None = None
    num_output_tokens: int = 0
    started_ns: int | None = None

    @property
    def num_uncomputed_tokens(self) -> int:
        return self.num_prompt_tokens

    @property
    def remaining_work(self) -> int:
        return self.num_prompt_tokens + self.target_output_tokens


class GatewayQueue:
    """Admission, order and seats for one upstream, on the asyncio loop (no locks: one thread touches it).

    ``admit`` returns the rejection reason (the governor's ``shed_*`` or ``queue_full``) or None; the caller
    then awaits ``ticket.go`` for a seat and calls ``done`` when the response has ended, whatever its end.
    ``clock`` is the telemetry clock (ns); ``on_action`` receives each recorded governor decision.
    """

    def __init__(self, settings: GatewaySettings, clock, on_action) -> None:
        self.config = settings.governor or GovernorConfig()
        self.max_concurrency = settings.max_concurrency
        self.max_queue = settings.max_queue
        self.is_budget = settings.policy == "budget"
        self.governor = Governor(self.config, settings.max_concurrency, self.config.max_batched_tokens)
        self.policy = make_policy(settings.policy, self.config, has_tiers=settings.governor is not None,
                                  governor=self.governor)
        self.clock, self.on_action = clock, on_action
        self.waiting: list[Ticket] = []
        self.running: list[Ticket] = []
        self.num_rejected = 0
        self._order = itertools.count()

    def ticket(self, request_id: int, tenant, priority: int, arrival_ns: int, num_prompt: int,
               max_tokens: int) -> Ticket:
        return Ticket(request_id, tenant, priority, arrival_ns, num_prompt, max_tokens, next(self._order),
                      asyncio.get_running_loop().create_future())

    def admit(self, t: Ticket) -> str | None:
        now = self.clock()
        self.tick(now)
        reason = self.governor.on_arrival(t, now, is_active=self.is_budget)
        if reason is None and len(self.waiting) >= self.max_queue:
            reason = "queue_full"
        if reason is not None:
            self.num_rejected += 1
            self.governor.on_done(t, "rejected", now)   # a rejection is a bad event of its tier, as in the engine
            return reason
        self.waiting.append(t)
        self.policy.on_enter(t)
        self.dispatch(now)
        return None

    def done(self, t: Ticket, status: str) -> None:
        """The response ended (ok, error, aborted...): free its seat or queue place and count the event."""
        now = self.clock()
        if t in self.running:
            self.running.remove(t)
        elif t in self.waiting:
            self.waiting.remove(t)
        else:
            return
        self.policy.on_leave(t)
        self.governor.on_done(t, status, now)
        self.tick(now)
        self.dispatch(now)

    def tick(self, now: int) -> None:
        """The governor's control tick (it keeps its own period), its decisions handed to ``on_action``."""
        self.governor.on_step(now, self.max_concurrency, self.governor.batching.tokens, is_active=self.is_budget)
        for action in self.governor.drain_actions():
            if action["action"] != "batching_depth":   # out of a gateway's reach: not applied, so not recorded
                self.on_action(action)

    def dispatch(self, now: int) -> None:
        """Give free seats to waiting requests in the policy's order (the engine scheduler's admission loop)."""
        if not self.waiting:
            return
        # Sorted even with every seat taken: sorting is where the governor notes its leading signal (a
        # protected request queueing past half its TTFT objective), as the engine sorts on every step.
        self.policy.sort(self.waiting, self.running, now)
        started = False
        for t in list(self.waiting):
            if len(self.running) >= self.max_concurrency:
                break
            if not self.policy.may_start(t):
                continue
            self.waiting.remove(t)
            self.running.append(t)
            self.policy.started(t)
            t.started_ns = now
            started = True
            if not t.go.done():
                t.go.set_result(True)
        if started and self.waiting:   # the signal is about those still waiting, not those just seated
            self.policy.sort(self.waiting, self.running, now)

    async def heartbeat(self, period_s: float) -> None:
        """Ticks while idle, so shedding relaxes (and deferred requests start) without a new arrival."""
        while True:
            await asyncio.sleep(period_s)
            now = self.clock()
            self.tick(now)
            self.dispatch(now)

    def final_actions(self) -> list[dict]:
        """Each tier's final online counters and the length predictor's accuracy, as the harness records them."""
        now = self.clock()
        rows = [{"ts_ns": now, "action": "final_counters", "tier": row["tier"], "reason": "run_end",
                 "params_after": row} for row in self.governor.summary()]
        rows.append({"ts_ns": now, "action": "final_counters", "tier": None, "reason": "length_predictor",
                     "params_after": self.governor.predictor.accuracy()})
        return rows


def probe_upstream(url: str, model: str | None, timeout_s: float = 5.0) -> str:
    """The upstream's model name (``model``, checked against its /v1/models, or its first); UserError if the
    upstream cannot be reached or does not serve ``model``."""
    import httpx

    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise UserError(f"--upstream {url!r} is not an http(s) URL", "pass e.g. --upstream http://127.0.0.1:8000")
    try:
        response = httpx.get(f"{base}/v1/models", timeout=timeout_s)
    except (httpx.HTTPError, ValueError) as exc:
        raise UserError(f"cannot reach the upstream {base} ({type(exc).__name__})",
                        "start the upstream server first, or check --upstream") from None
    served: list[str] = []
    if response.status_code == 200:
        try:
            served = [m["id"] for m in response.json().get("data", []) if isinstance(m, dict) and "id" in m]
        except (ValueError, AttributeError, TypeError):
            served = []
    elif response.status_code not in (401, 403, 404):
        raise UserError(f"the upstream {base} answered /v1/models with HTTP {response.status_code}",
                        "check that --upstream is an OpenAI-compatible server")
    if model is None:
        if not served:
            raise UserError(f"the upstream {base} lists no model", "pass --upstream-model NAME")
        return served[0]
    if served and model not in served:
        raise UserError(f"the upstream {base} serves {served}, not {model!r}", "pass one of those as --upstream-model")
    return model


def load_governor_toml(path: str) -> GovernorConfig:
    """The ``[governor]`` section (and its ``[[governor.tiers]]``) of a TOML file, checked as the harness run
    config checks it; a harness run config with such a section works as it is."""
    from pathlib import Path

    from pydantic import ValidationError

    from causalsre.safeio import load_toml, regular_file
    from harness.config import GovernorSection

    file = Path(path)
    regular_file(file, what="governor file", missing_fix="check the path given to --governor")
    data = load_toml(file, what="governor file")  # bounded size, UTF-8, nesting (deep arrays overflowed tomllib)
    section = data.get("governor")
    if not isinstance(section, dict):
        raise UserError(f"governor file {file} has no [governor] table", "add [governor] and [[governor.tiers]]")
    try:
        checked = GovernorSection(**section)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "governor"
        raise UserError(f"bad governor file {file}: {where}: {err['msg']}", "see docs/methods/governor.md") from None
    from harness.serve.settings import check_serve_tiers

    check_serve_tiers(checked, f"bad governor file {file}")
    return GovernorConfig.from_dict(checked.model_dump())

"""The engine behind the server: one thread steps the engine; HTTP handlers talk to it through queues.

Handlers (on the asyncio loop) call :meth:`EngineLoop.submit` and :meth:`EngineLoop.abort`, which put
commands on a thread-safe queue. The engine thread drains that queue between steps, so the engine itself is
only ever touched from one thread, as in the harness. Its observer callbacks feed the telemetry writer (the
harness's, same schema), the Prometheus metrics, and each request's ``asyncio.Queue``: ``("token", id)`` per
generated token, then one ``("done", status, reason)``. Messages are handed over once per engine step, every
stream's in one ``loop.call_soon_threadsafe``: one call per token cost a wake-up of the event loop and a GIL
hand-off each (the engine thread's self-pipe write released the GIL to the woken loop, and waited to get it
back), about 0.2 ms of the engine thread's time per token in a profile (docs/benchmarks.md).

Admission has one owner, the engine thread: a handler's :meth:`EngineLoop.submit` decides nothing, and the
request is admitted (``("accepted",)``) or refused (a ``done`` message) in :meth:`EngineLoop._admit`, at one
instant, by the engine's own rules. A front door that counted requests on the handlers' side (seats + queue)
disagreed with the engine's queue, which bounds *waiting* requests: a burst landing before a step found every
request it had let in still waiting, and the engine refused the ones past its queue after the door had
admitted them.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from causalsre.errors import UserError
from harness.engine.observer import RequestRecord, StepRecord
from harness.serve.metrics import ServeMetrics
from harness.serve.settings import ServeSettings

IDLE_WAIT_S = 0.25


@dataclass(slots=True)
class Pending:
    request_id: int
    prompt_ids: list[int]
    max_tokens: int
    priority: int
    tenant: str | None
    arrival_ns: int
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    attributes: dict | None = None
    last_token_ns: int | None = None


def _hand_over(items: list[tuple[Pending, tuple]]) -> None:
    """On the event loop: one engine step's messages into their requests' queues."""
    for pending, message in items:
        pending.queue.put_nowait(message)


class EngineLoop:
    """Owns the engine, its thread, the telemetry writer (when ``db_path`` is given) and the metrics."""

    def __init__(self, settings: ServeSettings, db_path: str | None = None) -> None:
        self.settings = settings
        self.db_path = db_path
        self.metrics = ServeMetrics(settings.model_name)
        self.engine = None
        self.writer = None
        self.run_id: str | None = None
        self.error: BaseException | None = None
        self._con = None
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._pending: dict[int, Pending] = {}        # engine thread only (and before it starts)
        self._outbox: list[tuple[Pending, tuple]] = []   # engine thread only: messages until the next _flush
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    # ---- lifecycle (called from the main thread) ----------------------------------------------------------
    def start(self) -> None:
        from harness.engine import Engine, EngineConfig

        self.engine = Engine(EngineConfig(**self.settings.engine.model_dump()), observer=self,
                             governor=self.settings.governor_config())
        if self.db_path is not None:
            self._start_writer()
        self._thread = threading.Thread(target=self._run, name="serve-engine", daemon=True)
        self._thread.start()

    def _start_writer(self) -> None:
        from causalsre.telemetry import connect_writable
        from harness.hardware import hardware_info
        from harness.writer import TelemetryWriter

        s = self.settings
        self.run_id = f"serve-{s.name}-{uuid.uuid4().hex[:8]}"
        self._con = connect_writable(self.db_path)
        try:
            self.writer = TelemetryWriter(self._con, self.run_id, flush_interval_s=s.serve.flush_interval_s)
            started_at = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(
                microseconds=self.engine.now_ns() / 1e3)   # the wall-clock time of the engine's t0
            eng = s.engine.model_dump()
            row = {k: eng[k] for k in (
                "device", "dtype", "num_threads", "max_num_seqs", "max_num_batched_tokens",
                "enable_chunked_prefill", "chunk_size", "policy", "batching_mode", "num_kv_blocks", "block_size",
                "max_queue_len", "request_timeout_s")}
            row.update(kind="serve", name=s.name, started_at=started_at, seed=eng["seed"],
                       model_preset=eng["model"], arrival_process="serve", arrival_rate=None, burstiness=None,
                       hardware_json=hardware_info(eng["device"]), config_json=s.to_json_dict())
            self.writer.start(row)
            self._record_settings(eng)
        except BaseException:
            self._con.close()
            self._con, self.writer = None, None
            raise

    def _record_settings(self, eng: dict) -> None:
        """The engine factors at t0 in run_settings, as the harness records them (nothing changes later)."""
        from harness.faults import setting_value
        from harness.settings import RECORDED_ENGINE_SETTINGS

        values = {name: eng[name] for name in RECORDED_ENGINE_SETTINGS if name in eng}
        values.update(cpu_contention=0, step_delay_s=0.0)
        for name, value in values.items():
            self.writer.record_setting(name, 0, *setting_value(name, value))

    def stop(self) -> None:
        """Abort what is still in flight, stop the thread, flush and close the telemetry."""
        if self._thread is not None:
            self._commands.put(("stop",))
            self._thread.join()
            self._thread = None
        if self.writer is not None:
            try:
                self.writer.close("complete" if self.error is None else "incomplete")
            finally:
                self._con.close()
                self.writer = self._con = None

    # ---- called from handlers -----------------------------------------------------------------------------
    def now_ns(self) -> int:
        return self.engine.now_ns()   # perf_counter based: safe from any thread

    def submit(self, prompt_ids: list[int], max_tokens: int, *, priority: int, tenant: str | None,
               arrival_ns: int, attributes: dict) -> Pending:
        """Hand a request to the engine thread; its first message says whether it was admitted."""
        pending = Pending(next(self._ids), prompt_ids, max_tokens, priority, tenant, arrival_ns,
                          asyncio.get_running_loop(), attributes=attributes)
        self._commands.put(("add", pending))
        return pending

    def abort(self, request_id: int) -> None:
        self._commands.put(("abort", request_id))

    # ---- the engine thread --------------------------------------------------------------------------------
    def _run(self) -> None:
        engine = self.engine
        try:
            while True:
                block = not engine.has_unfinished()
                if not self._drain(block):
                    break
                if engine.has_unfinished():
                    engine.step()
                    self._record_actions()
                self._flush()   # before the gauges, and before blocking on an empty queue
                self._sample_gauges()
        except BaseException as exc:   # a bug, not bad input: fail what is in flight, /health turns 503
            self.error = exc
            for pending in list(self._pending.values()):
                self._deliver(pending, ("done", "error", "engine_failure"))
            self._pending.clear()
            self._flush()
            self._refuse_until_stop()
            return
        for request_id in list(self._pending):   # shutdown: what is still running is aborted, and recorded
            engine.abort(request_id)
        self._flush()
        self._sample_gauges()
        self._record_actions(final=True)

    def _record_actions(self, *, final: bool = False) -> None:
        """The governor's decisions into control_actions, as the harness records them (a tiered server only)."""
        if self.writer is None or self.settings.governor is None or not (final or self.engine.governor.actions):
            return
        from harness.runner import record_governor_actions

        record_governor_actions(self.engine, self.writer, final=final)

    def _refuse_until_stop(self) -> None:
        """After a failure: answer what handlers still submit (one may have passed their check of ``error``
        just before it was set) until stop, rather than leave them waiting for ever."""
        while (command := self._commands.get())[0] != "stop":
            if command[0] == "add":
                self._deliver(command[1], ("done", "error", "engine_failure"))
                self._flush()

    def _drain(self, block: bool) -> bool:
        """Apply queued commands; False on stop."""
        try:
            command = self._commands.get(timeout=IDLE_WAIT_S) if block else self._commands.get_nowait()
        except queue.Empty:
            return True
        while True:
            if command[0] == "stop":
                return False
            if command[0] == "add":
                self._admit(command[1])
            else:
                self.engine.abort(command[1])
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return True

    def _admit(self, p: Pending) -> None:
        """The one admission decision (engine thread): the explicit in-flight cap, then the engine's own rules."""
        if self.writer is not None:
            self.writer.register_request(p.request_id, p.arrival_ns, p.attributes)
        cap = self.settings.serve.max_in_flight
        if cap is not None and len(self._pending) >= cap:
            self._reject_at_door(p)
            return
        self._pending[p.request_id] = p   # before a step: if it fails, this request hears so too
        self._make_room()
        try:
            if self.engine.add_request(p.request_id, p.prompt_ids, p.max_tokens, priority=p.priority,
                                       tenant=p.tenant, arrival_ns=p.arrival_ns):
                self._deliver(p, ("accepted",))   # a refusal was delivered by on_request_done already
        except UserError as exc:   # the handlers check limits first; this is the engine's last word
            self._pending.pop(p.request_id, None)
            self._deliver(p, ("done", "invalid", exc.problem))

    def _make_room(self) -> None:
        """Seat waiting requests before deciding on one more, when the queue is full but seats are free.

        The engine's queue bounds requests *waiting*; free seats are filled at the next step. Without this, a
        burst of ``max_num_seqs + max_queue_len`` requests drained before a step found them all waiting and
        lost the ones past the queue, where the same burst spread over a few milliseconds was served whole.
        A step that seats nobody (KV blocks or the token budget are short) ends it: the engine then refuses.
        """
        engine, sched = self.engine, self.engine.scheduler
        while not sched.has_room() and len(sched.running) < engine.config.max_num_seqs:
            waiting = len(sched.waiting)
            engine.step()
            self._record_actions()
            self._flush()
            self._sample_gauges()
            if len(sched.waiting) >= waiting:
                return

    def _reject_at_door(self, p: Pending) -> None:
        self._deliver(p, ("done", "rejected", "queue_full"))
        if self.writer is None:
            return
        now = self.now_ns()
        self.writer.on_event(p.request_id, "rejected", now, None)
        self.writer.on_request_done(RequestRecord(
            request_id=p.request_id, prompt_tokens=len(p.prompt_ids), target_output_tokens=p.max_tokens,
            output_tokens=0, enqueue_ns=p.arrival_ns, first_scheduled_ns=None, first_token_ns=None,
            last_token_ns=None, finish_ns=now, status="rejected", finish_reason="queue_full", num_preemptions=0,
            tenant=p.tenant, priority=p.priority))

    def _sample_gauges(self) -> None:
        sched = self.engine.scheduler
        bm = sched.block_manager
        self.metrics.observe_step(len(sched.running), len(sched.waiting), bm.num_used, bm.num_blocks, 0)

    def _deliver(self, pending: Pending, message: tuple) -> None:
        """Queue ``message`` for ``pending``'s handler; it leaves at the next :meth:`_flush` (engine thread)."""
        self._outbox.append((pending, message))

    def _flush(self) -> None:
        """Hand every queued message to its event loop: one ``call_soon_threadsafe`` per loop, in order."""
        if not self._outbox:
            return
        outbox, self._outbox = self._outbox, []
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Pending, tuple]]] = {}
        for item in outbox:
            by_loop.setdefault(item[0].loop, []).append(item)
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_hand_over, items)
            except RuntimeError:
                pass   # the event loop is closed: nobody is listening any more

    # ---- EngineObserver (engine thread) -------------------------------------------------------------------
    def on_event(self, request_id: int, event_type: str, ts_ns: int, step_id: int | None) -> None:
        if self.writer is not None:
            self.writer.on_event(request_id, event_type, ts_ns, step_id)

    def on_token(self, request_id: int, token_index: int, step_id: int, ts_ns: int) -> None:
        if self.writer is not None:
            self.writer.on_token(request_id, token_index, step_id, ts_ns)
        self.metrics.generation_tokens.inc()
        pending = self._pending.get(request_id)
        seq = self.engine.sequences.get(request_id)
        if pending is None or seq is None:
            return
        if pending.last_token_ns is not None:
            self.metrics.itl.observe((ts_ns - pending.last_token_ns) / 1e9)
        pending.last_token_ns = ts_ns
        self._deliver(pending, ("token", seq.token_ids[-1]))   # the engine appended it just before this call

    def on_step(self, step: StepRecord) -> None:
        if self.writer is not None:
            self.writer.on_step(step)
        if step.num_preemptions:
            self.metrics.preemptions.inc(step.num_preemptions)

    def on_request_done(self, record: RequestRecord) -> None:
        if self.writer is not None:
            self.writer.on_request_done(record)
        pending = self._pending.pop(record.request_id, None)
        if pending is None:
            return
        self.metrics.observe_done(record, pending.arrival_ns)
        self._deliver(pending, ("done", record.status, record.finish_reason))

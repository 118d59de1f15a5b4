"""What the gateway records into ``--db``: the harness HTTP target's tables, measured at the gateway.

One ``runs`` row (kind ``serve``, arrival_process ``gateway``), then per request its events, tokens (each
timed when its SSE event passes through the gateway) and ``requests`` row with the tenant; the governor's
decisions in ``control_actions`` as ``harness.runner`` writes them (plus each tier's final counters at
shutdown); the gateway's policy in ``run_settings``; and the upstream's ``/metrics`` in ``metric_samples``
when it has one. Without ``--db`` nothing is written and every method is a no-op.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import datetime, timedelta, timezone

from harness.engine.observer import RequestRecord
from harness.serve.gateway import BATCHING_NOTE, GatewaySettings


class GatewayTelemetry:
    def __init__(self, settings: GatewaySettings, db_path: str | None) -> None:
        self.settings, self.db_path = settings, db_path
        self.t0 = time.perf_counter_ns()
        self.writer = self.buffer = self._con = None
        self.run_id: str | None = None

    def now_ns(self) -> int:
        return time.perf_counter_ns() - self.t0

    def start(self) -> None:
        if self.db_path is None:
            return
        from causalsre.telemetry import connect_writable
        from harness.faults import setting_value
        from harness.http_metrics import MetricBuffer
        from harness.writer import TelemetryWriter

        s = self.settings
        self.run_id = f"gateway-{uuid.uuid4().hex[:8]}"
        self._con = connect_writable(self.db_path)
        try:
            self.writer = TelemetryWriter(self._con, self.run_id, flush_interval_s=s.flush_interval_s)
            started_at = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(microseconds=self.now_ns() / 1e3)
            self.writer.start({
                "kind": "serve", "name": "gateway", "started_at": started_at, "policy": s.policy,
                "max_queue_len": s.max_queue, "arrival_process": "gateway", "model_preset": s.upstream_model,
                "hardware_json": {"cpu_count": os.cpu_count(), "writer_pid": os.getpid(), "target": s.upstream,
                                  "served_model": s.upstream_model, "engine": "external", "note": BATCHING_NOTE},
                "config_json": s.to_json_dict()})
            self.writer.record_setting("policy", 0, *setting_value("policy", s.policy))
            self.buffer = MetricBuffer(self._con, self.run_id)
        except BaseException:
            self._con.close()
            self._con = self.writer = self.buffer = None
            raise

    def stop(self, final_actions: list[dict]) -> None:
        if self.writer is None:
            return
        try:
            for action in final_actions:
                self.writer.record_control_action(action)
            try:
                self.buffer.close()
            finally:
                self.writer.close("complete")
        finally:
            self._con.close()
            self._con = self.writer = self.buffer = None

    # ---- per request -------------------------------------------------------------------------------
    def arrived(self, request_id: int, arrival_ns: int, attributes: dict) -> None:
        if self.writer is not None:
            self.writer.register_request(request_id, arrival_ns, attributes)
            self.writer.on_event(request_id, "queued", arrival_ns, None)

    def event(self, request_id: int, kind: str, ts_ns: int) -> None:
        if self.writer is not None:
            self.writer.on_event(request_id, kind, ts_ns, None)

    def tokens(self, request_id: int, first_index: int, count: int, ts_ns: int) -> None:
        if self.writer is not None:
            for index in range(first_index, first_index + count):
                self.writer.on_token(request_id, index, None, ts_ns)

    def action(self, action: dict) -> None:
        if self.writer is not None:
            self.writer.record_control_action(action)

    def done(self, t, status: str, reason: str) -> RequestRecord:
        """The request's row (``t`` is its :class:`~harness.serve.gateway.Ticket`); returned for the metrics."""
        now = self.now_ns()
        record = RequestRecord(
            request_id=t.request_id, prompt_tokens=t.num_prompt_tokens, target_output_tokens=t.target_output_tokens,
            output_tokens=t.num_output_tokens, enqueue_ns=t.arrival_ns, first_scheduled_ns=t.started_ns,
            first_token_ns=t.first_token_ns, last_token_ns=t.last_token_ns, finish_ns=now, status=status,
            finish_reason=reason, num_preemptions=0, tenant=t.tenant, priority=t.priority)
        if self.writer is not None:
            event = {"ok": "finished", "rejected": "rejected", "timeout": "timeout", "aborted": "aborted"}
            self.writer.on_event(t.request_id, event.get(status, "finished"), now, None)
            self.writer.on_request_done(record)
        return record

    # ---- the upstream's /metrics -------------------------------------------------------------------
    async def scrape_loop(self, client) -> None:
        """Scrape the upstream's /metrics into metric_samples; stop for good if it has none (404)."""
        if self.buffer is None:
            return
        import httpx

        url = f"{self.settings.upstream}/metrics"
        while True:
            try:
                response = await client.get(url, timeout=5.0)
                if response.status_code == 404:
                    return
                if response.status_code == 200:
                    self.buffer.add_scrape(self.now_ns(), response.text, url)
                    await asyncio.to_thread(self.buffer.flush)
                else:
                    self.buffer.num_failed_scrapes += 1
            except (httpx.HTTPError, ValueError):
                self.buffer.num_failed_scrapes += 1
            await asyncio.sleep(self.settings.scrape_interval_s)

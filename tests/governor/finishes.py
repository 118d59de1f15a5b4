"""An engine observer that keeps each finished request's (id, status, finish_reason), for the engine-level
governor tests (push-out, doomed drops)."""

from __future__ import annotations

from harness.engine.observer import EngineObserver


class FinishRecorder(EngineObserver):
    def __init__(self):
        self.done = []

    def on_request_done(self, record):
        self.done.append((record.request_id, record.status, record.finish_reason))

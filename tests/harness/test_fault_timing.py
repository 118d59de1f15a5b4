"""The fault injector on the modelled clock: advancing the clock to the next due instant fires that point.

An idle engine on the modelled clock jumps straight to ``next_due_ns()``; if that instant is a nanosecond before
the breakpoint (``int()`` truncation of ``16.24 * 1e9``), ``poll()`` fires nothing and the run loop spins at the
same instant for ever (a generated suite hung so, 2026-12-02).
"""

from __future__ import annotations

import pytest

from harness.faults import FaultInjector

from .conftest import tiny_config


class _IdleModelledEngine:
    """What the injector touches of an engine whose modelled clock jumps to each instant it is asked for."""

    def __init__(self) -> None:
        self.ns, self.delays = 0, []

    def now_ns(self) -> int:
        return self.ns

    def advance_to(self, ns: int) -> bool:
        self.ns = max(self.ns, int(ns))
        return True

    def set_step_delay(self, seconds: float) -> None:
        self.delays.append((self.ns, seconds))


# 1.07, 2.14 and 16.24 times 1e9 are each a fraction above the integer that int() gives; 1.5 is exact.
@pytest.mark.parametrize("start_s, end_s", [(1.07, 2.14), (16.24, 17.5), (1.5, 2.5)])
def test_each_breakpoint_fires_when_an_idle_clock_jumps_to_it(start_s, end_s):
    cfg = tiny_config(duration_s=20.0, faults=[{"kind": "step_delay", "at_s": start_s, "end_s": end_s,
                                                 "delay_s": 0.03}])
    engine = _IdleModelledEngine()
    injector = FaultInjector(cfg, 6.0, engine, writer=None, contention=None)
    injector.start()
    for _ in range(10):  # what the run loop does while nothing arrives: jump to the next due instant, poll
        if not injector.pending:
            break
        engine.advance_to(injector.next_due_ns())
        injector.poll(engine.now_ns())
    assert not injector.pending, f"stuck at {engine.ns} ns with {injector.pending} pending"
    # the delay starts and ends at its breakpoints (within the nanosecond of rounding up), in order
    assert [(round(ns / 1e9, 6), s) for ns, s in engine.delays] == [(start_s, 0.03), (end_s, 0.0)]

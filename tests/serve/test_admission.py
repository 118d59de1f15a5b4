"""One owner of admission: a burst that lands before the engine's first step is admitted by the engine's rules
alone, and every request let in is served (the door counted seats + queue, the engine's queue refused past 4)."""

from __future__ import annotations

import asyncio
import threading
from functools import partial

import httpx

from causalsre.telemetry import connect_readonly
from harness.serve.loop import EngineLoop
from tests.serve.conftest import live_server

HOLD_TIMEOUT_S = 60   # a bound for a shared machine if a request never arrives, not a performance figure


class HeldLoop(EngineLoop):
    """The engine thread starts only once ``expected`` requests are submitted: the whole burst is in its command
    queue before its first step, deterministically (no sleeps)."""

    def __init__(self, settings, db, *, expected: int) -> None:
        super().__init__(settings, db)
        self.expected, self.submitted = expected, 0
        self.all_in = threading.Event()

    def submit(self, *args, **kwargs):
        pending = super().submit(*args, **kwargs)
        self.submitted += 1   # handlers run on the one asyncio thread
        if self.submitted == self.expected:
            self.all_in.set()
        return pending

    def _run(self) -> None:
        if not self.all_in.wait(HOLD_TIMEOUT_S):
            raise AssertionError("the burst never arrived")
        super()._run()


async def _burst(url: str, model: str, num: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=num, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        async def one(i: int):
            body = {"model": model, "prompt": f"burst {i} " * 4, "max_tokens": 3, "stream": i % 2 == 0}
            r = await client.post(f"{url}/v1/completions", json=body)
            await r.aread()
            return r
        return await asyncio.gather(*(one(i) for i in range(num)))


def _held(num: int, db=None, **settings_kw):
    return live_server(db=db, loop_factory=partial(HeldLoop, expected=num), **settings_kw)


def test_a_burst_of_seats_plus_queue_before_the_first_step_is_served_whole(tmp_path):
    db = tmp_path / "serve.duckdb"
    with _held(6, db=str(db), max_queue=4, engine_overrides={"max_num_seqs": 2}) as srv:
        responses = asyncio.run(_burst(srv.url, srv.model, 6))
        run_id = srv.loop.run_id
    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses if r.status_code != 200]
    con = connect_readonly(db)
    statuses = con.execute("SELECT status, count(*) FROM requests WHERE run_id = ? GROUP BY 1", [run_id]).fetchall()
    peak = con.execute("SELECT max(num_running), max(num_waiting) FROM steps WHERE run_id = ?", [run_id]).fetchone()
    con.close()
    assert statuses == [("ok", 6)]
    assert peak[0] <= 2 and peak[1] <= 4   # seated first, so the engine's bounds still hold


def test_past_seats_plus_queue_the_engine_refuses_and_only_then():
    with _held(9, max_queue=4, engine_overrides={"max_num_seqs": 2}) as srv:
        codes = [r.status_code for r in asyncio.run(_burst(srv.url, srv.model, 9))]
    assert sorted(codes) == [200] * 6 + [429] * 3, codes


def test_an_explicit_in_flight_cap_is_decided_by_the_engine_thread_too():
    with _held(5, max_queue=4, engine_overrides={"max_num_seqs": 2}, overrides={"max_in_flight": 3}) as srv:
        responses = asyncio.run(_burst(srv.url, srv.model, 5))
    codes = [r.status_code for r in responses]
    assert sorted(codes) == [200] * 3 + [429] * 2, codes
    assert all(r.json()["error"]["code"] == "queue_full" for r in responses if r.status_code == 429)


class FailingLoop(EngineLoop):
    """An engine whose first step raises: a bug in the engine, as the server sees one."""

    def start(self) -> None:
        super().start()

        def broken_step():
            raise RuntimeError("injected engine bug")
        self.engine.step = broken_step


def test_an_engine_failure_answers_what_is_in_flight_and_what_comes_after():
    with live_server(loop_factory=FailingLoop) as srv:
        first = httpx.post(f"{srv.url}/v1/completions", json={"prompt": "hi", "max_tokens": 2}, timeout=60)
        assert first.status_code == 500 and first.json()["error"]["code"] == "engine_failure"
        assert httpx.get(f"{srv.url}/health").status_code == 503
        later = httpx.post(f"{srv.url}/v1/completions", json={"prompt": "hi", "max_tokens": 2}, timeout=60)
        assert later.status_code == 503
        # A handler that passed its check of loop.error just before the failure still gets an answer.

        async def late_submit():
            pending = srv.loop.submit([1, 2], 2, priority=0, tenant=None, arrival_ns=0, attributes={})
            return await asyncio.wait_for(pending.queue.get(), HOLD_TIMEOUT_S)
        assert asyncio.run(late_submit()) == ("done", "error", "engine_failure")

"""The engine thread hands tokens to the event loop once per step, and token events keep the wire format."""

from __future__ import annotations

import asyncio
import json

import pytest

from harness.serve import load_serve_settings
from harness.serve import protocol as P
from harness.serve.loop import EngineLoop
from harness.serve.text import token_word

WAIT_S = 60   # a bound for a shared machine if a message never arrives, not a performance figure


class CountingLoop(EngineLoop):
    """Counts the engine's steps (it is the engine's observer)."""

    num_steps = 0

    def on_step(self, step) -> None:
        self.num_steps += 1
        super().on_step(step)


def test_one_wake_up_of_the_event_loop_per_step_carries_every_streams_tokens_in_order():
    engine_loop = CountingLoop(load_serve_settings(), None)
    engine_loop.start()
    wake_ups = []
    lengths = [8, 6, 7]

    async def serve_three():
        aloop = asyncio.get_running_loop()
        threadsafe = aloop.call_soon_threadsafe

        def counted(*args, **kwargs):   # called from the engine thread only
            wake_ups.append(args[0])
            return threadsafe(*args, **kwargs)
        aloop.call_soon_threadsafe = counted
        pendings = [engine_loop.submit([1, 5 + i, 9], n, priority=0, tenant=None, arrival_ns=engine_loop.now_ns(),
                                       attributes={}) for i, n in enumerate(lengths)]

        async def messages(pending):
            out = []
            while not out or out[-1][0] != "done":
                out.append(await asyncio.wait_for(pending.queue.get(), WAIT_S))
            return out
        return await asyncio.gather(*(messages(p) for p in pendings))

    try:
        streams = asyncio.run(serve_three())
    finally:
        engine_loop.stop()
    for messages, n in zip(streams, lengths):
        assert messages[0] == ("accepted",) and messages[-1] == ("done", "ok", "length")
        assert [m[0] for m in messages[1:-1]] == ["token"] * n
    # 3 * (1 + n + 1) = 27 messages; one call per message woke the loop 27 times in about 8 steps
    assert len(wake_ups) <= engine_loop.num_steps + 1 < sum(lengths) + 2 * len(lengths)


@pytest.mark.parametrize("kind", ["completion", "chat"])
@pytest.mark.parametrize("text", [token_word(17), token_word(0), "", ' "quoted" \\ back', "\u00e9\u4e2d\n\x00"])
def test_a_pre_encoded_token_event_is_the_bytes_of_the_whole_chunk(kind, text):
    rid = P.new_id(kind)
    event = P.TokenEvent(P.chunk(kind, rid, "causalsre-tiny", 1764700000, text=""), kind)
    whole = P.chunk(kind, rid, "causalsre-tiny", 1764700000, text=text)
    assert event.encode(text) == f"data: {json.dumps(whole, separators=(',', ':'))}\n\n".encode()
    assert json.loads(event.encode(text)[len(b"data: "):]) == whole

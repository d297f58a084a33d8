"""The shared watchdog ticker (llc/ticker.py): one task ticks every registered call."""

from __future__ import annotations

import trio

from llc.log import CALL_FIELDS, bind_call
from llc.ticker import Ticker


async def test_every_registered_tick_runs_each_pass_in_its_own_context_and_a_failure_stops_none() -> None:
    ticker = Ticker(0.01)
    seen: dict[str, list[object]] = {"a": [], "b": []}

    def broken(now: float) -> None:
        raise RuntimeError("a bug in one call's tick")

    async def call(name: str) -> None:
        bind_call(call_sid=f"CA{name}")  # the log fields the tick must run under
        with ticker.watching(lambda now: seen[name].append((CALL_FIELDS.get() or {}).get("call_sid"))):
            await trio.sleep(0.2)

    async with trio.open_nursery() as nursery:
        await nursery.start(ticker.run)
        assert ticker.running
        with ticker.watching(broken):
            async with trio.open_nursery() as calls:
                calls.start_soon(call, "a")
                calls.start_soon(call, "b")
        assert ticker.watched == 0  # each call's tick left with it
        nursery.cancel_scope.cancel()
    assert not ticker.running
    assert len(seen["a"]) >= 5 and set(seen["a"]) == {"CAa"}
    assert len(seen["b"]) >= 5 and set(seen["b"]) == {"CAb"}

"""One Trio task ticks every call's watchdog: a few wake-ups per period for all calls, not one per call.

Why: each call's watchdog slept five times a second, and a Trio timeout is a cancel scope whose
expiry raises and catches ``Cancelled``. Measured with 50 calls and no audio at all, that was
about 1 ms of CPU per call-second, a tenth of what the relay costs with audio flowing. The
ticks themselves are synchronous (``CallBridge._tick``: liveness verdicts, a ping written
without a wait, a progress write started in the call's nursery), so one task can run them all.

Ownership is kept: a call registers its tick for as long as its watchdog task runs
(``watching``), so when the call's nursery exits its tick is gone. Each tick runs in the
registering task's context (its log fields); an exception in one is logged and ends nothing
else.
"""

from __future__ import annotations

import contextvars
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import trio

from llc.log import get_logger

log = get_logger("ticker")


# Calls are ticked in this many groups, one group per 1/SLOTS of the period: what a tick starts
# (a progress write, a ping) is spread over the period instead of coming for every call at once.
SLOTS = 10


class Ticker:
    """Calls every registered tick every ``every_s``; ``run`` it in the server's nursery."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.running = False
        self._slots: list[dict[int, tuple[Callable[[float], None], contextvars.Context]]] = [{} for _ in range(SLOTS)]
        self._keys = itertools.count()

    @property
    def watched(self) -> int:
        return sum(len(slot) for slot in self._slots)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.running = True
        task_status.started()
        try:
            for n in itertools.count():
                await trio.sleep(self.every_s / SLOTS)
                now = trio.current_time()
                ticks = self._slots[n % SLOTS]
                for key, (tick, context) in list(ticks.items()):
                    if key not in ticks:  # an earlier tick of this pass ended that call
                        continue
                    try:
                        context.run(tick, now)
                    except Exception:  # noqa: BLE001  a bug in one call's tick: said, and no other call's affected
                        context.run(log.exception, "a call's watchdog tick failed")
        finally:
            self.running = False

    @contextmanager
    def watching(self, tick: Callable[[float], None]) -> Iterator[None]:
        """Tick ``tick(now)`` with every pass, in the caller's context, until the block exits."""
        key = next(self._keys)
        slot = self._slots[key % SLOTS]
        slot[key] = (tick, contextvars.copy_context())
        try:
            yield
        finally:
            del slot[key]


async def watch(tick: Callable[[float], None], ticker: Ticker | None, every_s: float) -> None:
    """Run ``tick(now)`` every ``every_s`` until cancelled: by the server's ticker when it runs,
    else (a call run on its own) by this task itself."""
    if ticker is not None and ticker.running:
        with ticker.watching(tick):
            await trio.sleep_forever()
    while True:
        await trio.sleep(every_s)
        tick(trio.current_time())

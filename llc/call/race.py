"""A call's first OpenAI session: one bounded wait, the warm session and a cold connect raced.

The warm session (prewarm, pre-accept) wins if it is usable within ``warm_wait_s``; after that
a cold connect starts beside it and the first one ready wins, the other is closed. Nothing
usable within ``wait_s``: ``run`` returns None and ``failure`` says why, so the caller hears
the apology (or a person) instead of dead air. Never two waits in a row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from llc.log import get_logger
from llc.openai.connect import OpenAIConnectError
from llc.openai.prewarm import WarmSession
from llc.ws.transport import Transport

log = get_logger("call")

CLOSE_TIMEOUT_S = 0.5  # a close handshake is a courtesy: never let it hold a call for long

Claim = Callable[[], Awaitable[WarmSession | None]]
Won = tuple[Transport, WarmSession | None]


async def close_quietly(transport: Transport, warm: WarmSession | None = None) -> None:
    """Close a session nobody will use (bounded, shielded), and hand a warm one back."""
    with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
        await transport.close()
    if warm is not None:
        warm.release()


class FirstSession:
    def __init__(self, connect: Callable[[], Awaitable[Transport]], *, wait_s: float, warm_wait_s: float) -> None:
        self.connect, self.wait_s, self.warm_wait_s = connect, wait_s, warm_wait_s
        self.won: Won | None = None
        self.failures: list[str] = []
        self._warm_failed = trio.Event()
        self._race: trio.CancelScope | None = None

    @property
    def failure(self) -> str:
        return "; ".join(self.failures) or f"no OpenAI session within OPENAI_CONNECT_TIMEOUT_S={self.wait_s:g} s"

    async def run(self, claim: Claim | None) -> Won | None:
        """The winner (the caller owns it: it must close it), or None when nothing was usable in time."""
        try:
            async with trio.open_nursery() as race:
                self._race = race.cancel_scope
                race.cancel_scope.deadline = trio.current_time() + self.wait_s
                if claim is not None:
                    race.start_soon(self._warm_side, claim)
                race.start_soon(self._cold_side, claim is not None)
        except BaseException:
            # The call ended while the loser was still closing: the winner is nobody's yet.
            if self.won is not None:
                await close_quietly(*self.won)
                self.won = None
            raise
        return self.won

    async def _keep(self, transport: Transport, warm: WarmSession | None) -> None:
        if self.won is None:  # no checkpoint since the await that produced it: the first one wins
            self.won = (transport, warm)
            assert self._race is not None
            self._race.cancel()
            return
        await close_quietly(transport, warm)

    async def _warm_side(self, claim: Claim) -> None:
        session = await claim()
        if session is None:
            self.failures.append("the warm session was not usable")
            self._warm_failed.set()
            return
        await self._keep(session.transport, session)

    async def _cold_side(self, beside_warm: bool) -> None:
        if beside_warm:
            with trio.move_on_after(self.warm_wait_s):
                await self._warm_failed.wait()
            log.info("OpenAI session: connecting cold%s", "" if self._warm_failed.is_set() else
                     f" beside the warm session (not usable within LLC_WARM_WAIT_S={self.warm_wait_s:g} s)")
        else:
            log.info("OpenAI session: connecting cold", extra={"path": "cold"})
        try:
            transport = await self.connect()
        except OpenAIConnectError as exc:
            self.failures.append(str(exc))
            return
        await self._keep(transport, None)

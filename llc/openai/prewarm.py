"""The warm-session registry: OpenAI sessions opened, configured and primed before the call exists.

Outbound prewarm and inbound pre-accept start a session here while the phone rings; the
media stream claims it by the key its ticket names (``llc.core.ticket``: the ticket is the one
token in the TwiML; this key never leaves the server). Ownership follows the architecture:
the registry's nursery (inside the server's) owns every entry, each entry runs under its own
deadline, and a claimed session is handed over to the call (the registry stops reading it
and never touches it again). Whatever happens (ready too late, OpenAI drops it, the callee
is busy, the server stops) the socket is closed and the entry gone; nothing here outlives
its call or its timeout.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

import trio

from llc import metrics
from llc.config import Settings
from llc.core.dialect import dialect
from llc.core.session import SessionSpec
from llc.core.warm import WarmCore, WarmPhase
from llc.log import get_logger
from llc.openai.connect import OpenAIConnectError, connect_openai
from llc.runner import ActionRunner
from llc.ws.transport import Transport, TransportClosed

log = get_logger("prewarm")

# A ready session waits this long for its call to be answered: Twilio rings for at most 60 s
# by default; the rest is slack for the answer, AMD and the stream's start to arrive.
HOLD_S = 75.0
CLOSE_TIMEOUT_S = 0.5
HANDOVER_TIMEOUT_S = 1.0
RECENT_ENDED_CALLS = 1000

Connector = Callable[[Settings], Awaitable[Transport]]


class EntryState(Enum):
    WARMING = "warming"  # connecting, configuring, priming (within LLC_PREWARM_TIMEOUT_S)
    READY = "ready"  # usable: waiting for its stream (within its hold)
    CLAIMED = "claimed"  # handed to its call, which owns the socket from now on
    FAILED = "failed"  # closed; ``reason`` says why


@dataclass(eq=False)  # identity: entries live in a set
class _Entry:
    key: str
    purpose: str  # "prewarm" | "pre-accept": becomes the call record's path
    core: WarmCore
    created: float
    ready_by: float
    call_sid: str | None = None
    state: EntryState = EntryState.WARMING
    reason: str = ""
    transport: Transport | None = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    watch_scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    settled: trio.Event = field(default_factory=trio.Event)  # ready or failed
    watch_done: trio.Event = field(default_factory=trio.Event)  # the registry stopped reading
    released: trio.Event = field(default_factory=trio.Event)  # the call is done with the socket
    timings: dict[str, float] = field(default_factory=dict)  # seconds after creation
    hold_s: float = HOLD_S  # a ready session waits at most this long for its stream
    fault: bool = False  # OpenAI failed it (not a call that ended or a server stopping)
    runner: ActionRunner = field(init=False)  # carries out its core's actions (the calls' runner, no call)

    def __post_init__(self) -> None:
        self.runner = ActionRunner(log, log_fields=lambda: {"call_sid": self.call_sid})


@dataclass
class WarmSession:
    """A claimed session, handed over: the call owns the transport and must call ``release``."""

    transport: Transport
    path: str
    timings: dict[str, float]
    _released: trio.Event
    priming_id: str | None = None  # a priming response still running ("?": not named yet)

    def release(self) -> None:
        """The call closed the socket; the registry may drop its reader task now."""
        self._released.set()


class WarmRegistry:
    def __init__(self, settings: Settings, *, connector: Connector = connect_openai, hold_s: float = HOLD_S) -> None:
        self.settings = settings
        self.connector = connector
        self.hold_s = hold_s
        self._entries: dict[str, _Entry] = {}  # claimable sessions by key
        self._by_call: dict[str, str] = {}
        self._ended: deque[str] = deque(maxlen=RECENT_ENDED_CALLS)  # calls that ended before bind
        self._live: set[_Entry] = set()  # entries whose task runs (claimed ones included)
        self._nursery: trio.Nursery | None = None
        self.stats = {"started": 0, "ready": 0, "claimed": 0, "failed": 0, "discarded": 0}

    @property
    def live(self) -> int:
        """Warm sessions with a task running (waiting, warming, or handed over and in a call)."""
        return len(self._live)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own every entry until cancelled (server shutdown): then every warm socket is closed."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None

    # ---- the API the routes use ---------------------------------------------------------

    def start(self, spec: SessionSpec, *, purpose: str = "prewarm", call_sid: str | None = None,
              prime: bool = True, hold_s: float | None = None) -> str:
        """Begin warming a session for ``spec``; returns its key (for the call's ticket).

        ``hold_s``: how long a ready session waits for its stream (default: a ring's worth;
        pre-accept passes a few seconds, as its stream follows the webhook at once).
        """
        if self._nursery is None:
            raise RuntimeError("the warm-session registry is not running (serve() starts it)")
        key = secrets.token_urlsafe(12)
        now = trio.current_time()
        entry = _Entry(key, purpose, WarmCore(dialect(self.settings.openai_api_shape), spec, prime=prime), now,
                       now + self.settings.prewarm_timeout_s)
        entry.hold_s = self.hold_s if hold_s is None else hold_s
        entry.scope.deadline = now + self.settings.prewarm_timeout_s + entry.hold_s
        self._entries[key] = entry
        self._live.add(entry)
        self.stats["started"] += 1
        if call_sid:
            self.bind(key, call_sid)
        self._nursery.start_soon(self._run_entry, entry, name=f"warm-session {purpose}")
        return key

    def bind(self, key: str, call_sid: str) -> None:
        """The call now has a CallSid: Twilio's status callbacks for it can close the session."""
        entry = self._entries.get(key)
        if entry is None:
            return
        entry.call_sid = call_sid
        self._by_call[call_sid] = key
        if call_sid in self._ended:
            self.discard(key, "the call ended before it was bound")

    def discard(self, key: str, reason: str) -> None:
        """Close an unclaimed session now (never one already handed to a call)."""
        entry = self._entries.pop(key, None)
        if entry is None or entry.state is EntryState.CLAIMED:
            return
        entry.reason = entry.reason or reason
        self.stats["discarded"] += 1
        entry.scope.cancel()

    def call_ended(self, call_sid: str, status: str) -> None:
        """Twilio says the call is over or never answered: its warm session goes at once."""
        key = self._by_call.pop(call_sid, None)
        if key is None:
            self._ended.append(call_sid)  # the status beat calls.create's answer: bind() closes it
            return
        self.discard(key, f"call {status}")

    async def claim(self, key: str) -> WarmSession | None:
        """Hand the session named by an admitted ticket to its stream; None means connect cold."""
        session = await self._claim(key)
        (metrics.prewarm_hit if session is not None else metrics.prewarm_fallback)()
        return session

    async def _claim(self, key: str) -> WarmSession | None:
        """The claim itself: once per session (the ticket already tied it to this call).

        A session still warming is waited for until its own deadline (the prewarm timeout),
        then dropped.
        """
        entry = self._entries.pop(key, None)  # one-time, from here on
        if entry is None:
            log.info("the call's warm session failed or timed out before its stream; connecting cold",
                 extra={"path": "cold"})
            return None
        handed = False
        try:
            session = await self._hand_over(entry)
            handed = session is not None
            return session
        finally:
            if not handed:  # not ready, dropped, or the call went away while waiting
                if entry.state is EntryState.CLAIMED:
                    entry.state = EntryState.FAILED
                entry.scope.cancel()

    async def _hand_over(self, entry: _Entry) -> WarmSession | None:
        if not entry.settled.is_set():
            # The call bounds this wait (LLC_WARM_WAIT_S, then a cold connect races it).
            log.info("stream started before the warm session was usable; waiting for it")
            with trio.move_on_at(entry.ready_by):
                await entry.settled.wait()
        if entry.state is not EntryState.READY:
            entry.reason = entry.reason or f"not ready within LLC_PREWARM_TIMEOUT_S={self.settings.prewarm_timeout_s:g} s"
            log.warning("warm session unusable (%s); connecting cold", entry.reason, extra={"path": "cold"})
            return None
        entry.state = EntryState.CLAIMED
        entry.scope.deadline = math.inf  # from now on the call decides how long it lives
        entry.watch_scope.cancel()
        with trio.move_on_after(HANDOVER_TIMEOUT_S):
            await entry.watch_done.wait()
        if entry.state is not EntryState.CLAIMED or entry.transport is None:
            log.warning("warm session dropped during handover (%s); connecting cold", entry.reason, extra={"path": "cold"})
            return None
        self.stats["claimed"] += 1
        entry.timings["claimed"] = trio.current_time() - entry.created
        return WarmSession(entry.transport, entry.purpose, dict(entry.timings), entry.released,
                           entry.core.priming_in_flight)

    # ---- one entry ----------------------------------------------------------------------

    async def _run_entry(self, entry: _Entry) -> None:
        try:
            with entry.scope:
                try:
                    await self._warm(entry)
                    if entry.state is EntryState.READY:
                        await self._watch(entry)
                    if entry.state is EntryState.CLAIMED:
                        await entry.released.wait()
                finally:
                    if entry.state is not EntryState.CLAIMED and entry.transport is not None:
                        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
                            await entry.transport.close()
        finally:
            if entry.state is not EntryState.CLAIMED:
                entry.state = EntryState.FAILED
                entry.reason = entry.reason or ("timed out waiting for the call" if entry.scope.cancelled_caught
                                                else "server shutting down")
                self.stats["failed"] += 1
            entry.settled.set()
            entry.watch_done.set()
            self._entries.pop(entry.key, None)
            if entry.call_sid and self._by_call.get(entry.call_sid) == entry.key:
                del self._by_call[entry.call_sid]
            self._live.discard(entry)
            # A failed warm session costs the call latency: worth a warning, not a line among many.
            log.log(logging.WARNING if entry.fault else logging.INFO,
                    "warm session closed", extra={
                "purpose": entry.purpose, "outcome": entry.state.value, "reason": entry.reason,
                "call_sid": entry.call_sid, "seconds": round(trio.current_time() - entry.created, 3)})

    def _fail(self, entry: _Entry, reason: str) -> None:
        entry.state, entry.reason, entry.fault = EntryState.FAILED, entry.reason or reason, True
        entry.settled.set()

    async def _warm(self, entry: _Entry) -> None:
        """Connect, configure, prime; bounded by the prewarm timeout."""
        core = entry.core
        with trio.move_on_at(entry.ready_by) as timer:
            try:
                entry.transport = await self.connector(self.settings)
            except OpenAIConnectError as exc:
                return self._fail(entry, str(exc))
            entry.runner.openai = entry.transport
            entry.timings["connected"] = trio.current_time() - entry.created
            await entry.runner.execute(core.on_open())
            while not core.settled:
                try:
                    text = await entry.transport.receive_text()
                except TransportClosed as exc:
                    return self._fail(entry, f"OpenAI closed the warm session (code {exc.code}) {exc.reason}".strip())
                await entry.runner.execute(core.on_text(text))
        if timer.cancelled_caught:
            return self._fail(entry, f"not ready within LLC_PREWARM_TIMEOUT_S={self.settings.prewarm_timeout_s:g} s")
        if core.phase is WarmPhase.FAILED:
            return self._fail(entry, core.reason)
        entry.timings["ready"] = trio.current_time() - entry.created
        entry.scope.deadline = min(entry.scope.deadline, trio.current_time() + entry.hold_s)  # held from ready
        entry.state = EntryState.READY
        self.stats["ready"] += 1
        entry.settled.set()
        log.info("warm session ready", extra={"purpose": entry.purpose, "call_sid": entry.call_sid,
                                              **{f"{k}_ms": round(v * 1000, 1) for k, v in entry.timings.items()}})

    async def _watch(self, entry: _Entry) -> None:
        """Keep reading while the phone rings, to notice OpenAI dropping the session."""
        assert entry.transport is not None
        try:
            with entry.watch_scope:
                while True:
                    try:
                        text = await entry.transport.receive_text()
                    except TransportClosed as exc:
                        entry.state, entry.fault = EntryState.FAILED, True
                        entry.reason = f"dropped by OpenAI while ringing (code {exc.code})"
                        log.warning("warm session %s; the call will connect cold", entry.reason)
                        return
                    await entry.runner.execute(entry.core.on_text(text))
        finally:
            entry.watch_done.set()


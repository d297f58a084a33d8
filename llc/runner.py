"""The one runner of a core's actions: a call's (``CallCore``) and a warm session's (``WarmCore``).

Every action type has exactly one branch (``_step``), which says both how to carry it out now
and, when it cannot go without a wait (a socket still finishing an earlier write, the apology
clip), what to await for it. ``Action`` is a closed union and the match ends in
``assert_never``: a new action type is a type error here, never a silent skip.

Why two ways in, and no second copy of the branches. The media hub hands a call its messages
in the hub's own task, where nothing may wait: ``submit_nowait`` runs what can go at once and
queues the rest (in order, with anything queued before) for one drain task of the call, and
says False so the hub hands the leg back to its reader; the reader reads on only once the
queue ran (``settle``), so a stalled peer slows the other leg as a blocked send did. A task of
the call (a reader, a tool, a timer) calls ``execute``, which awaits what must wait, in place.
Whether an action waits is a property of which way it came in, not of the action.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Protocol, assert_never

import trio

from llc.core.actions import (
    Action,
    ConnectOpenAI,
    EndCall,
    Log,
    PlayApology,
    ReconnectOpenAI,
    RunTool,
    Timer,
    TimerKey,
    ToOpenAI,
    ToTwilio,
)
from llc.core.record import EndReason
from llc.ws.transport import Transport, TransportClosed

TWILIO_SEND_FAILED = "the Twilio media socket closed while sending"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

Wait = Callable[[], Awaitable[None]]


class CallEffects(Protocol):
    """What only a call can do for its actions (a warm session has no caller, no tools, no timers)."""

    def connect_openai(self) -> None: ...

    def end(self, reason: EndReason, detail: str = "") -> None: ...

    def twilio_send_failed(self) -> None:
        """A write to the caller's socket failed (closed or dead): the call ends, its reason read first."""

    def run_tool(self, action: RunTool) -> None: ...

    def start_timer(self, key: TimerKey, delay_s: float) -> None: ...

    async def play_apology(self, mark: str) -> None: ...


class AudioTap(Protocol):
    """Where the agent's frames are copied as they go to the caller (the call's audio recorder)."""

    def agent(self, texts: Sequence[str | bytes]) -> None: ...


class NotACall(RuntimeError):
    """A warm session's core asked for something only a call can do: a bug in that core."""


def _twilio_run(actions: Sequence[Action], i: int) -> tuple[list[str | bytes], int]:
    """The Twilio frames from ``i`` on that go out in one write (audio + its mark, a clear + ...),
    and the index after them."""
    texts: list[str | bytes] = []
    n = len(actions)
    while i < n:
        action = actions[i]
        if not isinstance(action, ToTwilio):
            break
        texts.append(action.text)
        i += 1
    return texts, i


class ActionRunner:
    def __init__(self, log: logging.Logger, *, twilio: Transport | None = None, effects: CallEffects | None = None,
                 recorder: AudioTap | None = None, log_fields: Callable[[], Mapping[str, object]] | None = None) -> None:
        self.log = log
        self.twilio = twilio
        self.openai: Transport | None = None  # the session's socket, once open (it changes on a reconnect)
        self._effects = effects
        self._recorder = recorder  # the agent's leg of the call audio, when recorded
        self._log_fields = log_fields  # extra log fields (a warm session has no call context)
        self.nursery: trio.Nursery | None = None  # where the drain task runs (the call's nursery)
        self._wait: Wait | None = None  # what the action _step could not carry out now awaits
        self._deferred: deque[Sequence[Action]] = deque()
        self._draining = False
        self._drained = trio.Event()

    def _call(self) -> CallEffects:
        if self._effects is None:
            raise NotACall("only a call can carry out this action")
        return self._effects

    # ---- one action -------------------------------------------------------------------

    def _step(self, actions: Sequence[Action], i: int) -> int:
        """Carry out ``actions[i]`` if it needs no wait; returns the index after what it took
        (consecutive Twilio frames go as one write). When it could not go now, nothing of it has
        been done: the index comes back negated and ``_wait`` holds what to await for it instead.

        (Class patterns without captures, and an int back rather than a tuple: this runs for
        nearly every message of every call.)
        """
        action = actions[i]
        match action:
            case ToOpenAI():
                ws = self.openai
                if ws is not None:
                    try:
                        if not ws.send_nowait((action.text,)):
                            return self._blocked(i + 1, partial(self._send_openai, action.text))
                    except TransportClosed:
                        pass  # the OpenAI reader sees the close and recovers or ends the call
            case ToTwilio():
                texts, after = _twilio_run(actions, i)
                twilio = self.twilio
                if twilio is None:
                    raise NotACall("a warm session has no Twilio leg")
                try:
                    if not twilio.send_nowait(texts):
                        return self._blocked(after, partial(self._send_twilio, texts))
                except TransportClosed:
                    self._call().twilio_send_failed()
                if self._recorder is not None:  # the agent's leg (a clear included)
                    self._recorder.agent(texts)
                return after
            case ConnectOpenAI():
                self._call().connect_openai()
            case EndCall():
                self._call().end(action.reason, action.detail)
            case RunTool():
                self._call().run_tool(action)
            case Timer():
                self._call().start_timer(action.key, action.delay_s)
            case Log():
                fields = action.fields if self._log_fields is None else {**action.fields, **self._log_fields()}
                self.log.log(_LEVELS[action.level], action.msg, extra=fields)
            case ReconnectOpenAI():
                pass  # the OpenAI task reconnects when its reader returns
            case PlayApology():
                return self._blocked(i + 1, partial(self._call().play_apology, action.mark))
            case _:
                assert_never(action)
        return i + 1

    def _blocked(self, after: int, wait: Wait) -> int:
        self._wait = wait
        return -after

    async def _send_twilio(self, texts: list[str | bytes]) -> None:
        assert self.twilio is not None
        if self._recorder is not None:
            self._recorder.agent(texts)
        try:
            await self.twilio.send_texts(texts)
        except TransportClosed:
            self._call().twilio_send_failed()

    async def _send_openai(self, text: str) -> None:
        if self.openai is not None:
            try:
                await self.openai.send_text(text)
            except TransportClosed:
                pass  # as in _step

    # ---- from a task: wait where needed -------------------------------------------------

    async def execute(self, actions: Sequence[Action]) -> None:
        """Carry out actions in order, awaiting what must wait (called from any of the call's tasks)."""
        i, n = 0, len(actions)
        while i < n:
            i = self._step(actions, i)
            if i < 0:
                i, wait, self._wait = -i, self._wait, None
                assert wait is not None
                await wait()
        await self._flush()

    async def _flush(self) -> None:
        """What a send_nowait left in a socket's backlog (the kernel took part of a frame)."""
        if self.twilio is not None and self.twilio.backlogged:
            try:
                await self.twilio.flush()
            except TransportClosed:
                self._call().twilio_send_failed()
        if self.openai is not None and self.openai.backlogged:
            try:
                await self.openai.flush()
            except TransportClosed:
                pass

    async def execute_in_order(self, actions: Sequence[Action]) -> None:
        """A reader's actions: behind any the hub's path left waiting, so no frame overtakes
        another (and the reader reads on only once they ran: a stalled peer holds it, as a blocked
        send did)."""
        if self._draining:
            self._defer(actions)
            await self.settle()
        else:
            await self.execute(actions)

    # ---- from the hub: never wait -----------------------------------------------------

    def submit_nowait(self, actions: Sequence[Action]) -> bool:
        """What needs no waiting runs now; the rest (and everything after it) waits in order.

        False when something waits: the hub then hands the leg back to its reader, which reads
        on only once the waiting actions ran.
        """
        if self._draining:
            self._defer(actions)
            return False
        i, n = 0, len(actions)
        step = self._step
        while i < n:
            after = step(actions, i)
            if after < 0:
                self._wait = None  # the drain task runs it again from the start of what waits
                self._defer(actions[i:])
                return False
            i = after
        if (self.twilio is not None and self.twilio.backlogged) or (self.openai is not None and self.openai.backlogged):
            self._defer(())  # nothing left to run, but the backlog still has to be flushed
            return False
        return True

    def flush_later(self) -> None:
        """A write left a backlog outside any task (a ping): a task of the call sends the rest."""
        self._defer(())

    def _defer(self, actions: Sequence[Action]) -> None:
        self._deferred.append(actions)
        if not self._draining and self.nursery is not None:
            self._draining = True
            self._drained = trio.Event()
            self.nursery.start_soon(self._drain)

    async def _drain(self) -> None:
        try:
            while self._deferred:
                await self.execute(self._deferred.popleft())
        finally:
            self._draining = False
            self._drained.set()

    async def settle(self) -> None:
        """Until the actions the hub's path left waiting have run."""
        if self._draining:
            await self._drained.wait()

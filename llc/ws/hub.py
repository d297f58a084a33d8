"""One Trio task reads every parked media socket: a wake-up per batch of ready sockets, not per message.

Why: on the relay's path each message used to wake its leg's reader task once, and Trio's
scheduler and epoll re-arm were the largest share of the server's CPU (docs/performance.md).
The hub keeps its own epoll set, level-triggered and registered once per park, and waits on
that set's one fd in Trio; when it wakes it reads every ready socket and hands each whole
message to its call's handler synchronously: no task switch, no re-arm per message.

Structure is kept: a leg's reader task still owns its socket. It *parks* the socket here
(``park``) and sleeps; the hub hands it back (the task wakes) whenever anything needs a task:
a control frame or the end of the stream, a failure, the socket being closed or aborted, the
hub stopping. A call's cancellation unparks its legs at once (the abort hook below), so when a
call's nursery exits nothing of it is left in the hub. Handlers run in the parking task's
context (its log fields), and an exception in one is raised in that task, ending its call only.
"""

from __future__ import annotations

import contextvars
import select
from typing import Callable

import outcome
import trio

from llc.log import get_logger
from llc.ws.fastws import FastWebSocket
from llc.ws.transport import Transport

log = get_logger("hub")

MAX_EVENTS = 256  # per epoll_wait; more ready sockets are reported on the next pass (level-triggered)


class _Parked:
    __slots__ = ("ws", "fd", "on_message", "task", "context", "active")

    def __init__(self, ws: FastWebSocket, on_message: Callable[[bytes], bool]) -> None:
        self.ws = ws
        self.fd = ws._sock.fileno()
        self.on_message = on_message
        self.task = trio.lowlevel.current_task()
        self.context = contextvars.copy_context()  # the parking task's log fields (call_sid, stream_sid)
        self.active = True


class Hub:
    """Reads parked sockets for their tasks; ``run`` it in the server's nursery."""

    def __init__(self) -> None:
        self._ep: select.epoll | None = None
        self._parked: dict[int, _Parked] = {}

    @property
    def running(self) -> bool:
        return self._ep is not None

    @property
    def parked(self) -> int:
        """Sockets parked now (for /debug and tests)."""
        return len(self._parked)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        ep = self._ep = select.epoll()
        parked = self._parked
        task_status.started()
        try:
            while True:
                await trio.lowlevel.wait_readable(ep.fileno())
                for fd, _ in ep.poll(0, MAX_EVENTS):
                    p = parked.get(fd)
                    if p is not None:
                        p.context.run(self._serve, p)
        finally:
            for p in list(parked.values()):  # the server is stopping: every reader takes its socket back
                self._hand_back(p)
            self._ep = None
            ep.close()

    async def park(self, ws: Transport, on_message: Callable[[bytes], bool]) -> bool:
        """Let the hub read ``ws`` and call ``on_message`` per message until a task is needed.

        ``on_message`` returns False when the message's actions could not all run at once (they
        wait for a task): the socket is handed back, and its reader reads on when they have run.

        Returns True when handed back, False at once when the socket cannot be parked (not the
        fast engine, something already read for the task, the hub not running): read it in the
        task then.
        Raises what ``on_message`` raised.
        """
        ep = self._ep
        if ep is None or not isinstance(ws, FastWebSocket) or not ws.parkable():
            return False
        p = _Parked(ws, on_message)
        try:
            ep.register(p.fd, select.EPOLLIN)
        except FileExistsError:  # a closed socket's number, reused: the kernel kept no entry for the old one
            ep.modify(p.fd, select.EPOLLIN)
        self._parked[p.fd] = p
        ws.hub_release = lambda: self._hand_back(p)

        def abort(_: object) -> trio.lowlevel.Abort:
            self._release(p)  # cancelled (the call is ending): out of the epoll set now
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        return True

    def _serve(self, p: _Parked) -> None:
        ws = p.ws
        try:
            if not ws.read_nowait():
                self._hand_back(p)
                return
            frames, on_message = ws._frames, p.on_message
            while frames and p.active:
                if type(frames[0]) is not bytes:  # a control frame or a fragment: the task's
                    self._hand_back(p)
                    return
                if not on_message(frames.popleft()):  # type: ignore[arg-type]
                    self._hand_back(p)  # its actions wait for a task: so does the rest of this socket
                    return
        except Exception as exc:  # a bug in a handler: raised in its own task, ends its call only
            self._hand_back(p, outcome.Error(exc))

    def _release(self, p: _Parked) -> bool:
        if not p.active:
            return False
        p.active = False
        p.ws.hub_release = None
        if self._parked.get(p.fd) is p:
            del self._parked[p.fd]
            if self._ep is not None:
                try:
                    self._ep.unregister(p.fd)
                except OSError:  # already closed by someone else: the kernel dropped it from the set
                    pass
        return True

    def _hand_back(self, p: _Parked, result: outcome.Outcome[None] | None = None) -> None:
        if self._release(p):
            trio.lowlevel.reschedule(p.task, result or outcome.Value(None))
        elif isinstance(result, outcome.Error):  # its call is ending already: say it, do not lose it
            log.error("a media handler failed while its call was ending", exc_info=result.error)

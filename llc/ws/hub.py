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

The hub sees a socket only through its public seam (``Parkable``): a socket being closed or
aborted tells the hub first (``Parking.release``), so its fd leaves the epoll set before it is
closed.
"""

from __future__ import annotations

import contextvars
import select
import typing
from collections.abc import Callable

import outcome
import trio

from llc.log import get_logger
from llc.ws.transport import Transport

log = get_logger("hub")

MAX_EVENTS = 256  # per epoll_wait; more ready sockets are reported on the next pass (level-triggered)
# Messages one socket may hand its call per pass; the rest wait for the next pass, after every
# other task has had its turn. A call sends a frame every 20 ms, so this binds only a peer that
# sends faster than real time (a forged key-press flood): one 64 KiB read of it held ~650
# messages, and handling them in one go held /healthz and every other call for up to 0.4 s
# on a loaded box.
BUDGET = 32


class Parking(typing.Protocol):
    """What a parked socket is given: released before its fd is closed (an epoll set must never hold a closed fd)."""

    def release(self) -> None:
        """Take the socket out of the epoll set and wake its parked task (the fd is still open)."""


@typing.runtime_checkable
class Parkable(typing.Protocol):
    """What the hub needs of a socket (the fast engine has it; a Transport without it is read by its task)."""

    def fileno(self) -> int: ...

    def parkable(self) -> bool:
        """Open, with nothing read or owed that its task must handle."""

    def read_nowait(self) -> bool:
        """One non-blocking read; False when its task must take over."""

    def message_nowait(self) -> bytes | None:
        """The next whole data message; None when none is queued or the next needs the task."""

    def attach_parking(self, parking: Parking) -> None:
        """Call ``parking.release()`` before the fd closes."""

    def detach_parking(self) -> None: ...


class _Parked:
    """One parked socket: its ``Parking``."""

    __slots__ = ("active", "context", "fd", "hub", "on_message", "task", "ws")

    def __init__(self, hub: Hub, ws: Parkable, on_message: Callable[[bytes], bool]) -> None:
        self.hub = hub
        self.ws = ws
        self.fd = ws.fileno()
        self.on_message = on_message
        self.task = trio.lowlevel.current_task()
        self.context = contextvars.copy_context()  # the parking task's log fields (call_sid, stream_sid)
        self.active = True

    def release(self) -> None:
        self.hub._hand_back(self)


class Hub:
    """Reads parked sockets for their tasks; ``run`` it in the server's nursery."""

    def __init__(self) -> None:
        self._ep: select.epoll | None = None
        self._parked: dict[int, _Parked] = {}
        self._backlog: list[_Parked] = []  # sockets whose budget ran out with messages still read

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
                if self._backlog:
                    await trio.lowlevel.checkpoint()  # the others' turn first; then the rest, and what arrived
                else:
                    await trio.lowlevel.wait_readable(ep.fileno())
                backlog, self._backlog = self._backlog, []
                for queued in backlog:
                    if queued.active:
                        queued.context.run(self._serve, queued, False)
                for fd, _ in ep.poll(0, MAX_EVENTS):
                    p = parked.get(fd)
                    # Served already this pass (its slice of the queue) or gone: next pass. One
                    # with messages still queued reads no more until they are handled.
                    if p is not None and p not in backlog:
                        p.context.run(self._serve, p, p.ws.parkable())
        finally:
            self._backlog = []
            for p in list(parked.values()):  # the server is stopping: every reader takes its socket back
                self._hand_back(p)
            self._ep = None
            ep.close()

    async def park(self, ws: Transport, on_message: Callable[[bytes], bool]) -> bool:
        """Let the hub read ``ws`` and call ``on_message`` per message until a task is needed.

        ``on_message`` returns False when the message's actions could not all run at once (they
        wait for a task): the socket is handed back, and its reader reads on when they have run.

        Returns True when handed back, False at once when the socket cannot be parked (not
        ``Parkable``, something already read for the task, the hub not running): read it in the
        task then.
        Raises what ``on_message`` raised.
        """
        ep = self._ep
        if ep is None or not isinstance(ws, Parkable) or not ws.parkable():
            return False
        p = _Parked(self, ws, on_message)
        try:
            ep.register(p.fd, select.EPOLLIN)
        except FileExistsError:  # a closed socket's number, reused: the kernel kept no entry for the old one
            ep.modify(p.fd, select.EPOLLIN)
        self._parked[p.fd] = p
        ws.attach_parking(p)

        def abort(_: object) -> trio.lowlevel.Abort:
            self._release(p)  # cancelled (the call is ending): out of the epoll set now
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        return True

    def _serve(self, p: _Parked, read: bool) -> None:
        ws = p.ws
        try:
            if not read or ws.read_nowait():
                on_message = p.on_message
                for _ in range(BUDGET):
                    if not p.active:  # a handler closed or aborted the socket: released already
                        break
                    msg = ws.message_nowait()
                    if msg is None:
                        if ws.parkable():
                            return  # every message handled: it stays parked
                        break  # a control frame or a fragment: the task's
                    if not on_message(msg):
                        break  # its actions wait for a task: so does the rest of this socket
                else:
                    if p.active:
                        self._backlog.append(p)  # budget spent: the rest on the next pass
                    return
            self._hand_back(p)
        except Exception as exc:  # noqa: BLE001  # a bug in a handler: raised in its own task, ends its call only
            self._hand_back(p, outcome.Error(exc))

    def _release(self, p: _Parked) -> bool:
        if not p.active:
            return False
        p.active = False
        p.ws.detach_parking()
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

"""Call records that survive: bounded writes, a pending file when the database cannot take one, replay.

A slow or failing database delays nothing but the write itself: each write is bounded. A final
record the database cannot take goes to the pending file (never dropped). The file is replayed
at start-up (for a bounded time), then by one background task of the server: woken by the next
good write of a final record, and every RETRY_S while records wait. Never from a call's own
clean-up: a long file would hold that call's end for as long as the replay takes. Then the
records a killed run of this instance left open are closed as ``server_died`` (a pending final
record is a better ending: it goes first, and wins over the sweep if it lands after it).
"""

from __future__ import annotations

import trio

from llc.core.record import CallRecord
from llc.log import get_logger
from llc.store.database import Store
from llc.store.pending import PendingRecords

log = get_logger("records")

RECORD_WRITE_TIMEOUT_S = 5.0
RETRY_S = 30.0  # how often the background task tries the pending file while it holds records


class DurableRecords:
    def __init__(self, store: Store, pending: PendingRecords, write_timeout_s: float = RECORD_WRITE_TIMEOUT_S) -> None:
        self.store, self.pending, self.write_timeout_s = store, pending, write_timeout_s
        self._wake = trio.Event()  # a final record was stored: the database takes writes again

    async def _write(self, record: CallRecord, seq: int) -> str:
        """One bounded write of a record; "" when it was stored, else why not (in plain words)."""
        with trio.move_on_after(self.write_timeout_s):
            try:
                await self.store.save_call(record, seq)
            except Exception as exc:  # noqa: BLE001  any failure of the store is said, and the record kept
                return str(exc) or type(exc).__name__
            return ""
        return f"the write took over {self.write_timeout_s:g} s"

    async def save_progress(self, record: CallRecord, seq: int) -> None:
        """A call in progress, written as it stands (bounded; the final write keeps what fails)."""
        if failure := await self._write(record, seq):
            log.warning("could not write the record of a call in progress (%s); its final record is "
                        "still written when it ends", failure, extra={"call_sid": record.call_sid})

    async def save_final(self, record: CallRecord, seq: int) -> None:
        """A finished call: stored, or kept in the pending file until the database is back."""
        if not record.call_sid:
            return  # the stream never started: nothing to file it under
        if failure := await self._write(record, seq):
            await self.pending.add({**record.as_dict(), "seq": seq})
            log.error("could not store the call record (%s); kept in %s and written when the database is back",
                      failure, self.pending.path, extra={"call_sid": record.call_sid})
        elif self.pending.has_pending():
            self._wake.set()  # the background task writes them, not this call's clean-up

    async def replay_pending(self, bound_s: float | None = None) -> None:
        """Write records that waited in the pending file, each batch's progress kept; at start-up
        (bounded: the rest is the background task's) and from that task."""
        with trio.move_on_after(self.write_timeout_s * 4 if bound_s is None else bound_s):
            written, left = await self.pending.replay(self.store.save_call_data)
            if written or left:
                log.info("pending call records replayed", extra={"written": written, "still_pending": left,
                                                                  "file": str(self.pending.path)})

    async def drain_pending(self, *, retry_s: float = RETRY_S,
                            task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The one task that replays the pending file while the server runs (in its nursery)."""
        task_status.started()
        while True:
            with trio.move_on_after(retry_s):
                await self._wake.wait()
            self._wake = trio.Event()
            if self.pending.has_pending():
                await self.replay_pending(bound_s=float("inf"))

    async def close_left_open(self) -> None:
        """At start-up, after the pending replay: close the records a killed run of this instance left open."""
        try:
            closed = await self.store.close_orphans()
        except Exception as exc:  # noqa: BLE001  the database is down: the next start closes them
            log.warning("could not close the calls a previous run left open (%s); the next start will", exc)
            return
        for sid in closed:
            log.warning("call left open by a previous run of this server (killed?): closed as server_died with "
                        "what was saved; `llc-phone calls show` has its transcript", extra={"call_sid": sid})

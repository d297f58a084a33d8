"""Call records that survive: bounded writes, a pending file when the database cannot take one, replay.

A slow or failing database delays nothing but the write itself: each write is bounded. A final
record the database cannot take goes to the pending file (never dropped) and is replayed after
the next good write and at start-up; then the records a killed run of this instance left open
are closed as ``server_died`` (a pending final record is a better ending, so it goes first).
"""

from __future__ import annotations

import trio

from llc.core.record import CallRecord
from llc.log import get_logger
from llc.store.database import Store
from llc.store.pending import PendingRecords

log = get_logger("records")

RECORD_WRITE_TIMEOUT_S = 5.0


class DurableRecords:
    def __init__(self, store: Store, pending: PendingRecords, write_timeout_s: float = RECORD_WRITE_TIMEOUT_S) -> None:
        self.store, self.pending, self.write_timeout_s = store, pending, write_timeout_s

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
            await self.replay_pending()

    async def replay_pending(self) -> None:
        """Write records that waited in the pending file; at start-up and after a good write."""
        with trio.move_on_after(self.write_timeout_s * 4):
            written, left = await self.pending.replay(self.store.save_call_data)
            if written or left:
                log.info("pending call records replayed", extra={"written": written, "still_pending": left,
                                                                  "file": str(self.pending.path)})

    async def close_left_open(self) -> None:
        """At start-up, after the pending replay: close the records a killed run of this instance left open."""
        try:
            closed = await self.store.close_orphans()
        except Exception as exc:  # noqa: BLE001  the database is down: the next start closes them
            log.warning("could not close the calls a previous run left open (%s); the next start will", exc)
            return
        for sid in closed:
            log.warning("call left open by a previous run of this server (killed?): closed as server_died with "
                        "what was saved; `llc calls show` has its transcript", extra={"call_sid": sid})

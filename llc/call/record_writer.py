"""A call's record on its way to the store: when the call is admitted, whenever it has something
new, and once when it ends.

So a ``kill -9`` loses nothing already said: the record is written open at admission, then
again each time a turn, a barge-in, a tool call, a key press, a route or a reconnect is added
(checked on the watchdog's tick, one write at a time, as a task of the call, so the call never
waits for the database). The sink bounds every write and keeps a final record it could not
store (``llc.store.durable``). A refused stream writes nothing: it must not touch the real
call's record.
"""

from __future__ import annotations

from typing import Protocol

import trio

from llc.core.record import CallRecord


class RecordSink(Protocol):
    """``seq``: the write's place among this call's writes (1, 2, ...): the store keeps the row of
    the highest, whatever order the writes land in and whatever the wall clock says."""

    async def save_progress(self, record: CallRecord, seq: int) -> None:
        """A call in progress, as it stands (bounded; a failure is said, not raised)."""

    async def save_final(self, record: CallRecord, seq: int) -> None:
        """A finished call (bounded; never lost: kept elsewhere when the store cannot take it)."""


def progress_key(rec: CallRecord) -> tuple[int, ...]:
    """What a progress write is worth doing for: anything added to the record since the last."""
    return (len(rec.transcript), len(rec.turns), len(rec.barge_ins), len(rec.tool_calls), rec.dtmf_total,
            rec.routes_total, len(rec.reconnects), sum(t.output is not None for t in rec.tool_calls),
            rec.barge_ins_without_words)


class RecordWriter:
    def __init__(self, sink: RecordSink | None) -> None:
        self._sink = sink  # None: nothing is stored (a call run on its own, in tests)
        self.admitted = False
        self._written: tuple[int, ...] | None = None  # what the last progress write held (None: none yet)
        self._saving = False
        self._seq = 0  # writes started for this call

    def admit(self, record: CallRecord, nursery: trio.Nursery) -> None:
        """The call was admitted: its record is written now, open, then as it grows."""
        self.admitted = True
        self.tick(record, nursery)

    def tick(self, record: CallRecord, nursery: trio.Nursery | None) -> None:
        """Start a progress write in ``nursery`` when the record has something new and none runs."""
        if self._sink is None or not self.admitted or self._saving or nursery is None:
            return
        key = progress_key(record)
        if key != self._written:
            self._written, self._saving = key, True
            self._seq += 1
            nursery.start_soon(self._save_progress, record, self._seq)

    async def _save_progress(self, record: CallRecord, seq: int) -> None:
        assert self._sink is not None
        try:
            await self._sink.save_progress(record, seq)
        finally:
            self._saving = False

    async def final_only(self, record: CallRecord) -> None:
        """The one record of a call that ended before it was admitted, when it must still be on
        record (a SIP call OpenAI would not accept: the caller rang, and the record says why)."""
        self.admitted = True
        await self.final(record)

    async def final(self, record: CallRecord) -> None:
        """The finished record (an admitted call's only)."""
        if self._sink is not None and self.admitted:
            self._seq += 1  # after every progress write, even one still under way
            await self._sink.save_final(record, self._seq)

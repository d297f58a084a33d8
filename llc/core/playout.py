"""What the caller has actually heard, per assistant audio item: a playout clock checked by marks. Pure.

Twilio plays what it was sent in real time, from when it arrived. So the audio sent but not yet
played is a backlog that ends at ``play_end`` (each delta starts at the later of now and the
previous end), and what the caller heard of the current item is what was sent minus that
backlog. The audio reaches Twilio a one-way trip after it leaves, and so does a ``clear``:
the two cancel, so the cut on barge-in is the sent audio minus the backlog at the moment the
clear leaves. What Twilio tells us (a mark echo, ``stop``) left it a one-way trip before it
arrived, so what had played when it left is the clock a whole round trip earlier
(``heard_before``). The round trip is learned from the marks: an echo arrives that long after
the clock said its audio ended; the shortest of the last few is kept, so one echo held up on
the way back does not shift every later figure. Either way the result is never less than the
marks confirmed, never more than was sent.

Marks still matter, just not for precision: a ``mark`` follows the forwarded audio once at
least ``mark_every_ms`` of it has gone out unmarked, and once more at the end of each item.
Their echoes calibrate the way out, bound the cut from below, and tell when the caller has
heard an item to its end (``speaking``, hang-up after the goodbye). Why 500 ms and not 100:
a mark echo is one Twilio message in ten at 100 ms with 20 ms frames, and the clock already
gives the cut to a few ms (marks alone left it 40-80 ms short). ``mark_every_ms = 0`` marks
every delta.

After a ``clear`` Twilio returns every pending mark at once: those marks mean "discarded",
not "played", so they are remembered and ignored when they come back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

BYTES_PER_MS = 8  # PCMU at 8 kHz
MARK_EVERY_MS = 500  # the default of [turn_policy] mark_every_ms
ROUND_TRIPS_KEPT = 8  # mark round trips trip_s is the shortest of


@dataclass
class ItemAudio:
    item_id: str
    received_bytes: int = 0  # from OpenAI deltas (= forwarded to Twilio)
    marked_bytes: int = 0  # audio a mark has been sent after
    played_ms: int = 0  # confirmed by marks

    @property
    def sent_ms(self) -> int:
        return self.received_bytes // BYTES_PER_MS


@dataclass(frozen=True)
class TruncatePoint:
    """Where to cut an interrupted item: ``audio_end_ms`` 0 means delete it instead."""

    item_id: str
    audio_end_ms: int


class Playout:
    def __init__(self, mark_every_ms: int = MARK_EVERY_MS, first_mark: int = 1) -> None:
        self.items: dict[str, ItemAudio] = {}
        self.current: ItemAudio | None = None  # the item whose audio went out last
        # (mark name, item, ms at mark, when the clock says the audio before it has played)
        self._pending: deque[tuple[str, ItemAudio, int, float]] = deque()
        self._pending_names: set[str] = set()  # the names in _pending: an unknown echo is told in O(1)
        self.play_end: float | None = None  # when the audio sent so far will have played (None: no clock)
        self.trip_s = 0.0  # to Twilio and back: the shortest recent mark round trip beyond the clock
        self._trips: deque[float] = deque(maxlen=ROUND_TRIPS_KEPT)
        self._discarded: set[str] = set()
        self._seq = first_mark - 1
        self._mark_every_bytes = max(mark_every_ms, 0) * BYTES_PER_MS

    def on_audio(self, item_id: str, n_bytes: int, now: float | None = None) -> tuple[str | None, str | None]:
        """Audio of ``item_id`` is being forwarded: the marks to send (before it, after it).

        Before: the tail of the previous item, when another item starts. After: when at least
        ``mark_every_ms`` of this item has gone out since its last mark. ``now`` runs the clock.
        """
        before = None
        current = self.current
        if current is None or current.item_id != item_id:
            before = self.flush()  # before the clock moves: the tail ends where the old audio did
            item = self.items.get(item_id)
            if item is None:
                item = self.items[item_id] = ItemAudio(item_id)
            self.current = current = item
        if now is not None:
            end = self.play_end
            self.play_end = (now if end is None or end < now else end) + n_bytes / (BYTES_PER_MS * 1000)
        current.received_bytes += n_bytes
        if current.received_bytes - current.marked_bytes >= self._mark_every_bytes:
            return before, self._mark(current)
        return before, None

    def flush(self) -> str | None:
        """The current item's audio ended: a mark for its unmarked tail, if it has one."""
        item = self.current
        if item is None or item.marked_bytes == item.received_bytes:
            return None
        return self._mark(item)

    def _mark(self, item: ItemAudio) -> str:
        item.marked_bytes = item.received_bytes
        self._seq += 1
        name = f"m{self._seq}"
        self._pending.append((name, item, item.sent_ms, self.play_end or 0.0))
        self._pending_names.add(name)
        return name

    def successor(self, mark_every_ms: int) -> Playout:
        """A fresh Playout for a new session: mark names keep counting (a late echo of the old
        audio never confirms the new), and the clock carries on, because Twilio plays what is
        still queued of the old session's audio before any of the new."""
        nxt = Playout(mark_every_ms, first_mark=self._seq + 1)
        nxt.play_end, nxt.trip_s = self.play_end, self.trip_s
        nxt._trips.extend(self._trips)
        return nxt

    def on_mark(self, name: str, now: float | None = None) -> bool:
        """Twilio echoed ``name``; returns False for marks unknown or discarded by a clear."""
        if name in self._discarded:
            self._discarded.discard(name)
            return False
        if name not in self._pending_names:
            return False  # not ours (e.g. a lost session's, or a forged flood): it confirms nothing
        # Marks come back in order; anything still ahead of this one was played as well.
        while self._pending:
            pending, item, ms, played_at = self._pending.popleft()
            self._pending_names.discard(pending)
            item.played_ms = max(item.played_ms, ms)
            if pending == name:
                if now is not None and self.play_end is not None:
                    self._trips.append(max(0.0, now - played_at))
                    self.trip_s = min(self._trips)
                return True
        return False

    @property
    def speaking(self) -> bool:
        """True while the caller still has agent audio queued or playing at Twilio."""
        item = self.current
        return bool(self._pending) or (item is not None and item.marked_bytes != item.received_bytes)

    @property
    def unplayed_ms(self) -> int:
        item = self.current
        return 0 if item is None else item.sent_ms - item.played_ms

    def heard_ms(self, at: float | None = None) -> int:
        """What the caller has heard of the current item when a message sent at ``at`` reaches
        Twilio (by the clock, when ``at`` is given): never less than the marks confirmed, never
        more than was sent."""
        item = self.current
        if item is None:
            return 0
        heard = item.played_ms
        if at is not None and self.play_end is not None:
            backlog_ms = max(0.0, self.play_end - at) * 1000
            heard = max(heard, round(item.sent_ms - backlog_ms))
        return min(heard, item.sent_ms)

    def heard_before(self, seen: float | None) -> int:
        """What the caller had heard of the current item when Twilio sent the message that
        arrived at ``seen`` (a ``stop``, the last frame before it went quiet)."""
        return self.heard_ms(None if seen is None else seen - self.trip_s)

    def on_clear(self, now: float | None = None) -> TruncatePoint | None:
        """We sent ``clear``: pending marks are void, nothing more of the current item will play.
        Returns where to truncate it.

        The cut is what the caller heard (``heard_ms``), never more than what was received
        (bytes / 8): the service rejects a truncate beyond the audio it has. The item keeps that
        as played, for the record, and stops being current.
        """
        self._discarded.update(self._pending_names)
        self._pending.clear()
        self._pending_names.clear()
        item = self.current
        heard = self.heard_ms(now)
        if self.play_end is not None and now is not None:
            self.play_end = now  # Twilio's buffer is empty now
        self.current = None
        if item is None:
            return None
        item.marked_bytes = item.received_bytes  # the unmarked tail was cleared too
        item.played_ms = max(item.played_ms, heard)
        if heard >= item.sent_ms:
            return None  # nothing unheard: the item stands as it is
        return TruncatePoint(item.item_id, heard)

    def played_all(self, item_id: str) -> bool:
        """Has the caller heard every ms of ``item_id`` that was sent?"""
        item = self.items.get(item_id)
        return item is None or item.played_ms >= item.sent_ms

"""What the caller has actually heard, per assistant audio item, from Twilio marks. Pure.

Every audio delta forwarded to Twilio is followed by a ``mark``. Twilio echoes a mark when
the audio before it has been played, so the last echoed mark of an item tells how many ms
the caller heard. One mark per delta costs one ~70-byte frame per ~100 ms of audio and gives
truncation the precision of the service's own chunking, with no re-chunking on the hot path.

After a ``clear`` Twilio returns every pending mark at once: those marks mean "discarded",
not "played", so they are remembered and ignored when they come back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

BYTES_PER_MS = 8  # PCMU at 8 kHz


@dataclass
class ItemAudio:
    item_id: str
    received_bytes: int = 0  # from OpenAI deltas (= forwarded to Twilio)
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
    def __init__(self) -> None:
        self.items: dict[str, ItemAudio] = {}
        self.current: ItemAudio | None = None  # the item whose audio went out last
        self._pending: deque[tuple[str, ItemAudio, int]] = deque()  # (mark name, item, ms at mark)
        self._discarded: set[str] = set()
        self._seq = 0

    def on_audio(self, item_id: str, n_bytes: int) -> str:
        """Audio of ``item_id`` was forwarded; returns the name of the mark to send after it."""
        item = self.items.get(item_id)
        if item is None:
            item = self.items[item_id] = ItemAudio(item_id)
        self.current = item
        item.received_bytes += n_bytes
        self._seq += 1
        name = f"m{self._seq}"
        self._pending.append((name, item, item.sent_ms))
        return name

    def on_mark(self, name: str) -> bool:
        """Twilio echoed ``name``; returns False for marks unknown or discarded by a clear."""
        if name in self._discarded:
            self._discarded.discard(name)
            return False
        # Marks come back in order; anything still ahead of this one was played as well.
        while self._pending:
            pending, item, ms = self._pending.popleft()
            item.played_ms = max(item.played_ms, ms)
            if pending == name:
                return True
        return False

    @property
    def speaking(self) -> bool:
        """True while the caller still has agent audio queued or playing at Twilio."""
        return bool(self._pending)

    @property
    def unplayed_ms(self) -> int:
        item = self.current
        return 0 if item is None else item.sent_ms - item.played_ms

    def on_clear(self) -> TruncatePoint | None:
        """We sent ``clear``: pending marks are void. Returns where to truncate the current item.

        The cut is what the caller heard by marks, never more than what was received
        (bytes / 8): the service rejects a truncate beyond the audio it has.
        """
        self._discarded.update(name for name, _, _ in self._pending)
        self._pending.clear()
        item = self.current
        if item is None or item.played_ms >= item.sent_ms:
            return None  # nothing unheard: the item stands as it is
        return TruncatePoint(item.item_id, min(item.played_ms, item.sent_ms))

    def played_all(self, item_id: str) -> bool:
        """Has the caller heard every ms of ``item_id`` that was sent?"""
        item = self.items.get(item_id)
        return item is None or item.played_ms >= item.sent_ms

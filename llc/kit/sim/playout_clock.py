"""The caller's side of Twilio's outbound audio buffer, as pure state (no I/O, no clock).

Twilio buffers the audio a server sends, plays it to the caller in real time and
reports ``mark`` frames back only once the audio queued before them has played; a
``clear`` drops whatever is still buffered and returns every pending mark at once.
The fake caller drives this with its 20 ms ticker; keeping it pure lets the mark
and barge-in arithmetic be tested without sockets or sleeps.
"""

from __future__ import annotations

from collections import deque

from llc.kit.sim.audio import BYTES_PER_MS, FRAME_BYTES


class Playout:
    """Audio the agent sent that has not yet been played, plus the marks queued in it.

    Positions are absolute byte offsets into everything ever *played or dropped*, so
    a mark's position stays valid however the buffer is consumed or cleared.
    """

    def __init__(self, frame_bytes: int = FRAME_BYTES) -> None:
        self.frame_bytes = frame_bytes
        self.frame_ms = frame_bytes // BYTES_PER_MS
        self._buf = bytearray()
        self._base = 0  # absolute position of self._buf[0]
        self._marks: deque[tuple[int, str]] = deque()
        self.played_bytes = 0  # audio actually played to the caller
        self.dropped_bytes = 0  # audio discarded by clear
        self.idle_ms = 0  # consecutive playout silence (ticks that played nothing)

    @property
    def buffered(self) -> int:
        """Bytes waiting to be played."""
        return len(self._buf)

    @property
    def position(self) -> int:
        """Absolute position of the next byte to play (everything before it was played or dropped)."""
        return self._base

    @property
    def end(self) -> int:
        """Absolute position just past the last buffered byte."""
        return self._base + len(self._buf)

    @property
    def pending_marks(self) -> list[str]:
        return [name for _, name in self._marks]

    def append(self, audio: bytes) -> None:
        """Queue agent audio behind whatever is already buffered."""
        self._buf += audio

    def add_mark(self, name: str) -> None:
        """Queue a mark at the current end of the buffer (due once everything before it played)."""
        self._marks.append((self.end, name))

    def tick(self) -> tuple[int, list[str]]:
        """Play one frame's worth of audio; return (bytes played, marks now due).

        A mark queued with nothing buffered is due at the next tick, as with Twilio
        (it echoes such marks right away).
        """
        n = min(self.frame_bytes, len(self._buf))
        if n:
            del self._buf[:n]
            self._base += n
            self.played_bytes += n
            self.idle_ms = 0
        else:
            self.idle_ms += self.frame_ms
        due: list[str] = []
        while self._marks and self._marks[0][0] <= self._base:
            due.append(self._marks.popleft()[1])
        return n, due

    def clear(self) -> tuple[int, list[str]]:
        """Drop all buffered audio; return (bytes dropped, every pending mark in order)."""
        dropped = len(self._buf)
        self._base += dropped
        self.dropped_bytes += dropped
        self._buf.clear()
        marks = [name for _, name in self._marks]
        self._marks.clear()
        return dropped, marks


"""Frames out, as the fast engine builds them itself, and raw socket I/O.

Why the engine builds its own frames: websockets' ``send_text`` does the same plus an
extension pass and a ``getrandom()`` syscall per mask, a tenth of the relay's CPU.
"""

from __future__ import annotations

import os
import random
import socket

import trio

try:
    from websockets.speedups import apply_mask
except ImportError:  # no C extension on this platform: the pure-Python one is correct, slower
    from websockets.utils import apply_mask

RECV_BYTES = 65536


def _text_heads(mask_bit: int) -> tuple[tuple[bytes, ...], bytes, bytes]:
    """Headers of a final text frame: by length below 126, and the 16/64-bit length prefixes."""
    return (tuple(bytes((0x81, mask_bit | n)) for n in range(126)),
            bytes((0x81, mask_bit | 126)), bytes((0x81, mask_bit | 127)))


_SERVER_HEADS = _text_heads(0)
_CLIENT_HEADS = _text_heads(0x80)


class TextFramer:
    """Builds final, unfragmented text frames for one side of one socket."""

    def __init__(self, client: bool) -> None:
        self._heads = _CLIENT_HEADS if client else _SERVER_HEADS
        # Client frames are masked (RFC 6455 5.3). The key guards browsers against proxy cache
        # poisoning; a per-socket PRNG seeded from os.urandom is ample for a server-side client.
        self._mask_rng = random.Random(os.urandom(16)) if client else None

    def frame(self, data: bytes) -> bytes:
        n = len(data)
        short, head16, head64 = self._heads
        if n < 126:
            head = short[n]
        elif n < 65536:
            head = head16 + n.to_bytes(2, "big")
        else:
            head = head64 + n.to_bytes(8, "big")
        if self._mask_rng is None:  # server side: frames go unmasked
            return head + data
        mask = self._mask_rng.getrandbits(32).to_bytes(4, "little")
        return head + mask + apply_mask(data, mask)


async def recv_raw(sock: socket.socket) -> bytes:
    while True:
        try:
            return sock.recv(RECV_BYTES)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)


async def send_raw(sock: socket.socket, view: memoryview) -> None:
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)

"""The one-port front door: /media to the fast engine, everything else to Hypercorn, no matter
how the bytes arrive, and no connection can take the listener down."""

from __future__ import annotations

import socket
import struct

import httpx
import pytest
import trio

from llc.web.front_door import is_media_upgrade
from tests.helpers.stack import StackFactory

UPGRADE = (b"GET /media HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


@pytest.mark.parametrize("first, media", [
    (b"GET /media HTTP/1.1\r\n", True),
    (b"GET /media?token=x HTTP/1.1\r\n", True),
    (b"GET /mediaX HTTP/1.1\r\n", False),
    (b"GET /metrics HTTP/1.1\r\n", False),
    (b"POST /media HTTP/1.1\r\n", False),
    (b"GET /media", False),  # the line never went on: Hypercorn decides
    (b"", False),
])
def test_only_a_get_of_the_media_path_is_the_media_stream(first: bytes, media: bool) -> None:
    assert is_media_upgrade(first) is media


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


async def _upgrade_in_pieces(port: int, pieces: list[bytes]) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
    try:
        for piece in pieces:
            await stream.send_all(piece)
            await trio.sleep(0.05)
        with trio.fail_after(5):
            return await stream.receive_some(4096)
    finally:
        await stream.aclose()


async def test_split_request_line_and_resets_are_handled_and_http_still_served(start_stack: StackFactory) -> None:
    stack = await start_stack()
    port = _port(stack.base_url)
    # A request line split across segments is still recognised as the media upgrade.
    reply = await _upgrade_in_pieces(port, [UPGRADE[:7], UPGRADE[7:]])
    assert reply.startswith(b"HTTP/1.1 101")
    # A client that resets before sending a byte, and one that connects and says nothing.
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    silent = socket.create_connection(("127.0.0.1", port))
    await trio.sleep(0.3)  # let the server meet the resets before asking it anything
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            health = await client.get(stack.base_url + "/healthz")
            other = await client.get(stack.base_url + "/mediaX")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert other.status_code == 404  # not the media path: Hypercorn and the app answered
    finally:
        silent.close()

"""The fast engine's own frame cutting, as data: wire bytes in (any chunking), messages out.

The wire bytes come from websockets' own ClientProtocol/ServerProtocol (an independent
serializer), and everything the fast path does not cut itself must reach websockets'
protocol whole: pings answered, fragments joined, bad frames failing the connection.
"""

from __future__ import annotations

import socket

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from llc.ws import fastws, handshake, inbox
from llc.ws.transport import TransportClosed

MAX_SIZE = 1 << 16


def server_ws(max_size: int = MAX_SIZE, leftover: bytes = b"") -> tuple[fastws.FastWebSocket, socket.socket]:
    """A server-side FastWebSocket after a real (in-memory) handshake, over a socketpair;
    ``leftover``: frame bytes that arrived in the same read as the upgrade request."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    client = ClientProtocol(parse_uri("ws://x/media"))
    client.send_request(client.connect())
    proto = ServerProtocol(max_size=max_size)
    proto.receive_data(b"".join(client.data_to_send()))
    [request] = proto.events_received()
    proto.send_response(proto.accept(request))
    proto.data_to_send()
    assert proto.state is State.OPEN
    return fastws.FastWebSocket(ours, proto, leftover), theirs


def client_wire(*frames: Frame) -> bytes:
    """What a real (masking) client puts on the wire for ``frames``."""
    proto = ClientProtocol(parse_uri("ws://x/"))
    proto.state = State.OPEN  # serializing only: the client's own parser is not used
    for f in frames:
        proto.send_frame(f)
    return b"".join(proto.data_to_send())


def take_in_chunks(ws: fastws.FastWebSocket, wire: bytes, cuts: list[int]) -> None:
    last = 0
    for cut in sorted({c for c in cuts if 0 < c < len(wire)}) + [len(wire)]:
        ws._take(wire[last:cut])
        last = cut


async def messages(ws: fastws.FastWebSocket) -> list[bytes]:
    out = []
    while ws._in.frames:
        out.append(await ws.receive_text())
    return out


TEXTS = [b"{}", b"x" * 125, b"y" * 126, b"z" * 60_000, "é".encode() * 40]


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=70_000), max_size=12))
def test_any_chunking_gives_the_same_messages(cuts: list[int]) -> None:
    wire = client_wire(*(Frame(Opcode.TEXT, t) for t in TEXTS))
    ws, peer = server_ws()
    take_in_chunks(ws, wire, cuts)
    assert trio.run(messages, ws) == TEXTS
    assert ws._in.held == 0 and ws._proto.state is State.OPEN
    peer.close()


def test_a_large_frame_sent_in_small_pieces_is_cut_once_it_is_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame trickled in 64-byte reads is held as it came and joined once: each read is O(1),
    not a copy of everything held so far (which made a 1 MiB frame cost O(frame squared))."""
    text = b"w" * 60_000
    wire = client_wire(Frame(Opcode.TEXT, text), Frame(Opcode.TEXT, b"next"))
    ws, peer = server_ws()
    cuts: list[int] = []
    real_cut = inbox.cut
    monkeypatch.setattr(inbox, "cut", lambda *args: cuts.append(1) or real_cut(*args))
    take_in_chunks(ws, wire, list(range(64, len(wire), 64)))
    assert trio.run(messages, ws) == [text, b"next"]
    assert len(cuts) <= 3, f"{len(cuts)} cuts for {len(wire) // 64 + 1} reads"
    assert ws._in.held == 0
    peer.close()


async def test_ping_between_data_frames_is_answered_on_the_socket() -> None:
    ws, peer = server_ws()
    peer.sendall(client_wire(Frame(Opcode.TEXT, b"one"), Frame(Opcode.PING, b"hi"), Frame(Opcode.TEXT, b"two")))
    with trio.fail_after(5):
        assert [await ws.receive_text(), await ws.receive_text()] == [b"one", b"two"]
    peer.settimeout(5)
    assert peer.recv(64) == b"\x8a\x02hi"  # the pong went out, unmasked, carrying the ping's data
    peer.close()


async def test_a_ping_sent_with_the_handshake_is_answered_with_the_next_read() -> None:
    ws, peer = server_ws(leftover=client_wire(Frame(Opcode.PING, b"early")))
    peer.sendall(client_wire(Frame(Opcode.TEXT, b"later")))
    with trio.fail_after(5):
        assert await ws.receive_text() == b"later"
    peer.settimeout(5)
    assert peer.recv(64) == b"\x8a\x05early"
    peer.close()


async def test_a_pong_is_counted_by_the_engine_without_the_protocol() -> None:
    ws, peer = server_ws()
    fed = ws._take(client_wire(Frame(Opcode.TEXT, b"one"), Frame(Opcode.PONG, b"ab12"), Frame(Opcode.TEXT, b"two")))
    assert fed is False and ws.pongs == 1  # nothing for the protocol: the hub keeps the socket
    assert await messages(ws) == [b"one", b"two"]
    ws._take(client_wire(Frame(Opcode.PONG, b"x" * 125)))
    assert ws.pongs == 2 and ws._proto.state is State.OPEN
    peer.close()


async def test_fragments_are_joined_by_the_protocol_path() -> None:
    ws, peer = server_ws()
    wire = client_wire(Frame(Opcode.TEXT, b"part one, ", fin=False), Frame(Opcode.CONT, b"part two"),
                       Frame(Opcode.TEXT, b"after"))
    take_in_chunks(ws, wire, [3, 17])
    assert await messages(ws) == [b"part one, part two", b"after"]
    peer.close()


async def test_a_data_frame_inside_a_fragmented_message_fails_the_connection() -> None:
    ws, peer = server_ws()
    ws._take(client_wire(Frame(Opcode.TEXT, b"start", fin=False), Frame(Opcode.TEXT, b"not a continuation")))
    assert ws._proto.state is State.CLOSING and ws._proto.close_sent.code == 1002
    peer.close()


async def test_unmasked_client_frame_fails_the_connection_with_1002() -> None:
    ws, peer = server_ws()
    ws._take(b"\x81\x05hello")  # a client must mask (RFC 6455 5.1)
    assert not [f for f in ws._in.frames if type(f) is bytes]
    assert ws._proto.close_sent is not None and ws._proto.close_sent.code == 1002
    peer.close()


async def test_oversized_length_is_refused_before_it_is_buffered() -> None:
    ws, peer = server_ws(max_size=1000)
    # Only the header of a 2 GB frame has arrived: it must be refused now, not awaited.
    ws._take(b"\x81\xff" + (2**31).to_bytes(8, "big") + b"mask")
    assert ws._proto.close_sent is not None and ws._proto.close_sent.code == 1009
    ws._take(b"more bytes of it")  # the rest is discarded by the protocol, not parsed
    assert ws._in.held == 0 and not [f for f in ws._in.frames if type(f) is bytes]
    peer.close()


async def test_close_frame_ends_receive_with_its_code() -> None:
    ws, peer = server_ws()
    ws._take(client_wire(Frame(Opcode.TEXT, b"last words"), Frame(Opcode.CLOSE, b"\x0f\xa1bye")))
    assert await ws.receive_text() == b"last words"
    with pytest.raises(TransportClosed) as info:
        await ws.receive_text()
    assert (info.value.code, info.value.reason) == (4001, "bye")
    peer.close()


async def test_frames_sent_with_the_upgrade_request_are_not_lost(nursery: trio.Nursery) -> None:
    # A client may write its first frame right behind the request, in the same segment.
    got: list[bytes] = []
    done = trio.Event()

    async def on_stream(stream: trio.SocketStream) -> None:
        ws = await handshake.accept(stream, "/media", max_size=MAX_SIZE, timeout_s=5)
        assert ws is not None
        got.append(await ws.receive_text())
        got.append(await ws.receive_text())
        done.set()
        await ws.close()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, on_stream, listeners)
    port = listeners[0].socket.getsockname()[1]
    client = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/media"))
    client.send_request(client.connect())
    head = b"".join(client.data_to_send())
    client.state = State.OPEN  # the frames below are written before the 101 arrives
    client.send_text(b'{"event":"connected"}')
    client.send_text(b'{"event":"start"}')
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(head + b"".join(client.data_to_send()))
    with trio.fail_after(5):
        await done.wait()
    assert got == [b'{"event":"connected"}', b'{"event":"start"}']
    await stream.aclose()


async def test_an_oversized_upgrade_head_is_refused(nursery: trio.Nursery) -> None:
    results: list[object] = []

    async def on_stream(stream: trio.SocketStream) -> None:
        results.append(await handshake.accept(stream, "/media", max_size=MAX_SIZE, timeout_s=5))

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, on_stream, listeners)
    stream = await trio.open_tcp_stream("127.0.0.1", listeners[0].socket.getsockname()[1])
    head = b"GET /media HTTP/1.1\r\n" + b"X-Pad: " + b"p" * (handshake.MAX_HEAD_BYTES + 10)  # no end of head
    await stream.send_all(head)
    with trio.fail_after(5):
        assert await stream.receive_some(100) == b""  # closed, nothing answered
    assert results == [None]
    await stream.aclose()

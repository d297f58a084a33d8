"""The fast WebSocket engine against an independent implementation (trio-websocket/wsproto)."""

from __future__ import annotations

import pytest
import trio
from trio_websocket import open_websocket_url, serve_websocket
from wsproto.events import TextMessage

from llc.ws import fastws, handshake
from llc.ws.transport import HandshakeFailed, TransportClosed


async def _fast_server(nursery: trio.Nursery, handler, path: str = "/media") -> int:
    """A fast-engine listener on a free loopback port; ``handler(ws)`` runs per connection."""

    async def on_stream(stream: trio.SocketStream) -> None:
        ws = await handshake.accept(stream, path, max_size=1 << 20, timeout_s=5)
        if ws is not None:
            try:
                await handler(ws)
            finally:
                await ws.close()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, on_stream, listeners)
    return listeners[0].socket.getsockname()[1]


async def _echo(ws: fastws.FastWebSocket) -> None:
    try:
        while True:
            await ws.send_text(await ws.receive_text())
    except TransportClosed:
        pass


async def test_server_echoes_a_wsproto_client_including_fragments_and_pings(nursery: trio.Nursery) -> None:
    port = await _fast_server(nursery, _echo)
    async with open_websocket_url(f"ws://127.0.0.1:{port}/media") as ws:
        big = "x" * 200_000  # 64-bit length header
        for text in ["hello", "é" * 100, big]:
            await ws.send_message(text)
            with trio.fail_after(5):
                assert await ws.get_message() == text
        with trio.fail_after(5):
            await ws.ping(b"are you there")  # returns when the pong arrives
        # A fragmented message is reassembled before it reaches the call.
        await ws._send(TextMessage("part one, ", message_finished=False))  # trio-websocket's internal sender
        await ws._send(TextMessage("part two", message_finished=True))
        with trio.fail_after(5):
            assert await ws.get_message() == "part one, part two"


async def test_server_refuses_other_paths_with_404(nursery: trio.Nursery) -> None:
    port = await _fast_server(nursery, _echo)
    with pytest.raises(HandshakeFailed) as info:
        with trio.fail_after(5):
            await handshake.connect(f"ws://127.0.0.1:{port}/elsewhere")
    assert info.value.status == 404


async def test_client_and_server_close_codes_reach_the_other_side(nursery: trio.Nursery) -> None:
    closed: list[TransportClosed] = []

    async def closer(ws: fastws.FastWebSocket) -> None:
        assert await ws.receive_text() == b"bye please"
        await ws.close(4001, "done here")

    port = await _fast_server(nursery, closer)
    ws = await handshake.connect(f"ws://127.0.0.1:{port}/media")
    await ws.send_text("bye please")
    with trio.fail_after(5):
        try:
            await ws.receive_text()
        except TransportClosed as exc:
            closed.append(exc)
    assert closed and (closed[0].code, closed[0].reason) == (4001, "done here")
    await ws.close()
    with pytest.raises(TransportClosed):
        await ws.send_text("too late")


async def test_client_talks_to_a_wsproto_server_and_sees_its_close(nursery: trio.Nursery) -> None:
    async def handler(request) -> None:
        peer = await request.accept()
        await peer.send_message(await peer.get_message())
        await peer.aclose(1011, "upstream failure")

    server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
    ws = await handshake.connect(f"ws://127.0.0.1:{server.port}/v1/realtime", [("Authorization", "Bearer k")])
    await ws.send_text('{"type":"session.update"}')
    with trio.fail_after(5):
        assert await ws.receive_text() == b'{"type":"session.update"}'
        with pytest.raises(TransportClosed) as info:
            await ws.receive_text()
    assert info.value.code == 1011
    await ws.close()


async def test_connect_to_a_closed_port_is_an_oserror() -> None:
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError):
        await handshake.connect(f"ws://127.0.0.1:{port}/v1/realtime")


async def test_send_texts_delivers_each_message_in_order_as_text(nursery: trio.Nursery) -> None:
    # A media frame and its mark leave in one write; the peer must still see separate messages.
    async def batcher(ws: fastws.FastWebSocket) -> None:
        await ws.receive_text()
        await ws.send_texts(["one", b"two", "x" * 70_000])

    port = await _fast_server(nursery, batcher)
    async with open_websocket_url(f"ws://127.0.0.1:{port}/media") as ws:
        await ws.send_message("go")
        with trio.fail_after(5):
            got = [await ws.get_message() for _ in range(3)]
    assert got == ["one", "two", "x" * 70_000]  # str, not bytes: text frames, as Twilio needs

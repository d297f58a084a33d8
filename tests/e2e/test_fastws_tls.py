"""The fast engine over TLS: the path a real `wss://api.openai.com` call takes."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

import pytest
import trio
from trio_websocket import WebSocketRequest, serve_websocket
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from llc.ws import handshake
from llc.ws.fastws import FastWebSocket
from llc.ws.state import ABORTED, ENDED, OPEN
from llc.ws.tls import MemoryTLS
from llc.ws.transport import TransportClosed

trustme = pytest.importorskip("trustme", reason="trustme (test extra) makes the throwaway CA")


def _contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for 127.0.0.1 from a throwaway CA, and a client one trusting it."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


async def test_fast_engine_speaks_wss(nursery: trio.Nursery) -> None:
    server_ctx, client_ctx = _contexts()
    seen: dict[str, str] = {}

    async def echo(request: WebSocketRequest) -> None:
        seen["auth"] = dict(request.headers).get(b"authorization", b"").decode()
        ws = await request.accept()
        for _ in range(3):
            await ws.send_message("echo:" + str(await ws.get_message()))

    server = await nursery.start(serve_websocket, echo, "127.0.0.1", 0, server_ctx)
    url = f"wss://127.0.0.1:{server.port}/v1/realtime?model=m"
    with trio.fail_after(10):
        ws = await handshake.connect(url, [("Authorization", "Bearer k")], ssl_context=client_ctx)
        for i in range(3):
            big = "x" * (70_000 if i == 2 else 10)  # one frame larger than a TLS record
            await ws.send_text(f'{{"n":{i},"pad":"{big}"}}')
            reply = await ws.receive_text()
            assert reply.startswith(b"echo:") and f'"n":{i}'.encode() in reply and len(reply) > len(big)
        with pytest.raises(TransportClosed):
            await ws.receive_text()  # the server handler returned: the socket closes
        await ws.close()
    assert seen["auth"] == "Bearer k"


async def _untrusted_server(nursery: trio.Nursery) -> int:
    """A wss server whose certificate no default trust store accepts; returns its port."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(server_ctx)

    async def handler(request: WebSocketRequest) -> None:
        await request.accept()

    server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, server_ctx)
    return int(server.port)


async def test_fast_engine_refuses_an_untrusted_certificate(nursery: trio.Nursery) -> None:
    port = await _untrusted_server(nursery)
    with trio.fail_after(10), pytest.raises((ssl.SSLError, trio.BrokenResourceError, OSError)):
        await handshake.connect(f"wss://127.0.0.1:{port}/v1/realtime", [], ssl_context=ssl.create_default_context())


async def test_untrusted_openai_endpoint_is_a_plain_connect_error(nursery: trio.Nursery) -> None:
    from llc.config import Settings
    from llc.openai.connect import OpenAIConnectError, connect_openai

    port = await _untrusted_server(nursery)
    settings = Settings(openai_realtime_url=f"wss://127.0.0.1:{port}/v1/realtime", openai_connect_timeout_s=5)
    with pytest.raises(OpenAIConnectError, match="certificate verify failed.*OPENAI_REALTIME_URL"):
        await connect_openai(settings)


async def _tls_pair() -> tuple[FastWebSocket, trio.SSLStream[trio.SocketStream]]:
    """The engine with its TLS layer on one end of a socketpair, Trio's SSLStream (an
    independent TLS) as the server on the other, handshake done."""
    server_ctx, client_ctx = _contexts()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    server = trio.SSLStream(trio.SocketStream(trio.socket.from_stdlib_socket(theirs)), server_ctx, server_side=True)
    tls = MemoryTLS(client_ctx, "127.0.0.1")
    with trio.fail_after(5):
        async with trio.open_nursery() as both:
            both.start_soon(server.do_handshake)
            await tls.handshake(ours)
    # The upgrade itself is connect()'s, tested above: here it is done in memory.
    proto, peer = ClientProtocol(parse_uri("wss://127.0.0.1/v1/realtime")), ServerProtocol()
    proto.send_request(proto.connect())
    peer.receive_data(b"".join(proto.data_to_send()))
    [request] = peer.events_received()
    peer.send_response(peer.accept(request))
    proto.receive_data(b"".join(peer.data_to_send()))
    assert proto.state is State.OPEN and proto.events_received()
    return FastWebSocket(ours, proto, tls=tls), server


async def _read_until(ws: FastWebSocket, done: Callable[[], bool]) -> bool:
    """The hub's reads (read_nowait), bounded in count and time, until ``done()``; the last result."""
    ok = True
    with trio.fail_after(5):
        for _ in range(500):
            ok = ws.read_nowait()
            if done():
                return ok
            await trio.sleep(0.005)
    raise AssertionError("never done")


async def test_the_tls_layer_is_composed_on_the_hubs_path() -> None:
    ws, server = await _tls_pair()
    got: list[bytes] = []

    def both_handed_out() -> bool:
        while (message := ws.message_nowait()) is not None:
            got.append(message)
        return len(got) == 2

    await server.send_all(b"\x81\x05hello" + b"\x82\x03bin")  # server frames: unmasked
    await _read_until(ws, both_handed_out)
    assert got == [b"hello", b"bin"] and ws.parkable()
    assert ws.send_nowait([b"up"])  # sealed and written at once
    with trio.fail_after(5):
        wire = await server.receive_some(100)
    assert wire[0] == 0x81 and wire[1] == 0x80 | 2  # a masked text frame of 2 bytes
    assert bytes(b ^ wire[2 + i % 4] for i, b in enumerate(wire[6:])) == b"up"
    ws.abort("test over")
    await trio.aclose_forcefully(server)


@pytest.mark.parametrize("end", ["close_notify", "forged record"])
async def test_the_end_of_tls_ends_the_stream_and_a_forged_record_aborts(end: str) -> None:
    ws, server = await _tls_pair()
    if end == "close_notify":
        await server.aclose()  # TLS's own end, then the socket's
    else:  # an application-data record that does not decrypt
        await server.transport_stream.send_all(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)
    assert await _read_until(ws, lambda: ws.state is not OPEN) is False  # handed back to the task
    with pytest.raises(TransportClosed) as info:
        await ws.receive_text()
    if end == "close_notify":
        assert ws.state is ENDED and info.value.code == 1006
        await ws.close()
    else:
        assert ws.state is ABORTED and info.value.reason.startswith("TLS error")
        await trio.aclose_forcefully(server)
    assert ws.fileno() == -1

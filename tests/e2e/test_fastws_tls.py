"""The fast engine over TLS: the path a real `wss://api.openai.com` call takes."""

from __future__ import annotations

import ssl

import pytest
import trio
from trio_websocket import WebSocketRequest, serve_websocket

from llc.ws import handshake
from llc.ws.transport import TransportClosed

trustme = pytest.importorskip("trustme", reason="trustme (test extra) makes the throwaway CA")


async def test_fast_engine_speaks_wss(nursery: trio.Nursery) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
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

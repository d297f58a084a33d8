"""One TLS context per process (a handshake per call must not rebuild it), and a refused TLS handshake leaves no socket open."""

from __future__ import annotations

import gc
import os
import ssl
from functools import partial
from pathlib import Path

import pytest
import trio
from trio_websocket import WebSocketRequest, serve_websocket

from llc.config import Settings
from llc.openai import connect as openai_connect

trustme = pytest.importorskip("trustme", reason="trustme (test extra) makes the throwaway CA")


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> trustme.CA:
    """A throwaway CA the default trust store accepts (SSL_CERT_FILE), and a fresh process context."""
    authority = trustme.CA()
    pem = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    _fresh_context()
    yield authority
    _fresh_context()


def _fresh_context() -> None:
    made = getattr(openai_connect, "tls_context", None)  # (absent in older builds, which made a context per connect)
    if made is not None:
        made.cache_clear()


def _server_context(authority: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(ctx)
    return ctx


async def test_one_tls_context_serves_every_connect(nursery: trio.Nursery, ca: trustme.CA,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    async def accept(request: WebSocketRequest) -> None:
        await request.accept()

    server = await nursery.start(serve_websocket, accept, "127.0.0.1", 0, _server_context(ca))
    made = []
    real = ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    settings = Settings(openai_realtime_url=f"wss://127.0.0.1:{server.port}/v1/realtime", openai_connect_timeout_s=5)
    for _ in range(3):
        conn = await openai_connect.connect_openai(settings)
        await conn.close()
    assert len(made) == 1  # made once (start-up makes it before the first call), never per connect


async def _refusing_server(nursery: trio.Nursery, authority: trustme.CA, status: int) -> int:
    """A TLS server that answers every upgrade with ``status`` and closes its side."""
    ctx = _server_context(authority)

    async def refuse(stream: trio.SocketStream) -> None:
        tls = trio.SSLStream(stream, ctx, server_side=True)
        try:
            with trio.move_on_after(5):
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = await tls.receive_some(4096)
                    if not chunk:
                        return
                    head += chunk
                await tls.send_all(f"HTTP/1.1 {status} Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(tls)

    listeners = await nursery.start(partial(trio.serve_tcp, refuse, 0, host="127.0.0.1"))
    return int(listeners[0].socket.getsockname()[1])


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts open descriptors in /proc")
async def test_a_refused_tls_handshake_closes_its_socket(nursery: trio.Nursery, ca: trustme.CA) -> None:
    settings = Settings(openai_realtime_url=f"wss://127.0.0.1:{await _refusing_server(nursery, ca, 401)}/v1/realtime",
                        openai_connect_timeout_s=5)
    gc.collect()
    gc.disable()  # a leaked socket must show as an open descriptor, not be rescued by the collector
    try:
        await trio.sleep(0.1)
        before = _open_fds()
        for _ in range(5):
            with pytest.raises(openai_connect.OpenAIConnectError, match="HTTP 401; check OPENAI_API_KEY"):
                await openai_connect.connect_openai(settings)
        await trio.sleep(0.2)  # the server's side of each connection closes
        assert _open_fds() <= before
    finally:
        gc.enable()

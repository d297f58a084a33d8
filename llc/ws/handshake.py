"""Opening a fast-engine WebSocket: ``connect`` (the OpenAI leg) and ``accept`` (Twilio's media stream).

The websockets package's sans-I/O protocol does the HTTP upgrade; only the HTTP head goes to
it, and frame bytes that came in the same read are handed to the engine to cut, so the
protocol's parser starts on a frame boundary.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import trio
from websockets.client import ClientProtocol
from websockets.http11 import Request, Response
from websockets.protocol import Event, Protocol
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from llc.ws.fastws import FastWebSocket
from llc.ws.tls import MemoryTLS
from llc.ws.transport import HandshakeFailed
from llc.ws.wire import recv_raw, send_raw

# An upgrade request/response head longer than this is refused (Twilio's and OpenAI's are < 2 KiB).
MAX_HEAD_BYTES = 16384


def _raw_socket(stream: trio.SocketStream) -> socket.socket:
    """Take the stdlib socket out of a Trio stream, with Nagle off (every frame is urgent)."""
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
    fd = stream.socket.detach()
    return socket.socket(fileno=fd)


async def _handshake_events(receive: Callable[[], Awaitable[bytes]], proto: Protocol) -> tuple[list[Event], bytes]:
    """Feed the upgrade request/response to the protocol; its events, and the bytes after it.

    Only the HTTP head goes to the protocol: frame bytes that arrived in the same read are
    returned for FastWebSocket to cut, so the protocol's parser starts on a frame boundary.
    """
    pending = b""  # received, not yet given to the protocol
    fed_head = False
    while True:
        data = await receive()
        if not data:
            proto.receive_eof()
            events = proto.events_received()
            if events:
                return events, b""
            raise HandshakeFailed("the peer closed the connection during the WebSocket handshake")
        if fed_head:
            proto.receive_data(data)  # the body of a refusal
        else:
            pending += data
            end = pending.find(b"\r\n\r\n")
            if end < 0:
                if len(pending) > MAX_HEAD_BYTES:
                    raise HandshakeFailed(f"the upgrade head is over {MAX_HEAD_BYTES} bytes")
                continue
            proto.receive_data(pending[: end + 4])
            pending, fed_head = pending[end + 4 :], True
        events = proto.events_received()
        if events:
            return events, pending
        if pending:  # the head alone was not enough (a refusal with a body): the rest is the protocol's
            proto.receive_data(pending)
            pending = b""
            events = proto.events_received()
            if events:
                return events, b""


async def connect(
    url: str,
    headers: Sequence[tuple[str, str]] = (),
    *,
    max_size: int = 4 * 1024 * 1024,
    ssl_context: ssl.SSLContext | None = None,
) -> FastWebSocket:
    """Open a client WebSocket. Raises HandshakeFailed (with the HTTP status) or OSError."""
    wsuri = parse_uri(url)
    proto = ClientProtocol(wsuri, max_size=max_size)
    request = proto.connect()
    for name, value in headers:
        request.headers[name] = value
    proto.send_request(request)
    stream = await trio.open_tcp_stream(wsuri.host, wsuri.port)
    sock = _raw_socket(stream)
    try:
        sock.setblocking(False)
        if wsuri.secure:
            tls = MemoryTLS(ssl_context or ssl.create_default_context(), wsuri.host)
            await tls.handshake(sock)
            await tls.send(sock, b"".join(proto.data_to_send()))
            events, leftover = await _handshake_events(partial(tls.receive, sock), proto)
            _check_response(proto, events)  # a refusal (401/429/5xx) closes the socket too
            return FastWebSocket(sock, proto, leftover, tls=tls)
        sock.sendall(b"".join(proto.data_to_send()))  # a few hundred bytes into an empty buffer
        events, leftover = await _handshake_events(partial(recv_raw, sock), proto)
        _check_response(proto, events)
    except BaseException:
        sock.close()
        raise
    return FastWebSocket(sock, proto, leftover)


def _check_response(proto: ClientProtocol, events: list[Event]) -> None:
    if proto.handshake_exc is not None:
        response = events[0] if events and isinstance(events[0], Response) else None
        status = response.status_code if response is not None else None
        raise HandshakeFailed(f"WebSocket handshake refused: {proto.handshake_exc}", status)


async def accept(
    stream: trio.SocketStream, path: str, *, max_size: int, timeout_s: float = 10.0
) -> FastWebSocket | None:
    """Server side: read the upgrade request, accept it on ``path`` or refuse it.

    Returns None (after answering with an HTTP error and closing) when the request is not a
    WebSocket upgrade to ``path`` or does not arrive in time.
    """
    sock = _raw_socket(stream)
    sock.setblocking(False)
    proto = ServerProtocol(max_size=max_size)
    try:
        with trio.move_on_after(timeout_s):
            events, leftover = await _handshake_events(partial(recv_raw, sock), proto)
            request = events[0]
            assert isinstance(request, Request)
            if request.path.split("?", 1)[0] != path:
                response = proto.reject(404, f"no WebSocket here; the media stream is at {path}\n")
            else:
                response = proto.accept(request)
            proto.send_response(response)
            # The engine takes over only an open connection; a refusal is written and closed here.
            await send_raw(sock, memoryview(b"".join(proto.data_to_send())))
            if response.status_code == 101 and proto.handshake_exc is None:
                return FastWebSocket(sock, proto, leftover, request=request)
    except (HandshakeFailed, OSError):
        pass
    except BaseException:  # cancelled mid-handshake: the detached socket is ours to close
        sock.close()
        raise
    sock.close()
    return None

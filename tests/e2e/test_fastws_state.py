"""The engine's lifecycle (llc/ws/state.py): the legal moves happen, on real sockets; an
operation a state does not allow raises TransportClosed; a move the table does not allow is a
bug (IllegalTransition, an AssertionError).

Peers are socketpairs (no network) speaking wire bytes made by websockets' own serializer.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
import trio
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from llc.ws import handshake
from llc.ws.fastws import CLOSE_WAIT_S, FastWebSocket
from llc.ws.state import (
    ABORTED,
    CLOSED,
    CLOSING,
    ENDED,
    NEXT,
    OPEN,
    ConnectionState,
    IllegalTransition,
    moved,
    synced,
)
from llc.ws.transport import TransportClosed
from tests.e2e.test_fastws_frames import client_wire, server_ws

LEGAL = {(OPEN, CLOSING), (OPEN, ENDED), (OPEN, ABORTED), (CLOSING, ENDED), (CLOSING, CLOSED),
         (CLOSING, ABORTED), (ENDED, CLOSED), (ENDED, ABORTED)}


@pytest.mark.parametrize("new", list(ConnectionState))
@pytest.mark.parametrize("old", list(ConnectionState))
def test_only_the_named_moves_are_legal(old: ConnectionState, new: ConnectionState) -> None:
    if (old, new) in LEGAL:
        assert moved(old, new) is new
    else:
        with pytest.raises(IllegalTransition):
            moved(old, new)
    assert set(NEXT) == set(ConnectionState)


def test_the_protocol_going_back_is_a_bug_until_the_fd_is_let_go() -> None:
    assert issubclass(IllegalTransition, AssertionError)
    assert synced(OPEN, State.CLOSING) is CLOSING and synced(CLOSING, State.CLOSED) is ENDED
    for old, protocol in ((CLOSING, State.OPEN), (ENDED, State.CLOSING), (OPEN, State.CONNECTING)):
        with pytest.raises(IllegalTransition):
            synced(old, protocol)
    assert synced(ABORTED, State.OPEN) is ABORTED  # let go of: the protocol's view no longer matters


def test_the_engine_takes_over_only_an_open_connection() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs, pytest.raises(IllegalTransition):
        FastWebSocket(ours, ServerProtocol())  # still CONNECTING: the handshake is not done


async def test_a_protocol_that_goes_back_to_open_is_caught_at_the_next_call_into_it() -> None:
    ws, peer = server_ws()
    ws._take(client_wire(Frame(Opcode.CLOSE, b"\x03\xe8")))
    assert ws.state is CLOSING
    ws._proto.state = State.OPEN  # a protocol bug
    with pytest.raises(IllegalTransition):
        ws._take(client_wire(Frame(Opcode.PING, b"")))
    ws.abort("test over")
    peer.close()


def _sends(ws: FastWebSocket) -> list[Callable[[], object]]:
    return [lambda: ws.send_nowait([b"x"]), ws.ping_nowait]


async def _assert_sends_raise(ws: FastWebSocket, code: int) -> None:
    for send in _sends(ws):
        with pytest.raises(TransportClosed) as info:
            send()
        assert info.value.code == code
    with pytest.raises(TransportClosed):
        await ws.send_text("x")


async def test_our_close_goes_closing_then_closed_when_the_peer_answers() -> None:
    ws, peer = server_ws()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ws.close, 4000, "bye")
        with trio.fail_after(5):
            while ws.state is OPEN:
                await trio.sleep(0.001)
        assert ws.state is CLOSING
        await _assert_sends_raise(ws, 4000)
        peer.settimeout(5)
        assert peer.recv(64) == b"\x88\x05\x0f\xa0bye"  # our close frame, unmasked
        peer.sendall(client_wire(Frame(Opcode.CLOSE, b"\x0f\xa0bye")))
        peer.shutdown(socket.SHUT_WR)
    assert ws.state is CLOSED and ws.fileno() == -1
    await ws.close()  # again: nothing to do
    ws.abort("late")  # after the fd is let go of: nothing to do
    assert ws.state is CLOSED
    peer.close()


async def test_a_bad_frame_fails_the_connection_into_closing() -> None:
    ws, peer = server_ws()
    ws._take(b"\x81\x05hello")  # unmasked from a client: 1002
    assert ws.state is CLOSING and not ws.parkable()
    await _assert_sends_raise(ws, 1002)
    ws.abort("test over")
    peer.close()


async def test_the_peers_end_is_ended_and_close_lets_go_of_the_fd() -> None:
    ws, peer = server_ws()
    peer.shutdown(socket.SHUT_WR)  # dropped: no close frame
    with trio.fail_after(5), pytest.raises(TransportClosed) as info:
        await ws.receive_text()
    assert info.value.code == 1006 and ws.state is ENDED and not ws.parkable()
    await _assert_sends_raise(ws, 1006)
    peer.settimeout(5)
    assert peer.recv(64) == b""  # the half-close the end was owed
    await ws.close()
    assert ws.state is CLOSED and ws.fileno() == -1
    peer.close()


async def test_a_peer_that_never_ends_after_its_close_is_aborted_within_the_bound(autojump_clock: object) -> None:
    ws, peer = server_ws()
    peer.sendall(client_wire(Frame(Opcode.CLOSE, b"\x0f\xa1bye")))  # and then silence, the TCP stream open
    with pytest.raises(TransportClosed) as info:
        await ws.receive_text()
    assert info.value.code == 4001 and ws.state is CLOSING  # echoed; the peer's end is awaited
    started = trio.current_time()
    with pytest.raises(TransportClosed):
        await ws.receive_text()
    assert ws.state is ABORTED and ws.fileno() == -1
    assert trio.current_time() - started == pytest.approx(CLOSE_WAIT_S, abs=0.05)
    peer.close()


async def test_abort_is_final_and_keeps_its_first_reason() -> None:
    ws, peer = server_ws()
    ws.abort("no pong within 3 s")
    ws.abort("a second cut")
    await ws.close()  # let go of already: returns at once
    assert ws.state is ABORTED and ws.fileno() == -1
    with pytest.raises(TransportClosed) as info:
        await ws.receive_text()
    assert (info.value.code, info.value.reason) == (1006, "no pong within 3 s")
    await _assert_sends_raise(ws, 1006)
    peer.close()


async def test_abort_on_a_freshly_upgraded_socket(nursery: trio.Nursery) -> None:
    # A media handler that refuses a socket right after the upgrade: not parked, no reader.
    cut: list[FastWebSocket] = []

    async def on_stream(stream: trio.SocketStream) -> None:
        ws = await handshake.accept(stream, "/media", max_size=1 << 16, timeout_s=5)
        assert ws is not None and ws.state is OPEN
        ws.abort("refused")
        cut.append(ws)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, on_stream, listeners)
    port = listeners[0].socket.getsockname()[1]
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(b"GET /media HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    got = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some(4096):
            got += chunk
    assert got.startswith(b"HTTP/1.1 101") and len(cut) == 1
    assert cut[0].state is ABORTED and cut[0].fileno() == -1
    await stream.aclose()

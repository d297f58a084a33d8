"""The media hub (llc/ws/hub.py): parked sockets read by one task, handed back for anything else.

Real sockets (socketpairs) and a real hub task: what must hold is that data frames reach the
handler in order without waking the parked task, that everything else (a ping, the end, an
abort, a cancel, a failing handler, the hub stopping) wakes it with the socket left in a state
its own reads handle, and that a parked socket never outlives its park in the epoll set.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import trio
from websockets.frames import Frame, Opcode

from llc.ws import hub as hub_module
from llc.ws.fastws import FastWebSocket
from llc.ws.hub import Hub, Parkable
from llc.ws.hub import Parking as HubParking
from llc.ws.transport import TransportClosed
from tests.e2e.test_fastws_frames import client_wire, server_ws


def text(data: bytes) -> bytes:
    return client_wire(Frame(Opcode.TEXT, data))


async def parked_until_back(hub: Hub, ws: FastWebSocket, got: list[bytes], results: list[object],
                            keep: bool = True) -> None:
    def on_message(msg: bytes) -> bool:
        got.append(msg)
        return keep

    try:
        results.append(await hub.park(ws, on_message))
    except Exception as exc:  # noqa: BLE001  # what park() raised is what the test looks at
        results.append(exc)


async def until(cond: object, what: str, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not cond():  # type: ignore[operator]
            await trio.sleep(0.005)


@dataclass
class Parking:
    """A running hub with one socket parked in it by a task, and the peer's end of the socket."""

    hub: Hub
    ws: FastWebSocket
    peer: socket.socket
    nursery: trio.Nursery
    got: list[bytes] = field(default_factory=list)  # what the handler was given
    results: list[object] = field(default_factory=list)  # what park() returned or raised

    async def park_again(self) -> None:
        self.nursery.start_soon(parked_until_back, self.hub, self.ws, self.got, self.results)
        await until(lambda: self.hub.parked == 1, "parked")


@asynccontextmanager
async def one_parked(keep: bool = True) -> AsyncIterator[Parking]:
    ws, peer = server_ws()
    try:
        async with trio.open_nursery() as nursery:
            hub = Hub()
            await nursery.start(hub.run)
            parking = Parking(hub, ws, peer, nursery)
            nursery.start_soon(parked_until_back, hub, ws, parking.got, parking.results, keep)
            await until(lambda: hub.parked == 1, "parked")
            yield parking
            nursery.cancel_scope.cancel()
    finally:
        peer.close()
        ws.abort("test over")


async def test_data_frames_from_many_sockets_reach_their_handlers_in_order_without_waking_the_task() -> None:
    hub = Hub()
    pairs = [server_ws() for _ in range(5)]
    got: list[list[bytes]] = [[] for _ in pairs]
    results: list[object] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        for (ws, _), g in zip(pairs, got):
            nursery.start_soon(parked_until_back, hub, ws, g, results)
        await until(lambda: hub.parked == 5, "all parked")
        for n in range(40):
            for _, peer in pairs:
                peer.sendall(text(b"m%d" % n))
        await until(lambda: all(len(g) == 40 for g in got), "every message handled")
        assert results == []  # no parked task was woken for a data frame
        assert all(g == [b"m%d" % n for n in range(40)] for g in got)
        nursery.cancel_scope.cancel()
    assert hub.parked == 0 and not hub.running
    for ws, peer in pairs:
        peer.close()
        ws.abort("test over")


async def test_a_socket_that_floods_takes_its_budget_per_pass_and_the_others_go_between() -> None:
    """A peer sending faster than real time (a forged key-press flood) gets BUDGET messages a
    pass: other tasks, and a neighbour's message, run between its slices of one read."""
    hub = Hub()
    (flood, flood_peer), (calm, calm_peer) = server_ws(), server_ws()
    flood_got: list[bytes] = []
    calm_after: list[int] = []
    results: list[object] = []

    def on_flood(msg: bytes) -> bool:
        flood_got.append(msg)
        return True

    def on_calm(msg: bytes) -> bool:
        calm_after.append(len(flood_got))
        return True

    async def parked(ws: FastWebSocket, handler: Callable[[bytes], bool]) -> None:
        results.append(await hub.park(ws, handler))

    count = 10 * hub_module.BUDGET
    seen: list[int] = []  # how much of the flood was handled each time this task ran again
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        nursery.start_soon(parked, flood, on_flood)
        nursery.start_soon(parked, calm, on_calm)
        await until(lambda: hub.parked == 2, "both parked")
        flood_peer.sendall(b"".join(text(b"k%d" % n) for n in range(count)))  # one read's worth
        calm_peer.sendall(text(b"hello"))
        with trio.fail_after(5):
            while len(flood_got) < count or not calm_after:
                await trio.lowlevel.checkpoint()
                seen.append(len(flood_got))
        assert flood_got == [b"k%d" % n for n in range(count)]  # in order, none lost
        assert results == []  # no task woken: the rest stayed the hub's
        # Trio runs a batch's tasks in either order, so the hub may take two slices between two looks.
        between = sorted({n for n in seen if 0 < n < count})
        assert len(between) >= 4 and max(b - a for a, b in zip([0, *between], between)) <= 2 * hub_module.BUDGET, seen
        assert calm_after[0] <= hub_module.BUDGET  # the neighbour waited one slice at most
        assert hub.parked == 2
        nursery.cancel_scope.cancel()
    for ws, peer in ((flood, flood_peer), (calm, calm_peer)):
        peer.close()
        ws.abort("test over")


async def test_a_ping_is_handed_back_and_answered_by_the_task_read_then_the_socket_parks_again() -> None:
    async with one_parked() as p:
        p.peer.sendall(text(b"one") + client_wire(Frame(Opcode.PING, b"hi")) + text(b"two"))
        await until(lambda: p.results, "handed back")
        # The read held a frame for the protocol: all of it is the task's, in order.
        assert p.results == [True] and p.got == [] and p.hub.parked == 0
        with trio.fail_after(5):  # the task's own reads, the ping answered on the way
            assert [await p.ws.receive_text(), await p.ws.receive_text()] == [b"one", b"two"]
        p.peer.settimeout(5)
        assert p.peer.recv(64) == b"\x8a\x02hi"
        assert p.ws.parkable()
        await p.park_again()
        p.peer.sendall(text(b"three"))
        await until(lambda: p.got[-1:] == [b"three"], "handled by the hub again")


async def test_the_end_of_the_stream_is_handed_back_and_the_task_reads_it() -> None:
    async with one_parked() as p:
        p.peer.shutdown(socket.SHUT_WR)  # no close frame: a dropped peer
        await until(lambda: p.results, "handed back")
        assert not p.ws.parkable()
        with trio.fail_after(5), pytest.raises(TransportClosed) as info:
            await p.ws.receive_text()
        assert info.value.code == 1006


async def test_abort_while_parked_wakes_the_task_and_leaves_the_epoll_set_first() -> None:
    async with one_parked() as p:
        p.ws.abort("no pong within 3 s")  # the watchdog's cut, from another task
        assert p.hub.parked == 0 and p.ws._parking is None
        await until(lambda: p.results, "handed back")
        with pytest.raises(TransportClosed) as info:
            await p.ws.receive_text()
        assert (info.value.code, info.value.reason) == (1006, "no pong within 3 s")
        # The hub keeps serving: a new socket, likely on the closed one's number, parks and works.
        ws2, peer2 = server_ws()
        got: list[bytes] = []
        p.nursery.start_soon(parked_until_back, p.hub, ws2, got, [])
        peer2.sendall(text(b"still here"))
        await until(lambda: got == [b"still here"], "handled")
        assert p.hub.parked == 1
    peer2.close()
    ws2.abort("test over")


class SeamOnly:
    """A fast socket seen only through the hub's seam: any other attribute is missing.

    ``released``: right after each release by the socket, whether its fd was still open and
    still in the hub's epoll set (it must have left the set, and not be closed yet).
    """

    def __init__(self, ws: FastWebSocket, hub: Hub) -> None:
        self._ws, self._hub = ws, hub
        self.released: list[tuple[bool, bool]] = []

    def fileno(self) -> int:
        return self._ws.fileno()

    def parkable(self) -> bool:
        return self._ws.parkable()

    def read_nowait(self) -> bool:
        return self._ws.read_nowait()

    def message_nowait(self) -> bytes | None:
        return self._ws.message_nowait()

    def attach_parking(self, parking: HubParking) -> None:
        seam = self

        class Spy:
            def release(self) -> None:
                parking.release()
                fd = seam.fileno()
                seam.released.append((fd != -1, fd in in_epoll_set(seam._hub)))

        self._ws.attach_parking(Spy())

    def detach_parking(self) -> None:
        self._ws.detach_parking()


def in_epoll_set(hub: Hub) -> set[int]:
    """The fds the kernel holds in the hub's epoll set (/proc/self/fdinfo of the epoll fd)."""
    assert hub._ep is not None
    with open(f"/proc/self/fdinfo/{hub._ep.fileno()}") as info:
        return {int(line.split()[1]) for line in info if line.startswith("tfd:")}


async def test_the_hub_reads_a_socket_through_its_public_seam_only() -> None:
    ws, peer = server_ws()
    async with trio.open_nursery() as nursery:
        hub = Hub()
        await nursery.start(hub.run)
        seam = SeamOnly(ws, hub)
        assert isinstance(seam, Parkable)
        got: list[bytes] = []
        results: list[object] = []
        nursery.start_soon(parked_until_back, hub, seam, got, results)
        await until(lambda: hub.parked == 1, "parked")
        assert in_epoll_set(hub) == {ws.fileno()}
        peer.sendall(text(b"one") + text(b"two"))
        await until(lambda: len(got) == 2, "handled")
        peer.sendall(client_wire(Frame(Opcode.PING, b"hi")))  # the protocol's: handed back
        await until(lambda: results, "handed back")
        assert got == [b"one", b"two"] and results == [True] and hub.parked == 0 and not in_epoll_set(hub)
        nursery.cancel_scope.cancel()
    peer.close()
    ws.abort("test over")


@pytest.mark.parametrize("how", ["close", "abort"])
async def test_closing_a_parked_socket_takes_it_out_of_the_epoll_set_before_its_fd_closes(how: str) -> None:
    ws, peer = server_ws()
    async with trio.open_nursery() as nursery:
        hub = Hub()
        await nursery.start(hub.run)
        seam = SeamOnly(ws, hub)
        results: list[object] = []
        nursery.start_soon(parked_until_back, hub, seam, [], results)
        await until(lambda: hub.parked == 1, "parked")
        fd = ws.fileno()
        assert fd in in_epoll_set(hub)
        peer.close()  # the peer is gone: close() does not wait for its close frame
        with trio.fail_after(5):
            await ws.close() if how == "close" else ws.abort("cut")
        assert seam.released == [(True, False)]  # released while its fd was open, out of the set already
        assert ws.fileno() == -1 and hub.parked == 0 and fd not in in_epoll_set(hub)
        await until(lambda: results, "the parked task woken")
        assert results == [True] and ws._parking is None
        nursery.cancel_scope.cancel()


async def test_cancelling_the_parked_task_takes_the_socket_out_of_the_hub() -> None:
    hub = Hub()
    ws, peer = server_ws()
    got: list[bytes] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        async with trio.open_nursery() as call:  # the call's nursery
            call.start_soon(parked_until_back, hub, ws, got, [])
            await until(lambda: hub.parked == 1, "parked")
            call.cancel_scope.cancel()
        assert hub.parked == 0 and ws._parking is None
        peer.sendall(text(b"after the call"))
        await trio.sleep(0.1)
        assert got == []  # nobody handles a finished call's frames
        nursery.cancel_scope.cancel()
    assert ws.parkable()  # nothing was read from it: its frame is still in the kernel
    peer.close()
    ws.abort("test over")


async def test_a_failing_handler_raises_in_its_own_task_only() -> None:
    hub = Hub()
    (bad, bad_peer), (good, good_peer) = server_ws(), server_ws()
    results: list[object] = []
    got: list[bytes] = []

    def broken(msg: bytes) -> bool:
        raise ValueError("a bug in the handler")

    async def park_broken() -> None:
        try:
            await hub.park(bad, broken)
        except ValueError as exc:
            results.append(exc)

    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        nursery.start_soon(park_broken)
        nursery.start_soon(parked_until_back, hub, good, got, [])
        await until(lambda: hub.parked == 2, "parked")
        bad_peer.sendall(text(b"boom"))
        good_peer.sendall(text(b"fine"))
        await until(lambda: results and got, "both handled")
        assert str(results[0]) == "a bug in the handler" and got == [b"fine"] and hub.parked == 1
        nursery.cancel_scope.cancel()
    for peer in (bad_peer, good_peer):
        peer.close()
    for ws in (bad, good):
        ws.abort("test over")


async def test_a_handler_that_cannot_finish_gets_the_socket_handed_back_with_the_rest_unread() -> None:
    async with one_parked(keep=False) as p:
        p.peer.sendall(text(b"first") + text(b"second") + text(b"third"))
        await until(lambda: p.results, "handed back")
        assert p.got == [b"first"]  # the hub stopped at once: the rest is the task's, in order
        with trio.fail_after(5):
            assert [await p.ws.receive_text(), await p.ws.receive_text()] == [b"second", b"third"]


async def test_a_stopping_hub_hands_every_socket_back_and_parks_no_more() -> None:
    hub = Hub()
    ws, peer = server_ws()
    results: list[object] = []
    async with trio.open_nursery() as outer:
        async with trio.open_nursery() as hub_nursery:
            await hub_nursery.start(hub.run)
            outer.start_soon(parked_until_back, hub, ws, [], results)
            await until(lambda: hub.parked == 1, "parked")
            hub_nursery.cancel_scope.cancel()
        await until(lambda: results, "handed back")
        assert results == [True]
        assert await hub.park(ws, lambda m: True) is False  # not running: the task reads itself
    peer.close()
    ws.abort("test over")


async def test_a_partial_write_leaves_a_backlog_every_later_write_waits_behind() -> None:
    ws, peer = server_ws()
    peer.setblocking(False)
    big = b"a" * 400_000  # more than a socketpair's buffers take at once
    assert ws.send_nowait([big]) is True
    assert ws.backlogged
    assert ws.send_nowait([b"next"]) is False  # nothing sent: it would overtake the backlog
    received = bytearray()

    async def read_peer(until_len: int) -> None:
        with trio.fail_after(5):
            while len(received) < until_len:
                try:
                    received.extend(peer.recv(1 << 16))
                except BlockingIOError:
                    await trio.sleep(0.001)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_peer, len(big) + 10 + len(b"after"))
        await ws.send_text(b"after")  # an ordinary send waits behind the backlog
        assert not ws.backlogged
    head = 10  # a 400,000-byte server frame: 2 + 8 bytes of header
    assert bytes(received[head:head + len(big)]) == big
    assert bytes(received[head + len(big):]) == b"\x81\x05after"
    peer.close()
    ws.abort("test over")


async def test_a_wss_leg_is_read_by_the_hub_and_written_without_a_wait(nursery: trio.Nursery) -> None:
    """The real OpenAI leg is ``wss://``: TLS on memory buffers keeps it on the hub's path."""
    import ssl

    from trio_websocket import WebSocketRequest, serve_websocket

    from llc.ws import handshake

    trustme = pytest.importorskip("trustme", reason="trustme (test extra) makes the throwaway CA")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    heard: list[str] = []

    async def peer(request: WebSocketRequest) -> None:
        ws = await request.accept()
        for n in range(20):
            await ws.send_message(f"m{n}")
        await ws.send_message("x" * 70_000)  # over four TLS records
        heard.append(str(await ws.get_message()))  # then the handler returns: a close frame

    server = await nursery.start(serve_websocket, peer, "127.0.0.1", 0, server_ctx)
    hub = Hub()
    await nursery.start(hub.run)
    with trio.fail_after(10):
        ws = await handshake.connect(f"wss://127.0.0.1:{server.port}/v1/realtime", [], ssl_context=client_ctx)
    got: list[bytes] = []
    results: list[object] = []
    nursery.start_soon(parked_until_back, hub, ws, got, results)
    await until(lambda: len(got) == 21, "every message through the hub")
    assert got[:20] == [b"m%d" % n for n in range(20)] and got[20] == b"x" * 70_000 and results == []
    assert ws.send_nowait([b"from the hub's path"])  # encrypted and written at once
    await until(lambda: heard, "the peer heard it")
    assert heard == ["from the hub's path"]
    await until(lambda: results, "the close frame handed back")
    with trio.fail_after(5), pytest.raises(TransportClosed) as info:
        await ws.receive_text()
    assert info.value.code == 1000
    await ws.close()

"""A loopback TCP relay that can freeze a connection: the network fault the polite ones miss.

Real networks stall instead of closing: a NAT mapping dies, a peer hangs, packets stop and
both sockets stay open. ``freeze`` stops relaying one connection in both directions and reads
nothing more from either side, so the peer's writes fill the kernel buffers and its pings go
unanswered, exactly as on a dead path. ``cut`` closes it abruptly (a reset). Between faults
the relay is a plain byte pump; it sits in front of the fake OpenAI or of llc's own port.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

CHUNK = 65536


@dataclass(eq=False)
class ProxiedConnection:
    client: trio.SocketStream
    head: bytes = b""  # the first bytes the client sent (e.g. b"GET /media ...")
    opened_at: float = field(default_factory=trio.current_time)
    frozen: bool = False
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)

    def freeze(self) -> None:
        self.frozen = True

    def cut(self) -> None:
        self.scope.cancel()


class StallProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections: list[ProxiedConnection] = []

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._handle, listeners)

    def freeze_where(self, head_prefix: bytes) -> int:
        """Freeze every open connection whose first bytes start with ``head_prefix``; how many."""
        hits = [c for c in self.connections if c.head.startswith(head_prefix) and not c.scope.cancel_called]
        for conn in hits:
            conn.freeze()
        return len(hits)

    async def _handle(self, client: trio.SocketStream) -> None:
        conn = ProxiedConnection(client)
        self.connections.append(conn)
        try:
            with conn.scope:
                upstream = await trio.open_tcp_stream(*self.target)
                async with upstream, client, trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, conn, client, upstream, True)
                    nursery.start_soon(self._pump, conn, upstream, client, False)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            conn.scope.cancel()

    async def _pump(self, conn: ProxiedConnection, src: trio.SocketStream, dst: trio.SocketStream,
                    from_client: bool) -> None:
        while True:
            if conn.frozen:
                await trio.sleep_forever()  # read nothing, send nothing: the socket stays open
            data = await src.receive_some(CHUNK)
            if not data:
                conn.scope.cancel()  # one side closed: the relay closes both, as a NAT would
                return
            if from_client and not conn.head:
                conn.head = data[:64]
            if conn.frozen:
                await trio.sleep_forever()
            await dst.send_all(data)

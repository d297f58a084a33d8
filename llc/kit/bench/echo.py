"""A loopback WebSocket echo server on the fast engine: the floor a relay is measured against.

Run as its own process by the relay bench (``python -m llc.kit.bench.echo``); it prints its port
on stdout and echoes every message until stdin closes or it is signalled.
"""

from __future__ import annotations

import sys

import trio

from llc.ws import handshake
from llc.ws.transport import TransportClosed


async def _echo(stream: trio.SocketStream) -> None:
    ws = await handshake.accept(stream, "/echo", max_size=1 << 20)
    if ws is None:
        return
    try:
        while True:
            await ws.send_text(await ws.receive_text())
    except TransportClosed:
        pass
    finally:
        await ws.close()


async def main() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    print(listeners[0].socket.getsockname()[1], flush=True)
    await trio.serve_listeners(_echo, listeners)


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        sys.exit(0)

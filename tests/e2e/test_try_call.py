"""The try-a-call endpoints without a browser: only this console's own pages may start a call
or open its socket, a socket without the page's ticket is refused, and a full server says so."""

from __future__ import annotations

import httpx
import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from llc.web.try_call import CALL_PREFIX, same_origin
from tests.helpers.stack import StackFactory
from tests.helpers.twilio_raw import start_frame

EVIL = "http://rebound.example"


async def upgrade_status(admin_url: str, host: str, origin: str) -> int:
    """The status line's code of a WebSocket upgrade to the try socket with these Host and Origin
    (a client library sets Host itself: this writes the request by hand)."""
    address = httpx.URL(admin_url)
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(address.host, address.port or 80)
        async with stream:
            await stream.send_all((f"GET /console/try/media HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n"
                                   "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode())
            head = await stream.receive_some(1024)
    return int(head.split(b" ", 2)[1])


@pytest.mark.parametrize(("origin", "host", "ok"), [
    (None, "127.0.0.1:9080", True), ("http://127.0.0.1:9080", "127.0.0.1:9080", True),
    ("http://LOCALHOST:9080", "localhost:9080", True), (EVIL, "127.0.0.1:9080", False),
    ("http://127.0.0.1:9081", "127.0.0.1:9080", False), ("null", "127.0.0.1:9080", False),
])
def test_only_the_listeners_own_pages_count_as_same_origin(origin: str | None, host: str, ok: bool) -> None:
    assert same_origin(origin, host) is ok


async def test_another_sites_page_can_neither_start_a_call_nor_open_the_socket(start_stack: StackFactory) -> None:
    stack = await start_stack()
    async with httpx.AsyncClient(base_url=stack.admin_url, timeout=5) as client:
        refused = await client.post("/console/try/start", json={}, headers={"Origin": EVIL})
        assert refused.status_code == 403 and "another site" in refused.text
        issued = await client.post("/console/try/start", json={"called": "+1 555 0100"}, headers={"Origin": stack.admin_url})
        assert issued.status_code == 200
        call = issued.json()
        assert call["call_sid"].startswith(CALL_PREFIX) and call["parameters"]["called"] == "+1 555 0100"
        assert (await client.get(f"/console/try/{call['call_sid']}.json")).status_code == 404  # no call yet
        assert (await client.get("/console/try/CAother.json")).status_code == 404
    socket_url = stack.admin_url.replace("http", "ws", 1) + "/console/try/media"
    with pytest.raises(HandshakeError):
        async with open_websocket_url(socket_url, extra_headers=[("Origin", EVIL)]):
            pass
    # A rebinding domain's page: its own origin and Host, neither of them this machine's name.
    assert await upgrade_status(stack.admin_url, "rebound.example", EVIL) == 403
    assert await upgrade_status(stack.admin_url, stack.admin_url.removeprefix("http://"), stack.admin_url) == 101
    # The page's own origin, but no ticket: admitted as a socket, refused as a call (1008).
    async with open_websocket_url(socket_url) as ws:
        await ws.send_message(start_frame(call_sid=CALL_PREFIX + "0" * 32))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason.code == 1008
    assert stack.state.active_calls == 0


async def test_a_full_server_says_why_no_call_can_start(start_stack: StackFactory) -> None:
    stack = await start_stack(settings={"max_calls": 1})
    async with httpx.AsyncClient(base_url=stack.admin_url, timeout=5) as client:
        assert (await client.post("/console/try/start", json={})).status_code == 200  # its ticket holds the line
        full = await client.post("/console/try/start", json={})
    assert full.status_code == 503 and "LLC_MAX_CALLS=1" in full.text
    assert orjson.loads((await httpx.AsyncClient().get(stack.base_url + "/healthz")).content)["active_calls"] == 0

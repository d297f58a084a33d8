"""Deployment hardening through the real server on loopback: the admin surface is not on PORT, signatures
match the URL Twilio was given (public or instance), final statuses free capacity, and the
drain turns calls away only after the checks, waits for ringing calls and then cancels them."""

from __future__ import annotations

import httpx
import trio
from trio_websocket import open_websocket_url
from twilio.request_validator import RequestValidator

from llc.kit.sim.fake_caller import parse_twiml
from llc.kit.sim.fake_twilio import Behaviour, FakeTwilioConfig
from llc.web.drain import drain
from tests.helpers.outbound_stack import start_outbound
from tests.helpers.stack import StackFactory
from tests.helpers.twilio_raw import first_event, speak, start_frame

TOKEN = "twilio-auth-token-for-tests"
FORM = {"CallSid": "CAdep", "From": "+15550100001", "To": "+15550100002", "Direction": "inbound"}
PUBLIC = "https://voice.example.com"
INSTANCE = "https://a.voice.example.com"


def sign(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


# ---- item 2: two surfaces ------------------------------------------------------------------


async def test_metrics_and_debug_are_only_on_the_admin_listener(start_stack: StackFactory) -> None:
    stack = await start_stack(settings={"trusted_proxies": "127.0.0.1"})
    assert stack.admin_url != stack.base_url and stack.admin_url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient(timeout=5) as client:
        for path in ("/metrics", "/debug/tasks"):
            # What a proxy on the same host forwards: the TCP peer is loopback, the client is not.
            proxied = await client.get(stack.base_url + path, headers={"X-Forwarded-For": "203.0.113.9"})
            direct = await client.get(stack.base_url + path)
            assert (proxied.status_code, direct.status_code) == (404, 404), path
            assert (await client.get(stack.admin_url + path)).status_code == 200
        assert "llc_active_calls" in (await client.get(stack.admin_url + "/metrics")).text
        assert (await client.get(stack.base_url + "/healthz")).status_code == 200
        assert (await client.get(stack.admin_url + "/twiml")).status_code == 404  # nothing public on admin


async def test_admin_listener_off_loopback_needs_the_bearer_token(start_stack: StackFactory) -> None:
    # 127.0.0.2 is a loopback *network* address but not LOOPBACK_HOSTS: it stands in for a LAN address.
    stack = await start_stack(settings={"admin_host": "127.0.0.2", "api_token": "adm"})
    async with httpx.AsyncClient(timeout=5) as client:
        bare = await client.get(stack.admin_url + "/metrics")
        wrong = await client.get(stack.admin_url + "/debug/tasks", headers={"Authorization": "Bearer nope"})
        right = await client.get(stack.admin_url + "/metrics", headers={"Authorization": "Bearer adm"})
    assert stack.admin_url.startswith("http://127.0.0.2:")
    assert (bare.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert bare.headers["WWW-Authenticate"].startswith("Bearer")


async def test_admin_listener_on_loopback_answers_only_loopback_names(start_stack: StackFactory) -> None:
    """A page on a rebinding domain reaches 127.0.0.1 too, under its own name: refused, unless it has the token."""
    stack = await start_stack(settings={"api_token": "adm"})
    port = stack.admin_url.rsplit(":", 1)[1]
    async with httpx.AsyncClient(timeout=5) as client:
        async def status(path: str, host: str, **headers: str) -> int:
            return (await client.get(stack.admin_url + path, headers={"Host": host, **headers})).status_code

        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}", "LOCALHOST"):
            assert await status("/metrics", host) == 200, host
        for host in (f"rebind.example.com:{port}", "127.0.0.1.nip.io", f"evil.test:{port}", "localhost:80x", ""):
            for path in ("/console/live.json", "/metrics", "/debug/tasks", "/console/"):
                assert await status(path, host) == 403, (host, path)
        refused = await client.get(stack.admin_url + "/metrics", headers={"Host": "rebind.example.com"})
        assert "not a loopback name" in refused.text and "127.0.0.1" in refused.text
        assert await status("/metrics", "rebind.example.com", Authorization="Bearer adm") == 200
        ok = await client.get(stack.admin_url + "/console/live.json")
    assert ok.status_code == 200 and "access-control-allow-origin" not in ok.headers
    assert ok.headers["Cross-Origin-Resource-Policy"] == "same-origin"


# ---- item 1: signatures against the URL Twilio was given -----------------------------------


async def test_instance_url_signatures_are_accepted_for_stream_and_callbacks(start_stack: StackFactory) -> None:
    stack = await start_stack(settings={"twilio_auth_token": TOKEN, "public_url": PUBLIC, "instance_url": INSTANCE})
    async with httpx.AsyncClient(timeout=5) as client:
        async def post(path: str, url: str, form: dict[str, str] = FORM) -> int:
            resp = await client.post(stack.base_url + path, data=form, headers={"X-Twilio-Signature": sign(url, form)})
            return resp.status_code

        answer = await client.post(stack.base_url + "/twiml", data=FORM,
                                   headers={"X-Twilio-Signature": sign(PUBLIC + "/twiml", FORM)})
        status = {"CallSid": "CAdep", "CallStatus": "ringing"}
        assert await post("/twilio/status", INSTANCE + "/twilio/status", status) == 204  # the dial's callback URL
        assert await post("/twilio/status", PUBLIC + "/twilio/status", status) == 204  # a console-set one
        assert await post("/twilio/status", "https://other.example.com/twilio/status", status) == 403
    assert answer.status_code == 200
    stream_url, params = parse_twiml(answer.text)
    assert stream_url == "wss://a.voice.example.com/media"  # the instance holding the pre-accept session
    headers = [(b"X-Twilio-Signature", sign(stream_url, {}).encode())]
    async with open_websocket_url(stack.media_url, extra_headers=headers) as ws:
        await ws.send_message(start_frame("MZdep", "CAdep", **params))
        await speak(ws, 400, then_silence_ms=300, stream_sid="MZdep")
        await first_event(ws, "media")  # admitted: the agent answers


# ---- item 4: capacity freed by the final status ----------------------------------------------


async def test_unanswered_outbound_calls_give_their_slots_back(nursery: trio.Nursery) -> None:
    numbers = {f"+1555010010{n}": Behaviour(outcome="no-answer", answer_ms=100) for n in range(3)}
    stack = await start_outbound(nursery, twilio=FakeTwilioConfig(ring_ms=0, numbers=numbers),
                                 settings={"max_calls": 3})
    sids = [(await stack.dial(to, prewarm=False)).json()["call_sid"] for to in numbers]
    for sid in sids:
        await stack.finished(sid)
    with trio.fail_after(2):
        while any(not stack.state.dialer.calls[s].statuses or stack.state.dialer.calls[s].statuses[-1]["status"]
                  != "no-answer" for s in sids):
            await trio.sleep(0.01)
    assert stack.state.active_calls == 0
    form = {**FORM, "CallSid": "CAnext"}
    async with httpx.AsyncClient(timeout=5) as client:
        url = stack.base_url + "/twiml"
        answer = await client.post(url, data=form, headers={"X-Twilio-Signature": sign(url, form, stack.twilio.config.auth_token)})
    assert "<Stream" in answer.text, answer.text  # not "all our lines are busy"
    assert (await stack.dial("+15550100199", prewarm=False)).status_code == 201


# ---- item 5: the drain -------------------------------------------------------------------------


async def test_drain_checks_first_refuses_new_calls_and_cancels_the_ringing(nursery: trio.Nursery) -> None:
    ringing_to, answering_to = "+15550100201", "+15550100202"
    numbers = {ringing_to: Behaviour(answer_ms=30_000), answering_to: Behaviour(answer_ms=300)}
    stack = await start_outbound(nursery, twilio=FakeTwilioConfig(ring_ms=0, numbers=numbers),
                                 settings={"drain_fallback_number": "+15550100999"})
    ringing = (await stack.dial(ringing_to, prewarm=False)).json()["call_sid"]
    answering = (await stack.dial(answering_to, prewarm=False)).json()["call_sid"]
    done = trio.Event()

    async def run_drain() -> None:
        await drain(stack.state, timeout_s=3.5)
        done.set()

    started = trio.current_time()
    nursery.start_soon(run_drain)
    await trio.sleep(0.05)
    async with httpx.AsyncClient(timeout=5) as client:
        url = stack.base_url + "/twiml"
        unsigned = await client.post(url, data=FORM)
        signed = await client.post(url, data=FORM, headers={"X-Twilio-Signature": sign(url, FORM, stack.twilio.config.auth_token)})
    refused = await stack.dial("+15550100203")
    assert unsigned.status_code == 403 and "+15550100999" not in unsigned.text  # no fallback number for strangers
    assert "<Dial>+15550100999</Dial>" in signed.text
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1

    answered = await stack.finished(answering, timeout=10)  # waited for: answered while draining, talked, hung up
    assert answered.result is not None and answered.result.ended_by == "caller_hangup"
    with trio.fail_after(10):
        await done.wait()
    assert trio.current_time() - started >= 3.4  # the ringing call was waited for until the deadline...
    call = stack.twilio.calls[ringing]
    assert [u.get("Status") for u in call.updates] == ["canceled"]
    assert call.status == "canceled"  # ...then cancelled through the REST API, never answered
    assert [r.end_reason for r in stack.state.records] == ["caller_hangup"]

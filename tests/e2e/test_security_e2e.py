"""Signatures, stream admission and limits through the real server, on loopback."""

from __future__ import annotations

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url
from twilio.request_validator import RequestValidator

from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller, parse_twiml
from tests.helpers.stack import StackFactory
from tests.helpers.twilio_raw import call_tasks, first_event, speak, start_frame

TOKEN = "twilio-auth-token-for-tests"
FORM = {"CallSid": "CAsig", "From": "+15550100001", "To": "+15550100002", "Direction": "inbound"}


def sign(url: str, params: dict[str, str]) -> str:
    return RequestValidator(TOKEN).compute_signature(url, params)


async def post(url: str, form: dict[str, str], signature: str | None) -> httpx.Response:
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.post(url, data=form, headers=headers)


async def close_code(url: str, signature: str | None, frames: list[str] = ()) -> int | None:  # type: ignore[assignment]
    """Open a media stream, send ``frames``, return the close code the server chose."""
    headers = [(b"X-Twilio-Signature", signature.encode())] if signature else []
    with trio.fail_after(5):
        async with open_websocket_url(url, extra_headers=headers) as ws:
            for frame in frames:
                await ws.send_message(frame)
            try:
                while True:
                    await ws.get_message()
            except ConnectionClosed as exc:
                return exc.reason.code
    return None


@pytest.mark.parametrize("path", ["/twiml", "/twilio/status", "/twilio/amd"])
async def test_unsigned_or_mis_signed_webhooks_get_403(start_stack: StackFactory, path: str) -> None:
    stack = await start_stack(settings={"twilio_auth_token": TOKEN})
    url = stack.base_url + path
    assert (await post(url, FORM, None)).status_code == 403
    assert (await post(url, FORM, sign(url, {**FORM, "CallSid": "CAother"}))).status_code == 403
    assert (await post(url, FORM, RequestValidator("wrong-token").compute_signature(url, FORM))).status_code == 403
    assert (await post(url, FORM, sign(url, FORM))).status_code in (200, 204)


async def test_mis_signed_stream_upgrade_is_closed_1008(start_stack: StackFactory) -> None:
    stack = await start_stack(settings={"twilio_auth_token": TOKEN})
    assert await close_code(stack.media_url, None) == 1008
    assert await close_code(stack.media_url, sign(stack.media_url + "x", {})) == 1008
    assert stack.fake.sessions == [] and stack.state.records == type(stack.state.records)()  # no call began
    # The same upgrade, signed, is a call.
    result = await FakeCaller(stack.base_url, CallerScript([CallerTurn("Hello?")], max_call_s=10), auth_token=TOKEN).run()
    assert result.ended_by == "caller_hangup" and result.received_audio


async def test_signatures_behind_a_proxy_use_public_url(start_stack: StackFactory) -> None:
    public = "https://voice.example.com"
    stack = await start_stack(settings={"twilio_auth_token": TOKEN, "public_url": public})
    resp = await post(stack.base_url + "/twiml", FORM, sign(public + "/twiml", FORM))  # local URL, public signature
    assert resp.status_code == 200
    stream_url, params = parse_twiml(resp.text)
    assert stream_url == "wss://voice.example.com/media"
    local_media = stack.base_url.replace("http", "ws") + "/media"
    headers = [(b"X-Twilio-Signature", sign(stream_url, {}).encode())]
    async with open_websocket_url(local_media, extra_headers=headers) as ws:
        await ws.send_message(start_frame("MZsig", "CAsig", **params))
        await speak(ws, 400, then_silence_ms=300, stream_sid="MZsig")
        await first_event(ws, "media")  # admitted: the agent answers
    assert await close_code(local_media, sign(local_media, {})) == 1008  # the local URL's signature is not Twilio's


async def test_stream_with_unknown_reused_or_foreign_token_is_refused(start_stack: StackFactory, caplog) -> None:
    stack = await start_stack()

    async def stream(call_sid: str, token: str) -> int | None:
        return await close_code(stack.media_url, None, [start_frame(f"MZ{call_sid}", call_sid, stream_token=token)])

    assert await stream("CA1", "made-up") == 1008
    token = stack.stream_token("CA2")
    assert await stream("CA3", token) == 1008  # CA2's token on another call
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("media stream refused")]
    assert refusals == ["media stream refused: unknown or already used stream token",
                        "media stream refused: stream token belongs to another call"]
    assert stack.fake.sessions == []  # no OpenAI session was opened for them
    assert not stack.state.records and await stack.state.store.get_call("CA1") is None  # nothing written
    async with open_websocket_url(stack.media_url) as ws:  # CA2's own stream is a call...
        await ws.send_message(start_frame("MZCA2", "CA2", stream_token=token))
        await speak(ws, 400, then_silence_ms=300, stream_sid="MZCA2")
        await first_event(ws, "media")
        assert await stream("CA2", stack.stream_token("CA2")) == 1008  # ...a second stream for it is not
    await stack.wait_records(1)
    assert await stream("CA2", token) == 1008  # and its token, replayed after use, is spent
    # A refused stream under the real call's CallSid rewrites nothing of its record.
    stored = await stack.state.store.get_call("CA2")
    assert stored is not None and stored["end_reason"] != "stream_refused" and len(stack.state.records) == 1
    assert call_tasks() == [] and stack.state.active_calls == 0


async def test_with_admission_off_unspent_tokens_do_not_hold_call_slots(start_stack: StackFactory) -> None:
    # Found by a 50-call soak: with admission off, tokens are never spent, so counting them
    # answered busy after LLC_MAX_CALLS webhooks within one token TTL, with no call running.
    stack = await start_stack(settings={"max_calls": 2, "stream_admission": False})
    async with httpx.AsyncClient(timeout=5) as client:
        answers = [await client.post(stack.base_url + "/twiml", data={**FORM, "CallSid": f"CA{i}"}) for i in range(4)]
    assert all("<Stream" in a.text for a in answers)


async def test_over_max_calls_the_webhook_answers_busy(start_stack: StackFactory) -> None:
    stack = await start_stack(settings={"max_calls": 1})
    async with httpx.AsyncClient(timeout=5) as client:
        first = await client.post(stack.base_url + "/twiml", data=FORM)
        second = await client.post(stack.base_url + "/twiml", data={**FORM, "CallSid": "CA2"})
    assert "<Stream" in first.text  # its token counts until the stream arrives
    assert "<Say>Sorry, all our lines are busy" in second.text and "<Hangup" in second.text


async def test_calls_api_is_rate_limited(start_stack: StackFactory) -> None:
    stack = await start_stack(settings={"api_token": "k", "calls_per_minute": 2})
    async with httpx.AsyncClient(timeout=5) as client:
        auth = {"Authorization": "Bearer k"}
        codes = [(await client.post(stack.base_url + "/calls", json={}, headers=auth)).status_code for _ in range(3)]
        limited = await client.post(stack.base_url + "/calls", json={}, headers=auth)
        wrong = await client.post(stack.base_url + "/calls", json={}, headers={"Authorization": "Bearer nope"})
    assert codes == [400, 400, 429]
    assert int(limited.headers["Retry-After"]) >= 1 and wrong.status_code == 401


def test_switching_signatures_off_is_said_at_start_up() -> None:
    from llc.config import Settings
    from llc.web.security import posture_warnings, signatures_checked

    on = Settings(twilio_auth_token="t")
    off = Settings(twilio_auth_token="t", twilio_signatures=False)
    assert signatures_checked(on) and not signatures_checked(off)
    assert posture_warnings(on) == [] and "NOT checked" in posture_warnings(off)[0]
    assert "TWILIO_AUTH_TOKEN is not set" in posture_warnings(Settings(host="0.0.0.0"))[0]

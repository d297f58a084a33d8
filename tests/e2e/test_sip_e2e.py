"""Realtime over SIP, end to end through the server: OpenAI's webhook, accept, the sideband, tools, hang-up, the record.

OpenAI's side is the simulator (llc/kit/sim/fake_openai_sip.py); the official SDK is the oracle
for the webhook's signature (``webhooks.unwrap``) and for the accept body (its params type).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import trio
from openai import OpenAI
from openai.types.realtime import call_accept_params, call_refer_params, call_reject_params
from pydantic import TypeAdapter

from llc.app import Server, build_server, serve
from llc.config import Settings
from llc.events.signing import Signer, new_message_id, new_secret
from llc.kit.sim.fake_openai_sip import FakeOpenAISip, FakeSipCall, SipScript
from llc.profile import load_profile

SECRET = new_secret()
IVR_NUMBER = "+15550100020"


async def start(nursery: trio.Nursery, tmp_path: Path, **settings: Any) -> tuple[FakeOpenAISip, Server, str]:
    fake = FakeOpenAISip(SECRET)
    await nursery.start(fake.serve)
    opts: dict[str, Any] = {"port": 0, "openai_realtime_url": fake.realtime_url, "openai_api_url": fake.api_url,
                            "openai_webhook_secret": SECRET, "db_url": str(tmp_path / "llc.db"),
                            "pending_records_path": str(tmp_path / "pending.jsonl"), **settings}
    server = build_server(Settings(**opts), load_profile())
    binds = await nursery.start(serve, server)
    return fake, server, binds[0] + "/openai/webhook"


async def stored(server: Server, call_id: str, timeout: float = 10.0) -> dict[str, Any]:
    with trio.fail_after(timeout):
        while True:
            row = await server.store.get_call(call_id)
            if row is not None and row.get("ended_at") is not None:
                return row
            await trio.sleep(0.02)


async def test_a_call_from_webhook_to_stored_record(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake, server, hook = await start(nursery, tmp_path)
    call = fake.add_call(SipScript([("say", "Hi, I am done, bye."), ("tool", "end_call", '{"reason": "done"}')]))
    assert await fake.ring(hook, call) == 200
    with trio.fail_after(10):
        await call.closed.wait()
    row = await stored(server, call.call_id)
    # Accept came first, with a body the SDK's own params type takes, semantic VAD and no audio formats.
    assert fake.requests[0] == (call.call_id, "accept")
    body = call.accept_body
    assert body is not None
    TypeAdapter(call_accept_params.CallAcceptParams).validate_python(body)
    assert body["type"] == "realtime" and body["model"] == server.settings.openai_model
    assert body["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"
    assert "format" not in body["audio"]["input"] and [t["name"] for t in body["tools"]] == ["end_call"]  # lean
    # After the first reply, as on Media Streams: calmer VAD and the full tool set, once.
    kinds = [e["type"] for e in call.received]
    switch = call.received[0]["session"]
    assert kinds.count("session.update") == 1 and kinds[0] == "session.update"
    assert switch["audio"]["input"]["turn_detection"]["eagerness"] == "medium"
    assert [t["name"] for t in switch["tools"]] == ["end_call", "transfer_call"]
    # end_call: its output went back, the goodbye was asked for and said, then llc hung up.
    assert kinds[1:3] == ["conversation.item.create", "response.create"]
    assert call.hung_up and (call.call_id, "hangup") in fake.requests
    assert row["path"] == "sip" and row["end_reason"] == "agent_hangup"
    assert row["from_number"] == "+15559998888" and row["to_number"] == "+15550001000"
    said = [(line["role"], line["text"]) for line in row["transcript"]]
    assert ("caller", "Hi, I am done, bye.") in said and ("agent", "Goodbye!") in said
    assert [t["name"] for t in row["tool_calls"]] == ["end_call"] and row["tool_calls"][0]["error"] is None
    assert len(row["turns"]) == 1 and row["turns"][0]["ms"] is not None
    assert server.active_calls == 0


async def test_ivr_by_called_number_key_press_becomes_a_refer(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake, server, hook = await start(nursery, tmp_path)
    call = fake.add_call(SipScript([("dtmf", "1")]))
    assert await fake.ring(hook, call, to=IVR_NUMBER) == 200
    with trio.fail_after(10):
        await call.closed.wait()
    row = await stored(server, call.call_id)
    assert call.accept_body is not None and "route_call" in [t["name"] for t in call.accept_body["tools"]]
    assert row["scenario"] == "ivr" and row["dtmf"] == ["1"]
    assert row["routes"][0]["action"] == "transfer"
    assert call.refer_to == "tel:+15550102001"
    assert (row["end_reason"], row["end_detail"]) == ("transferred", "transferred to tel:+15550102001")
    TypeAdapter(call_refer_params.CallReferParams).validate_python(call.bodies["refer"])  # what the SDK would send


async def test_the_sdk_verifies_what_the_simulator_signs() -> None:
    fake = FakeOpenAISip(SECRET)
    body = b'{"object":"event","id":"evt_1","type":"realtime.call.incoming","created_at":1,"data":{"call_id":"rtc_1","sip_headers":[]}}'
    headers = fake.signer.headers(new_message_id(), body, time.time())
    event = OpenAI(api_key="sk-test", webhook_secret=SECRET).webhooks.unwrap(body, headers)
    assert event.type == "realtime.call.incoming" and event.data.call_id == "rtc_1"


@pytest.mark.parametrize("case", ["bad-signature", "stale"])
async def test_forged_or_stale_webhooks_start_nothing(nursery: trio.Nursery, tmp_path: Path, case: str) -> None:
    fake, server, hook = await start(nursery, tmp_path)
    call = fake.add_call()
    if case == "bad-signature":
        status = await fake.ring(hook, call, signer=Signer(new_secret()))
    else:
        status = await fake.ring(hook, call, at=time.time() - 600)
    assert status in (400, 401)
    await trio.sleep(0.3)
    assert fake.requests == [] and server.calls.total == 0


async def test_replayed_and_duplicated_webhooks_start_one_call(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake, server, hook = await start(nursery, tmp_path)
    call = fake.add_call(SipScript([("wait", 0.3), ("hangup",)]))
    msg_id = new_message_id()
    assert await fake.ring(hook, call, msg_id=msg_id) == 200
    assert await fake.ring(hook, call, msg_id=msg_id) == 200  # the same delivery again
    assert await fake.ring(hook, call) == 200  # the same call, another delivery
    with trio.fail_after(10):
        await call.closed.wait()
    row = await stored(server, call.call_id)
    assert row["end_reason"] == "caller_hangup" and not call.hung_up
    assert [r for r in fake.requests if r[1] == "accept"] == [(call.call_id, "accept")]
    assert server.calls.total == 1


async def test_over_max_calls_is_rejected_busy(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake, _, hook = await start(nursery, tmp_path, max_calls=1)
    first = fake.add_call(SipScript([("wait", 5)]))
    second = fake.add_call()
    assert await fake.ring(hook, first) == 200
    with trio.fail_after(5):
        while first.state != "accepted":
            await trio.sleep(0.02)
    assert await fake.ring(hook, second) == 200
    with trio.fail_after(5):
        while second.state == "ringing":
            await trio.sleep(0.02)
    assert second.state == "rejected" and second.reject_status == 486
    TypeAdapter(call_reject_params.CallRejectParams).validate_python(second.bodies["reject"])
    assert (second.call_id, "accept") not in fake.requests


async def test_caller_gone_before_accept_is_no_call(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake, server, hook = await start(nursery, tmp_path)
    call: FakeSipCall = fake.add_call(gone_before_accept=True)
    assert await fake.ring(hook, call) == 200
    with trio.fail_after(5):
        while (call.call_id, "accept") not in fake.requests:
            await trio.sleep(0.02)
    await trio.sleep(0.2)
    assert await server.store.get_call(call.call_id) is None
    assert not server.calls.sip and server.active_calls == 0


async def test_the_models_transfer_is_a_refer_within_the_allow_list(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake, server, hook = await start(nursery, tmp_path)
    call = fake.add_call(SipScript([("tool", "transfer_call", '{"number": "+15550109999"}'),
                                    ("tool", "transfer_call", '{"number": "+15550102002"}')]))
    assert await fake.ring(hook, call, to="+15550100022") == 200  # the CSR line: +15550102002 is on its list
    with trio.fail_after(10):
        await call.closed.wait()
    row = await stored(server, call.call_id)
    assert call.refer_to == "tel:+15550102002" and [r[1] for r in fake.requests].count("refer") == 1
    TypeAdapter(call_refer_params.CallReferParams).validate_python(call.bodies["refer"])
    first, second = row["tool_calls"]
    assert "transfer list" in first["output"] and '"transferred_to":"+15550102002"' in second["output"]
    assert row["scenario"] == "csr" and row["end_reason"] == "transferred"


async def test_barge_ins_are_recorded_with_and_without_words(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake, server, hook = await start(nursery, tmp_path)
    replies = ["We open at nine.", "On Sundays we are closed, but on", "No, closed on Sundays.", "Is there anything",
               "Sorry, go ahead."]
    call = fake.add_call(SipScript([("say", "When do you open?"), ("barge", "And Sundays?"), ("barge", ""),
                                    ("wait", 0.2), ("hangup",)], replies=replies))
    assert await fake.ring(hook, call) == 200
    with trio.fail_after(10):
        await call.closed.wait()
    row = await stored(server, call.call_id)
    assert [b["words"] for b in row["barge_ins"]] == [True, False] and row["barge_ins_without_words"] == 1
    cut = {line["text"]: line for line in row["transcript"] if line["interrupted"]}
    assert set(cut) == {replies[1], replies[3]}
    # Heard: the time the service played each reply before clearing it (the simulator clears 0.3 s in).
    for barge in row["barge_ins"]:
        assert 250 <= barge["heard_ms"] <= 1500 and barge["heard_ms"] == cut[next(
            line["text"] for line in row["transcript"] if line["item_id"] == barge["item_id"])]["heard_ms"]
    assert row["end_reason"] == "caller_hangup" and row["openai_errors"] == {}


async def test_the_calls_api_rides_one_kept_alive_connection(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake, server, hook = await start(nursery, tmp_path)
    for _ in range(3):
        call = fake.add_call(SipScript([("tool", "end_call", '{"reason": "done"}')]))
        assert await fake.ring(hook, call) == 200
        with trio.fail_after(10):
            await call.closed.wait()
        await stored(server, call.call_id)
    assert [verb for _, verb in fake.requests] == ["accept", "hangup"] * 3
    assert fake.connections == 1  # no new TCP (on the real API: TLS) handshake on a caller's ring


async def test_a_kept_alive_connection_the_api_closed_does_not_cost_a_call(nursery: trio.Nursery,
                                                                            tmp_path: Path) -> None:
    fake, server, hook = await start(nursery, tmp_path)
    fake.idle_close_s = 0.2
    for _ in range(2):
        call = fake.add_call(SipScript([("wait", 0.05), ("hangup",)]))
        assert await fake.ring(hook, call) == 200
        row = await stored(server, call.call_id)
        assert row["end_reason"] == "caller_hangup" and call.accept_body is not None
        await trio.sleep(0.5)  # the API closes the idle connection the pool still holds
    assert fake.connections == 2


@pytest.mark.parametrize(("fault", "reason"), [
    pytest.param({"accept_fails": 400}, "openai_session_rejected", id="refused"),
    pytest.param({"accept_fails": 500}, "openai_unreachable", id="server-error"),
    pytest.param({"accept_hangs": True}, "openai_unreachable", id="no-answer"),
])
async def test_a_call_openai_would_not_accept_is_declined_and_recorded(nursery: trio.Nursery, tmp_path: Path,
                                                                        fault: dict[str, Any], reason: str) -> None:
    fake, server, hook = await start(nursery, tmp_path)
    call = fake.add_call(SipScript([("wait", 10)]), **fault)
    began = trio.current_time()
    assert await fake.ring(hook, call) == 200
    row = await stored(server, call.call_id, timeout=15)
    assert trio.current_time() - began < 5 + 3 + 1  # the accept's bound, then the decline's
    assert (row["end_reason"], row["path"]) == (reason, "sip") and "accept" in row["end_detail"]
    assert call.reject_status == 603 and call.sidebands == 0  # declined, never steered
    TypeAdapter(call_reject_params.CallRejectParams).validate_python(call.bodies["reject"])
    assert server.active_calls == 0 and not server.calls.sip


async def test_the_60_minute_session_limit_ends_the_call_as_a_length_limit(nursery: trio.Nursery,
                                                                           tmp_path: Path) -> None:
    fake, server, hook = await start(nursery, tmp_path)
    call = fake.add_call(SipScript([("say", "Hi"), ("expire",)]))
    assert await fake.ring(hook, call) == 200
    row = await stored(server, call.call_id)
    assert row["end_reason"] == "max_call_length" and "60-minute session limit" in row["end_detail"]
    assert row["openai_errors"] == {"session_expired": 1} and call.sidebands == 1  # not reopened
    assert (call.call_id, "hangup") in fake.requests


async def test_a_bug_before_a_call_starts_declines_that_call_only(nursery: trio.Nursery, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fake, server, hook = await start(nursery, tmp_path)
    plan = server.router.plan_inbound

    async def broken_for_one(call_id: str, caller: str, called: str) -> Any:
        if called == "+15550009999":
            raise RuntimeError("a bug in planning")
        return await plan(call_id, caller, called)

    monkeypatch.setattr(server.router, "plan_inbound", broken_for_one)
    broken, fine = fake.add_call(SipScript([("wait", 5)])), fake.add_call(SipScript([("wait", 0.05), ("hangup",)]))
    assert await fake.ring(hook, broken, to="+15550009999") == 200
    assert await fake.ring(hook, fine) == 200
    row = await stored(server, fine.call_id)  # the server goes on
    assert row["end_reason"] == "caller_hangup"
    with trio.fail_after(5):
        while broken.reject_status is None:
            await trio.sleep(0.02)
    assert broken.reject_status == 603 and broken.accept_body is None


async def test_max_call_length_hangs_up(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake, server, hook = await start(nursery, tmp_path, max_call_s=0.5)
    call = fake.add_call(SipScript([("wait", 10)]))
    assert await fake.ring(hook, call) == 200
    with trio.fail_after(10):
        await call.closed.wait()
    row = await stored(server, call.call_id)
    assert row["end_reason"] == "max_call_length" and call.hung_up


async def test_a_key_press_switches_the_scenario_with_a_session_the_service_takes(nursery: trio.Nursery,
                                                                                  tmp_path: Path) -> None:
    fake, server, hook = await start(nursery, tmp_path)
    call = fake.add_call(SipScript([("dtmf", "2"), ("wait", 0.2), ("hangup",)]))
    assert await fake.ring(hook, call, to=IVR_NUMBER) == 200
    with trio.fail_after(10):
        await call.closed.wait()
    row = await stored(server, call.call_id)
    # The scenario's own session (the first-reply switch, if the greeting finished first, has no instructions).
    updates = [e for e in call.received if e["type"] == "session.update" and "instructions" in e["session"]]
    assert len(updates) == 1 and "Harbour Road" in updates[0]["session"]["instructions"]  # the receptionist's facts
    assert row["scenario"] == "ivr>receptionist" and row["openai_errors"] == {}
    # The IVR speaks first: its greeting was asked for as soon as the sideband was up.
    assert call.received[0]["type"] == "conversation.item.create" and call.received[1]["type"] == "response.create"


async def test_the_fake_accept_refuses_server_vad_knobs_like_the_real_one(nursery: trio.Nursery) -> None:
    import httpx

    fake = FakeOpenAISip(SECRET)
    await nursery.start(fake.serve)
    call = fake.add_call()
    td = {"type": "server_vad", "threshold": 0.5}
    async with httpx.AsyncClient() as client:
        bad = await client.post(f"{fake.api_url}/realtime/calls/{call.call_id}/accept",
                                json={"type": "realtime", "audio": {"input": {"turn_detection": td}}})
        good = await client.post(f"{fake.api_url}/realtime/calls/{call.call_id}/accept",
                                 json={"type": "realtime", "audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}})
    assert (bad.status_code, good.status_code) == (400, 200) and call.state == "accepted"


async def test_a_broken_sideband_is_reopened_once(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake, server, hook = await start(nursery, tmp_path)
    call = fake.add_call(SipScript([("say", "Hello?"), ("drop",)]))
    assert await fake.ring(hook, call) == 200
    row = await stored(server, call.call_id)
    assert call.sidebands == 2 and row["reconnects"] == ["sideband dropped (code 1011)"]
    assert row["end_reason"] == "caller_hangup" and not call.hung_up


async def test_the_console_lists_a_live_sip_call(nursery: trio.Nursery, tmp_path: Path) -> None:
    import httpx

    fake, server, hook = await start(nursery, tmp_path)
    call = fake.add_call(SipScript([("say", "Hello?"), ("wait", 1.0), ("hangup",)]))
    assert await fake.ring(hook, call) == 200
    with trio.fail_after(5):
        while not server.calls.sip or not server.active_calls:
            await trio.sleep(0.02)
    assert server.admin_url is not None
    async with httpx.AsyncClient() as client:
        live = (await client.get(f"{server.admin_url}/console/live.json")).json()["active"]
    assert [(r["call_sid"], r["path"]) for r in live] == [(call.call_id, "sip")]
    await stored(server, call.call_id)


async def test_a_draining_server_rejects_busy(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake, server, hook = await start(nursery, tmp_path)
    server.draining = True
    call = fake.add_call()
    assert await fake.ring(hook, call) == 200
    with trio.fail_after(5):
        while call.state == "ringing":
            await trio.sleep(0.02)
    assert call.reject_status == 486


async def test_the_sip_demo_runs_a_whole_call_to_its_record(tmp_path: Path) -> None:
    from llc.kit.sip_demo import render_sip, run_sip_demo

    demo = await run_sip_demo(str(tmp_path / "demo.db"))
    lines: list[str] = []
    assert render_sip(demo, lines.append), lines
    TypeAdapter(call_accept_params.CallAcceptParams).validate_python(demo.accept)
    assert demo.record["path"] == "sip" and [t["name"] for t in demo.record["tool_calls"]] == ["end_call"]
    assert 0 < demo.webhook_to_accept_ms < 5000 and any("webhook -> accept" in line for line in lines)

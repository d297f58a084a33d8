"""Each inbound mode end to end in the simulator, asserting on what was stored; pre-accept;
records of calls that end by a fault. The mode runs repeat against PostgreSQL when reachable."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio
import trio_websocket

from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller, parse_twiml
from llc.kit.sim.fake_openai import ToolCallScript
from llc.kit.sim.modes import SALES, SCRIPTS, ModeScript, run_mode
from tests.helpers.pg import pg_url_or_skip
from tests.helpers.stack import StackFactory
from tests.helpers.twilio_raw import first_event, speak, start_frame


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "modes.db") if request.param == "sqlite" else pg_url_or_skip(request)


ENDED = "the call ended while the tool ran"


def tools(record: dict) -> list[tuple[str, str]]:
    return [(t["name"], t["output"] or "") for t in record["tool_calls"]]


async def test_ivr_dtmf_hint_then_spoken_choice_transfers(db_url: str) -> None:
    run = await run_mode("ivr", db_url=db_url)
    rec = run.record
    assert run.openai_errors == [] and rec["path"] == "pre-accept" and rec["dtmf"] == ["0"]
    assert [(r["via"], r["action"]) for r in rec["routes"]] == [("dtmf", "hint"), ("speech", "transfer")]
    [tool] = rec["tool_calls"]
    # Twilio ends the stream as it redirects, sometimes before the REST call has returned.
    assert tool["name"] == "route_call" and (SALES in (tool["output"] or "") or tool["error"] == ENDED)
    assert run.twilio_call.dialed == [SALES]  # Twilio really got <Dial>
    assert (rec["end_reason"], rec["end_detail"]) == ("transferred", f"transferred to {SALES}")  # not a hang-up
    assert [line["role"] for line in rec["transcript"]][:2] == ["agent", "agent"]  # menu, then menu again


async def test_ivr_dtmf_switches_to_receptionist_who_takes_a_message(db_url: str) -> None:
    script = ModeScript(
        "ivr", "+15550100020", "+15550100041",
        turns=[CallerTurn("", dtmf="2"), CallerTurn("Please have someone call me back.")],
        replies=["Acme: sales, reception, or orders and support?", "Front desk, how can I help?"],
        user_transcripts=["Please have someone call me back."],
        tool_calls={2: ToolCallScript("take_message", {"name": "Eve", "number": "+15550107000", "reason": "callback"},
                                      reply_after="Noted, goodbye.")})
    run = await run_mode("ivr", db_url=db_url, script=script)
    rec = run.record
    assert run.openai_errors == [] and rec["scenario"] == "ivr>receptionist"
    assert rec["routes"][0]["target"] == "receptionist"
    [message] = run.messages
    assert (message["name"], message["scenario"], message["caller_id"]) == ("Eve", "receptionist", "+15550100041")
    assert ("take_message", f'{{"ok":true,"message_id":{message["id"]}}}') in tools(rec)


async def test_ivr_dtmf_transfer_key() -> None:
    script = ModeScript("ivr", "+15550100020", "+15550100042", turns=[CallerTurn("", dtmf="1")],
                        replies=["Sales, reception, or support?"], user_transcripts=[])
    run = await run_mode("ivr", script=script)
    assert run.twilio_call.dialed == [SALES]
    [tool] = run.record["tool_calls"]
    assert tool["name"] == "transfer_call" and tool["arguments"] == f'{{"number":"{SALES}"}}'
    assert '"ok":true' in (tool["output"] or "") or tool["error"] == ENDED
    assert run.record["end_reason"] == "transferred"


async def test_receptionist_answers_and_stores_a_message(db_url: str) -> None:
    run = await run_mode("receptionist", db_url=db_url)
    rec = run.record
    assert run.openai_errors == [] and rec["end_reason"] == "caller_hangup"
    assert [(t["role"], t["text"]) for t in rec["transcript"]][:2] == [
        ("agent", "Acme front desk, how can I help?"), ("caller", "Are you open on Saturday?")]
    [message] = run.messages
    assert (message["name"], message["number"], message["callback_time"]) == ("Dana Fox", "+15550107777", "tomorrow morning")
    assert message["call_sid"] == rec["call_sid"]
    assert [n for n, _ in tools(rec)] == ["take_message"]
    assert all(t["ms"] is not None for t in rec["turns"])


async def test_csr_looks_up_orders_by_caller_id_and_opens_a_ticket(db_url: str) -> None:
    run = await run_mode("csr", db_url=db_url)
    rec = run.record
    assert run.openai_errors == [] and rec["from_number"] == "+15550100001"
    (n1, orders), (n2, ticket) = tools(rec)
    assert n1 == "get_orders" and "A1001" in orders and "B2001" not in orders  # only Ann's orders
    [row] = run.tickets
    assert n2 == "create_ticket" and f'"ticket":{row["id"]}' in ticket
    assert (row["customer_id"], row["subject"], row["call_sid"]) == ("C001", "Spare jug wrong size", rec["call_sid"])


async def test_csr_unknown_caller_gets_no_orders() -> None:
    csr = SCRIPTS["csr"]
    script = ModeScript(**{**csr.__dict__, "caller": "+15550109999", "turns": csr.turns[:1],
                           "tool_calls": {0: csr.tool_calls[0]}})
    run = await run_mode("csr", script=script)
    [(_, orders)] = tools(run.record)
    assert "not identified" in orders


async def _webhook(base_url: str, sid: str, to: str = "+15550100021") -> tuple[str, dict[str, str]]:
    async with httpx.AsyncClient(timeout=5) as client:
        resp = await client.post(base_url + "/twiml", data={"CallSid": sid, "From": "+15550100050", "To": to,
                                                            "Direction": "inbound"})
    assert resp.status_code == 200
    return parse_twiml(resp.text)


async def test_pre_accept_session_is_configured_before_the_stream_starts(start_stack: StackFactory) -> None:
    stack = await start_stack(replies=["Front desk.", "Sure."], user_transcripts=["Hi there"])
    url, params = await _webhook(stack.base_url, "CApre1")
    assert params["scenario"] == "receptionist" and stack.warm_named(params["stream_token"])
    with trio.fail_after(5):
        while stack.state.warm.stats["ready"] < 1:
            await trio.sleep(0.01)
    ready_at = trio.current_time()  # configured and primed; no stream exists yet
    script = CallerScript(turns=[CallerTurn("Hi there")], wait_first_reply=True, max_call_s=15)
    result = await FakeCaller("", script, call_sid="CApre1").run_stream(url, params)
    await stack.wait_records(1)
    record, session = stack.state.records[-1], stack.fake.sessions[-1]
    assert record.path == "pre-accept" and result.ended_by == "caller_hangup"
    updates = [t for t, kind in session.timeline if kind == "session.update"]
    assert len(updates) >= 1 and updates[0] < ready_at  # the only setup update came before the stream
    assert len(stack.fake.sessions) == 1 and session.errors_sent == []
    assert "receptionist of Acme" in session.received[0]["session"]["instructions"]  # the receptionist's prompt


async def test_pre_accept_session_closed_when_the_stream_never_comes(start_stack: StackFactory) -> None:
    stack = await start_stack(settings={"preaccept_hold_s": 0.3})
    await _webhook(stack.base_url, "CAnostream")
    with trio.fail_after(5):
        while stack.state.warm.stats["ready"] < 1:
            await trio.sleep(0.01)
    with trio.fail_after(0.3 + 2.0):
        while stack.state.warm.live or stack.fake.open_sessions:
            await trio.sleep(0.01)
    assert stack.state.warm.stats["claimed"] == 0 and stack.state.warm.stats["failed"] == 1


async def test_pre_accept_off_connects_cold(start_stack: StackFactory) -> None:
    stack = await start_stack(settings={"preaccept": False})
    url, params = await _webhook(stack.base_url, "CAcold", to="+15559990000")
    assert not stack.warm_named(params["stream_token"]) and params["scenario"] == "default"
    await FakeCaller("", CallerScript(turns=[CallerTurn("Hello?")], max_call_s=10), call_sid="CAcold").run_stream(url, params)
    await stack.wait_records(1)
    assert stack.state.records[-1].path == "cold"


@pytest.mark.parametrize("which", ["twilio", "openai"])
async def test_call_killed_mid_turn_keeps_its_record(start_stack: StackFactory, which: str) -> None:
    long = "Let me tell you everything about our opening hours, our address and our returns policy in detail."
    stack = await start_stack(replies=[long], user_transcripts=["What are your hours?"])
    async with trio_websocket.open_websocket_url(stack.media_url) as ws:
        sid = f"CAkill{which}"
        await ws.send_message(start_frame(call_sid=sid, stream_token=stack.stream_token(sid)))
        await speak(ws, 600, then_silence_ms=300)
        await first_event(ws, "media")  # the agent is mid-reply
        if which == "openai":
            stack.fake.refuse_next = 5  # the one reconnect fails too: the call is lost for good
            assert stack.fake.drop_open_sessions() == 1
            with trio.fail_after(5):  # the server ends the call and closes the Twilio socket
                try:
                    while True:
                        await ws.get_message()
                except trio_websocket.ConnectionClosed:
                    pass
    await stack.wait_records(1)
    with trio.fail_after(5):
        while (stored := await stack.state.store.get_call(f"CAkill{which}")) is None or not stored["ended_at"]:
            await trio.sleep(0.02)
    assert stored["end_reason"] == ("twilio_closed" if which == "twilio" else "openai_lost")
    assert [(t["role"], t["text"]) for t in stored["transcript"]] == [("caller", "What are your hours?")]
    assert stored["ended_at"] is not None

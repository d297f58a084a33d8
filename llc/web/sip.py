"""Realtime over SIP on the server: ``POST /openai/webhook`` and the calls it starts.

The route verifies OpenAI's signature, answers 200 at once and queues the call; the
server's nursery (``serve_sip_calls``) picks the scenario by the number called, refuses with
486 at LLC_MAX_CALLS or while draining, and runs each call in a nursery of its own
(``llc.sip.call``).
"""

from __future__ import annotations

import trio
from quart import Response, request
from quart_trio import QuartTrio

from llc import metrics
from llc.call.record_writer import RecordWriter
from llc.log import get_logger
from llc.sip.call import DECLINE, SipCall
from llc.sip.control import FAILURES
from llc.sip.webhook import IncomingCall
from llc.web import security
from llc.web.server import Server

log = get_logger("web.sip")

BUSY = 486  # SIP Busy Here


def register(app: QuartTrio, server: Server) -> None:
    @app.post("/openai/webhook")
    async def openai_webhook() -> Response:
        guard = server.sip_inbox.guard
        if guard is None:
            return Response("SIP is off: set OPENAI_WEBHOOK_SECRET", status=404)
        body = await request.get_data(cache=False, as_text=False, parse_form_data=False)
        assert isinstance(body, bytes)
        verdict = guard.check(body, dict(request.headers))
        if verdict.call is None:
            level = log.warning if verdict.status >= 400 else log.info
            level("OpenAI webhook: %s", verdict.why, extra={"status": verdict.status})
            return Response(verdict.why, status=verdict.status)
        refused = server.sip_inbox.offer(verdict.call)
        if refused is not None:
            log.info("OpenAI webhook not started: %s", refused, extra={"call_sid": verdict.call.call_id})
        return Response("", status=200)


async def serve_sip_calls(server: Server, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Run every SIP call the webhook queued, each in its own task of this nursery; the calls API's
    pooled client outlives them all (a call's last hang-up goes out on it)."""
    async with server.sip.control.pooled(), trio.open_nursery() as nursery:
        task_status.started()
        async for incoming in server.sip_inbox.incoming:
            nursery.start_soon(run_sip_call_safely, server, incoming)


async def run_sip_call_safely(server: Server, incoming: IncomingCall) -> None:
    """One call's bug ends that call only: the other calls and the server keep running."""
    try:
        await run_sip_call(server, incoming)
    except Exception:
        log.exception("SIP call failed on an internal error before it started; declining it",
                      extra={"call_sid": incoming.call_id})
        with trio.move_on_after(3):
            try:
                await server.sip.control.reject(incoming.call_id, DECLINE)
            except FAILURES as exc:
                log.warning("reject failed: %s", exc, extra={"call_sid": incoming.call_id})


async def run_sip_call(server: Server, incoming: IncomingCall) -> None:
    call_id = incoming.call_id
    if server.draining or security.at_capacity(server):
        why = "draining" if server.draining else f"at LLC_MAX_CALLS={server.settings.max_calls}"
        log.warning("SIP call refused with 486: %s", why, extra={"call_sid": call_id})
        try:
            await server.sip.control.reject(call_id, BUSY)
        except FAILURES as exc:
            log.warning("reject failed: %s", exc, extra={"call_sid": call_id})
        return
    plan = await server.router.plan_inbound(call_id, incoming.caller, incoming.called)
    server.router.inbound.pop(call_id, None)  # no stream will claim it: the call starts here
    profile = plan.scenario.profile(server.router.profile)
    mode = server.router.mode(plan.scenario, profile, call_id, plan.caller, plan.called, plan.customer)
    call = SipCall(incoming, plan, mode, server.sip, RecordWriter(server.durable), profile.greeting or None,
                   profile.turn_policy)
    server.calls.sip_started(call)
    try:
        record = await call.run()
    finally:
        server.calls.sip_finished(call)
    if record is not None:
        metrics.record_call(record)

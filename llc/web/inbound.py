"""The inbound voice webhook's answer: pick the scenario, start pre-accept, return the TwiML.

Pre-accept: on ``POST /twiml`` the OpenAI session is opened and configured at once in the
warm-session registry (server nursery), while Twilio is still fetching our TwiML and opening
the stream; the stream claims it through its ticket, which names the warm session. Not ready
in time → the call connects cold; the stream never comes → the session is closed after
LLC_PREACCEPT_HOLD_S.
"""

from __future__ import annotations

from collections.abc import Mapping

import trio

from llc.log import get_logger
from llc.web.server import Server

log = get_logger("web.inbound")


async def answer(server: Server, form: Mapping[str, str], scenario_arg: str | None) -> str:
    """TwiML for a webhook; raises LookupError when there is no URL to give Twilio."""
    base = server.call_base_url
    if not base:
        raise LookupError("LLC_PUBLIC_URL is not set on the server")
    direction = "outbound" if form.get("Direction", "inbound").startswith("outbound") else "inbound"
    call_sid = form.get("CallSid", "")
    params = {"direction": direction, "scenario": scenario_arg or "default"}
    warm: str | None = None
    if direction == "inbound":
        caller, called = form.get("From", ""), form.get("To", "")
        plan = await server.router.plan_inbound(call_sid, caller, called)
        params.update(scenario=plan.scenario.name, caller=caller, called=called)
        if server.settings.preaccept and call_sid:
            warm = server.warm.start(plan.spec, purpose="pre-accept", call_sid=call_sid,
                                     hold_s=server.settings.preaccept_hold_s)
    twiml, _ = server.twiml.render(base, params, trio.current_time(), call_sid=call_sid or None, warm=warm)
    log.info("answered webhook with TwiML", extra={"call_sid": call_sid, "direction": direction,
                                                   "scenario": params["scenario"], "pre_accept": warm is not None})
    return twiml

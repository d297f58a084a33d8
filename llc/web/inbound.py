"""The inbound voice webhook's answer: pick the scenario, start pre-accept, return the TwiML.

Pre-accept (the seed's pattern): on ``POST /twiml`` the OpenAI session is opened and
configured at once in the warm-session registry (server nursery), while Twilio is still
fetching our TwiML and opening the stream; the stream claims it with the one-time token that
rides back in ``<Parameter name="warm_token">``. Not ready in time → the call connects cold;
the stream never comes → the session is closed after LLC_PREACCEPT_HOLD_S.
"""

from __future__ import annotations

from typing import Mapping

from llc.config import stream_url_for
from llc.log import get_logger
from llc.outbound.dialer import TOKEN_PARAM
from llc.twilio.twiml import connect_stream
from llc.web import security
from llc.web.state import ServerState

log = get_logger("web.inbound")


async def answer(state: ServerState, form: Mapping[str, str], scenario_arg: str | None) -> str:
    """TwiML for a webhook; raises LookupError when there is no URL to give Twilio."""
    base = state.call_base_url
    if not base:
        raise LookupError("PUBLIC_URL is not set on the server")
    stream_url = state.stream_url or stream_url_for(base)
    direction = "outbound" if form.get("Direction", "inbound").startswith("outbound") else "inbound"
    call_sid = form.get("CallSid", "")
    params = {"direction": direction, "scenario": scenario_arg or "default"}
    if direction == "inbound":
        caller, called = form.get("From", ""), form.get("To", "")
        plan = await state.router.plan_inbound(call_sid, caller, called)
        params.update(scenario=plan.scenario.name, caller=caller, called=called)
        if state.settings.preaccept and call_sid:
            token = state.warm.start(plan.spec, purpose="pre-accept", call_sid=call_sid,
                                     hold_s=state.settings.preaccept_hold_s)
            params[TOKEN_PARAM] = token
    params.update(security.stream_params(state, call_sid))  # one-time admission token
    log.info("answered webhook with TwiML", extra={"call_sid": call_sid, "direction": direction,
                                                   "scenario": params["scenario"], "pre_accept": TOKEN_PARAM in params})
    return connect_stream(stream_url, params)

"""Built-in tools: ``end_call`` and ``transfer_call``."""

from __future__ import annotations

from typing import Any

from twilio.twiml.voice_response import VoiceResponse

from llc.config import is_e164
from llc.tools.registry import ToolContext, ToolRegistry

BUILTIN = ToolRegistry()


@BUILTIN.add(
    "end_call",
    "Hang up the call after saying a short goodbye. Use when the caller is done or asks to end the call.",
    {"type": "object", "properties": {"reason": {"type": "string", "description": "why the call ends"}}},
)
async def end_call(ctx: ToolContext, reason: str = "") -> dict[str, Any]:
    # The hangup waits for the goodbye to be played (marks), never for a guessed sleep.
    await ctx.hang_up_after_goodbye()
    return {"ok": True, "next": "Say a brief goodbye now; the call ends when you finish speaking."}


@BUILTIN.add(
    "transfer_call",
    "Transfer the caller to a person at one of the allowed phone numbers (E.164, e.g. +15551234567).",
    {
        "type": "object",
        "properties": {"number": {"type": "string", "description": "E.164 number to transfer to"}},
        "required": ["number"],
    },
)
async def transfer_call(ctx: ToolContext, number: str) -> dict[str, Any]:
    number = number.strip().replace(" ", "").replace("-", "")
    if not is_e164(number):
        return {"ok": False, "error": f"{number!r} is not an E.164 number like +15551234567"}
    if number not in ctx.transfer_allow:
        # The model can be talked into anything; the allow-list cannot.
        return {"ok": False, "error": "that number is not on this line's transfer list; offer to take a message"}
    response = VoiceResponse()
    response.dial(number)
    await ctx.redirect(str(response))
    return {"ok": True, "transferred_to": number}

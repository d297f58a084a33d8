"""TwiML the server answers with, built by the official ``twilio`` helper (escaping included)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from twilio.twiml.voice_response import Connect, VoiceResponse


def connect_stream(stream_url: str, parameters: dict[str, str]) -> str:
    """``<Connect><Stream>`` with per-call values as ``<Parameter>``s: the URL takes no query string."""
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def say_and_hangup(text: str) -> str:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)


def say_and_dial(text: str, number: str) -> str:
    """Apologise, then hand the call to a person (the drain fallback number)."""
    response = VoiceResponse()
    response.say(text)
    response.dial(number)
    return str(response)


def dial_target(twiml: str) -> str | None:
    """The number of a ``<Response><Dial>NUMBER</Dial></Response>``, else None."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError:
        return None
    dial = root.find("Dial")
    text = (dial.text or "").strip() if dial is not None and len(dial) == 0 else ""
    return text or None

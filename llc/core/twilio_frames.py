"""Twilio Media Streams frames: parse what Twilio sends, build what it accepts. Pure, no I/O.

The twin of ``llc.core.openai_events`` for the other leg.

Parsing is strict about what the call logic relies on (event name, stream ids, payload type)
and lenient about the rest, so a new field from Twilio never breaks a call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

import orjson

DTMF_DIGITS = frozenset("0123456789*#ABCD")  # the keys of a phone's keypad, and the four of the full grid


class FrameError(ValueError):
    """A frame that cannot be used; the message says what was wrong with it."""


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str = "Call"


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str = ""
    custom_parameters: dict[str, str] = field(default_factory=dict)
    media_format: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Media:
    payload: str  # base64 mu-law, forwarded untouched
    timestamp: str = ""


@dataclass(frozen=True, slots=True)
class Mark:
    name: str


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Stop:
    call_sid: str = ""


TwilioEvent: TypeAlias = Connected | Start | Media | Mark | Dtmf | Stop


def _obj(frame: dict[str, Any], key: str) -> dict[str, Any]:
    value = frame.get(key)
    if not isinstance(value, dict):
        raise FrameError(f"{frame.get('event')} frame has no {key!r} object")
    return value


def _str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise FrameError(f"{where} frame has no {key!r} string")
    return value


def parse(text: str | bytes) -> TwilioEvent:
    """Parse one Twilio frame. Raises FrameError for anything the call cannot use."""
    return from_json(load(text))


def load(text: str | bytes) -> Any:
    """The frame's JSON value (``from_json`` says what it means)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"not JSON ({exc.msg})") from None


def inbound_payload(frame: Any) -> str | None:
    """The payload of an inbound ``media`` frame, or None for any other frame.

    The hot path's shortcut: for a frame that gives a payload here, ``from_json`` gives
    ``Media`` with that payload; the call relays only the payload.
    """
    if type(frame) is dict and frame.get("event") == "media":
        media = frame.get("media")
        if type(media) is dict:
            payload = media.get("payload")
            if type(payload) is str and media.get("track", "inbound") in _INBOUND:
                return payload
    return None


_INBOUND = ("inbound", "inbound_track")


def from_json(frame: Any) -> TwilioEvent:
    """What a parsed Twilio frame means. Raises FrameError for anything the call cannot use."""
    if not isinstance(frame, dict):
        raise FrameError("frame is not a JSON object")
    event = frame.get("event")
    if event == "media":
        media = _obj(frame, "media")
        payload = media.get("payload")
        if not isinstance(payload, str):
            raise FrameError("media frame has no payload string")
        track = media.get("track", "inbound")
        if track not in _INBOUND:
            raise FrameError(f"media frame on track {track!r}; only the inbound track is relayed")
        return Media(payload, str(media.get("timestamp", "")))
    if event == "mark":
        return Mark(_str(_obj(frame, "mark"), "name", "mark"))
    if event == "start":
        start = _obj(frame, "start")
        params = start.get("customParameters") or {}
        if not isinstance(params, dict):
            raise FrameError("start frame customParameters is not an object")
        return Start(
            stream_sid=_str(start, "streamSid", "start"),
            call_sid=_str(start, "callSid", "start"),
            account_sid=str(start.get("accountSid", "")),
            custom_parameters={str(k): str(v) for k, v in params.items()},
            media_format=start.get("mediaFormat") or {},
        )
    if event == "connected":
        return Connected(str(frame.get("protocol", "Call")))
    if event == "dtmf":
        digit = _str(_obj(frame, "dtmf"), "digit", "dtmf")
        if digit not in DTMF_DIGITS:
            raise FrameError(f"dtmf digit {digit[:8]!r} is not one of 0-9 * # A-D")
        return Dtmf(digit)
    if event == "stop":
        stop = frame.get("stop")
        return Stop(str(stop.get("callSid", "")) if isinstance(stop, dict) else "")
    raise FrameError(f"unknown event {event!r}")


def media(stream_sid: str, payload: str) -> str:
    """Outbound ``media`` frame; the payload string is placed untouched."""
    return orjson.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}}).decode()


def mark(stream_sid: str, name: str) -> str:
    return orjson.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}).decode()


def clear(stream_sid: str) -> str:
    return orjson.dumps({"event": "clear", "streamSid": stream_sid}).decode()

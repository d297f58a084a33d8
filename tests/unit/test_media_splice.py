"""The media fast lanes of the call core give exactly what the full parse gives, for any input.

Media frames skip the event objects and the dispatch (``tw.inbound_payload`` for Twilio's
``media``, ``AUDIO_DELTAS`` for OpenAI's audio deltas, in ``core/call.py``). Each case runs one
call core with the lanes and a twin with them switched off (the full parse only), feeds both
the same bytes and compares every action and the state the media path touches. Inputs are
real-shaped frames varied in every way that could matter (field order, extra and missing
fields, other events and tracks, escapes and non-base64 payloads, odd numbers and types,
spacing) and then, often, a random byte inserted, dropped or changed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from llc.core import openai_events as oa
from llc.core import twilio_frames as tw
from llc.core.actions import Action, ConnectOpenAI
from llc.core.call import CallCore
from llc.core.dialect import GA
from llc.core.session import SessionSpec

SID = "MZ0123456789abcdef"


@contextmanager
def full_parse_only() -> Iterator[None]:
    with mock.patch.object(tw, "inbound_payload", lambda frame: None), \
            mock.patch.object(oa, "AUDIO_DELTAS", ()):
        yield


def live_core(stream_sid: str = SID) -> CallCore:
    core = CallCore(GA, SessionSpec())
    assert core.on_twilio(tw.Start(stream_sid, "CA1"), 0.0) == [ConnectOpenAI()]
    core.on_openai_open()
    core.on_openai(oa.SessionUpdated(), 0.1)
    return core


def state(core: CallCore) -> tuple[Any, ...]:
    pl = core.playout
    return (core.record.frames_from_twilio, core.record.frames_to_twilio, core.record.bad_frames,
            list(core._pending), core.journal.awaiting_first_audio,
            [(i.item_id, i.received_bytes, i.marked_bytes, i.played_ms) for i in pl.items.values()],
            [(p[0], p[1].item_id, p[2], p[3]) for p in pl._pending], pl.play_end, pl.trip_s,
            sorted(core.talk.audio.muted_items))


def both(feed: list[tuple[str, bytes]], stream_sid: str = SID) -> tuple[list[list[Action]], list[list[Action]]]:
    """Feed the same frames to a spliced core and a full-parse twin; their actions per frame."""
    fast, full = live_core(stream_sid), live_core(stream_sid)
    out_fast, out_full = [], []
    for t, (leg, data) in enumerate(feed):
        now = 1.0 + t / 50
        if leg == "twilio":
            out_fast.append(fast.on_twilio_text(data, now))
            with full_parse_only():
                out_full.append(full.on_twilio_text(data, now))
        else:
            out_fast.append(fast.on_openai_text(data, now))
            with full_parse_only():
                out_full.append(full.on_openai_text(data, now))
        assert state(fast) == state(full)
    return out_fast, out_full


# ---- inputs ------------------------------------------------------------------------------

b64 = st.binary(min_size=0, max_size=200).map(lambda b: base64.b64encode(b).decode())
odd_text = st.text(max_size=12)  # quotes, backslashes, control characters, any unicode
ids = st.one_of(st.from_regex(r"[A-Za-z0-9_\-]{0,20}", fullmatch=True), odd_text)
scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), odd_text)
RAW_ESCAPES = ["AAAA\\u0041", "\\\"AA", "AA\\n", "A/\\/A"]  # escapes JSON allows where serialisers write none


def rarely(draw: st.DrawFn) -> bool:
    """One variation in eight: most frames keep the real shape, so the splice is exercised too."""
    return draw(st.integers(0, 7)) == 0


def usual(draw: st.DrawFn, common: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> Any:
    return draw(odd) if rarely(draw) else draw(common)


def _serialise(obj: dict[str, Any], style: int, raw_payload: str | None) -> bytes:
    if style == 1:
        data = json.dumps(obj).encode()  # Python's spaced style
    else:  # orjson's compact style (json: integers beyond 64 bits too), ASCII-escaped or not
        data = json.dumps(obj, separators=(",", ":"), ensure_ascii=style == 2).encode()
    if raw_payload is not None:
        data = data.replace(b"PAYLOAD_RAW", raw_payload.encode())
    return data


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """Often the frame as it is, otherwise one random byte inserted, dropped or changed."""
    how = draw(st.sampled_from(["keep", "keep", "keep", "insert", "drop", "change"]))
    if how == "keep" or not data:
        return data
    i = draw(st.integers(0, len(data) - (how != "insert")))
    byte = bytes([draw(st.integers(0, 255))])
    if how == "insert":
        return data[:i] + byte + data[i:]
    if how == "drop":
        return data[:i] + data[i + 1:]
    return data[:i] + byte + data[i + 1:]


def _vary(draw: st.DrawFn, obj: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """Rarely: another field order, a field missing, a field added or replaced."""
    if rarely(draw):
        obj = {k: obj[k] for k in draw(st.permutations(list(obj)))}
    if rarely(draw):
        obj.pop(draw(st.sampled_from(list(obj))))
    if rarely(draw):
        obj[draw(st.sampled_from(keys + ["extra"]))] = draw(scalar)
    return obj


def _finish(draw: st.DrawFn, obj: dict[str, Any], inner: dict[str, Any], key: str) -> bytes:
    raw = None
    if rarely(draw) and key in inner:
        raw = draw(st.sampled_from(RAW_ESCAPES))
        inner[key] = "PAYLOAD_RAW"
    style = usual(draw, st.just(0), st.integers(1, 2))
    return draw(mutated(_serialise(obj, style, raw)))


@st.composite
def twilio_frames(draw: st.DrawFn) -> bytes:
    digits = st.integers(0, 10**6).map(str)
    odd_digits = st.one_of(st.integers(0, 10**20).map(str), st.just("007"), odd_text, scalar)
    media: dict[str, Any] = {
        "track": usual(draw, st.sampled_from(["inbound", "inbound_track"]), st.sampled_from(["outbound", 7, "", None])),
        "chunk": usual(draw, digits, odd_digits), "timestamp": usual(draw, digits, odd_digits),
        "payload": usual(draw, b64, odd_text)}
    media = _vary(draw, media, ["payload", "track"])
    frame: dict[str, Any] = {"event": usual(draw, st.just("media"), st.sampled_from(["mark", "stop", "medias", 1])),
                             "sequenceNumber": usual(draw, digits, odd_digits)}
    sid_first = draw(st.booleans())
    sid = usual(draw, st.just(SID), ids)
    if sid_first:
        frame["streamSid"] = sid
    frame["media"] = usual(draw, st.just(media), scalar)
    if not sid_first and not rarely(draw):
        frame["streamSid"] = sid
    frame = _vary(draw, frame, ["event", "media", "streamSid"])
    return _finish(draw, frame, media, "payload")


@st.composite
def openai_events(draw: st.DrawFn) -> bytes:
    kind = usual(draw, st.sampled_from(["response.output_audio.delta"] * 3 + ["response.audio.delta"]),
                 st.sampled_from(["response.output_audio.done", "response.output_audio_transcript.delta",
                                  "input_audio_buffer.speech_started", "response.created"]))
    event: dict[str, Any] = {
        "type": kind, "event_id": usual(draw, st.from_regex(r"event_[A-Za-z0-9]{1,20}", fullmatch=True), ids),
        "response_id": usual(draw, st.sampled_from(["resp_1", "resp_2"]), st.one_of(st.just(""), ids)),
        "item_id": usual(draw, st.sampled_from(["item_1", "item_2"]), st.one_of(st.just(""), ids)),
        "output_index": usual(draw, st.integers(0, 3), st.one_of(st.integers(-(2**70), 2**70), st.floats(), scalar)),
        "content_index": usual(draw, st.just(0), st.one_of(st.integers(-(2**70), 2**70), scalar)),
        "delta": usual(draw, b64, odd_text)}
    event = _vary(draw, event, ["delta", "item_id", "type", "response_id"])
    return _finish(draw, event, event, "delta")


# ---- properties ----------------------------------------------------------------------------

@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(twilio_frames().map(lambda f: ("twilio", f)), openai_events().map(lambda e: ("openai", e))),
                min_size=1, max_size=12),
    st.sampled_from([SID, 'MZ"quoted\\sid', "MZ\u00e9"]))
def test_spliced_and_fully_parsed_frames_give_identical_actions(feed: list[tuple[str, bytes]], stream_sid: str) -> None:
    out_fast, out_full = both(feed, stream_sid)
    assert out_fast == out_full


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(["twilio", "openai"]))
def test_any_bytes_give_identical_actions(data: bytes, leg: str) -> None:
    for prefix in (b"", b'{"event":"media",', b'{"type":"response.output_audio.delta",'):
        out_fast, out_full = both([(leg, prefix + data)])
        assert out_fast == out_full


# ---- the lanes are taken for the frames that matter ------------------------------------------

# The frames are spelled out byte for byte, as the services send them (so %-templates, not JSON).
def real_twilio_media(payload: str, sid_first: bool) -> bytes:
    media = '"media":{"track":"inbound","chunk":"2","timestamp":"40","payload":"%s"}' % payload  # noqa: UP031
    sid = '"streamSid":"%s"' % SID  # noqa: UP031
    body = f"{sid},{media}" if sid_first else f"{media},{sid}"
    return ('{"event":"media","sequenceNumber":"4",%s}' % body).encode()  # noqa: UP031


def real_delta(delta: str, kind: str = "response.output_audio.delta") -> bytes:
    return ('{"type":"%s","event_id":"event_C1x","response_id":"resp_C1y","item_id":"item_C1z",'  # noqa: UP031
            '"output_index":0,"content_index":0,"delta":"%s"}' % (kind, delta)).encode()


def test_twilios_and_the_services_audio_frames_take_the_lanes() -> None:
    payload = base64.b64encode(bytes(range(160))).decode()
    for sid_first in (True, False):
        frame = real_twilio_media(payload, sid_first)
        assert tw.inbound_payload(orjson.loads(frame)) == payload
        with mock.patch.object(tw, "from_json", side_effect=AssertionError("the lane was not taken")):
            [append] = live_core().on_twilio_text(frame, 1.0)
        assert orjson.loads(append.text) == {"type": "input_audio_buffer.append", "audio": payload}
    for kind in oa.AUDIO_DELTAS:
        core = live_core()
        with mock.patch.object(oa, "from_json", side_effect=AssertionError("the lane was not taken")):
            [media] = core.on_openai_text(real_delta(payload, kind), 1.0)
        assert orjson.loads(media.text) == {"event": "media", "streamSid": SID, "media": {"payload": payload}}
        assert core.record.frames_to_twilio == 1 and core.playout.items["item_C1z"].received_bytes == 160


def test_other_frames_take_the_full_parse() -> None:
    frame = orjson.loads(real_twilio_media("AAEC/w==", True))
    assert tw.inbound_payload({**frame, "media": {**frame["media"], "track": "outbound"}}) is None
    assert tw.inbound_payload({**frame, "event": "mark"}) is None
    assert tw.inbound_payload({**frame, "media": {**frame["media"], "payload": 7}}) is None
    assert tw.inbound_payload([frame]) is None
    core = live_core()
    [log] = core.on_openai_text(b'{"type":["response.audio.delta"],"delta":"AA=="}', 1.0)  # unhashable: no raise
    assert "without a type" in log.msg

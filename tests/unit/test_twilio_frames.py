"""Twilio frame parsing and building, as data."""

import orjson
import pytest

from llc.core import twilio_frames as tw

START = {
    "event": "start",
    "sequenceNumber": "1",
    "streamSid": "MZ1",
    "start": {
        "streamSid": "MZ1",
        "accountSid": "AC1",
        "callSid": "CA1",
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"direction": "inbound", "scenario": "default"},
    },
}


def test_start_carries_ids_and_parameters() -> None:
    ev = tw.parse(orjson.dumps(START))
    assert ev == tw.Start("MZ1", "CA1", "AC1", {"direction": "inbound", "scenario": "default"}, START["start"]["mediaFormat"])


def test_media_payload_untouched() -> None:
    payload = "//79/Pv6+fj3"
    frame = {"event": "media", "sequenceNumber": "3", "streamSid": "MZ1",
             "media": {"track": "inbound", "chunk": "2", "timestamp": "40", "payload": payload}}
    assert tw.parse(orjson.dumps(frame)) == tw.Media(payload, "40")


@pytest.mark.parametrize(
    "text, reason",
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"event": "bogus"}', "unknown event"),
        ('{"event": "media"}', "no 'media' object"),
        ('{"event": "media", "media": {"payload": 5}}', "no payload string"),
        ('{"event": "media", "media": {"payload": "x", "track": "outbound"}}', "only the inbound track"),
        ('{"event": "start", "start": {"callSid": "CA1"}}', "no 'streamSid' string"),
        ('{"event": "mark", "mark": {}}', "no 'name' string"),
        ('{"event": "dtmf", "dtmf": {"digit": "55"}}', "not one of 0-9"),
        ('{"event": "dtmf", "dtmf": {"digit": "e"}}', "not one of 0-9"),
    ],
)
def test_bad_frames_say_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(tw.FrameError, match=reason):
        tw.parse(text)


def test_other_events() -> None:
    assert tw.parse('{"event":"connected","protocol":"Call","version":"1.0.0"}') == tw.Connected("Call")
    assert tw.parse('{"event":"mark","streamSid":"MZ1","mark":{"name":"m7"}}') == tw.Mark("m7")
    for digit in "0123456789*#ABCD":
        frame = {"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": digit}}
        assert tw.parse(orjson.dumps(frame)) == tw.Dtmf(digit)
    assert tw.parse('{"event":"stop","stop":{"accountSid":"AC1","callSid":"CA1"}}') == tw.Stop("CA1")


def test_outbound_frames() -> None:
    assert orjson.loads(tw.media("MZ1", "abc=")) == {"event": "media", "streamSid": "MZ1", "media": {"payload": "abc="}}
    assert orjson.loads(tw.mark("MZ1", "m1")) == {"event": "mark", "streamSid": "MZ1", "mark": {"name": "m1"}}
    assert orjson.loads(tw.clear("MZ1")) == {"event": "clear", "streamSid": "MZ1"}

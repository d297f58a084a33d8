"""Malformed Twilio media-stream frames, for fault injection and the live fuzz run.

Seeded, so a failing fuzz run repeats exactly. Each kind is something a broken or hostile
peer can put on the socket: not JSON, the wrong JSON type, missing or mistyped fields, bad
base64, unknown events, binary junk, oversized frames.
"""

from __future__ import annotations

import random

import orjson

KINDS = ("not_json", "wrong_type", "no_event", "bad_media", "bad_base64", "unknown_event",
         "bad_start", "bad_mark", "binary_junk", "oversized", "deep_nesting", "truncated")


def malformed_frame(rng: random.Random, stream_sid: str, max_bytes: int = 64 * 1024) -> str | bytes:
    """One malformed frame of a random kind."""
    kind = rng.choice(KINDS)
    junk = "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(1, 40)))
    if kind == "not_json":
        return "{" + junk
    if kind == "wrong_type":
        return orjson.dumps(rng.choice([[1, 2], "media", 42, None, True])).decode()
    if kind == "no_event":
        return orjson.dumps({"streamSid": stream_sid, "media": {"payload": "AAAA"}}).decode()
    if kind == "bad_media":
        return orjson.dumps({"event": "media", "streamSid": stream_sid, "media": rng.choice([None, 7, [], {"payload": 5}])}).decode()
    if kind == "bad_base64":
        return orjson.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": junk}}).decode()
    if kind == "unknown_event":
        return orjson.dumps({"event": junk, "streamSid": stream_sid}).decode()
    if kind == "bad_start":
        return orjson.dumps({"event": "start", "start": rng.choice([None, "x", {"callSid": 5}])}).decode()
    if kind == "bad_mark":
        return orjson.dumps({"event": "mark", "streamSid": stream_sid, "mark": rng.choice([None, {"name": 3}, "m"])}).decode()
    if kind == "binary_junk":
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if kind == "oversized":
        return '{"event":"media","media":{"payload":"' + "A" * (max_bytes + 16) + '"}}'
    if kind == "deep_nesting":
        depth = rng.randrange(100, 2000)
        return "[" * depth + "]" * depth
    text = orjson.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": "AAAA" * 10}}).decode()
    return text[: rng.randrange(1, len(text))]  # truncated

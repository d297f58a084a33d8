"""One call's story in time order, from its stored record (``CallRecord.as_dict()``). Pure.

`llc-phone calls show` prints it and the console renders it: turns, barge-ins with what was heard,
tool calls with their durations, key presses, routes, status callbacks and reconnects. Records
stored before a field existed simply lack it: every field is read with a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Entry:
    at: float | None  # seconds since the call started; None: the record does not say when
    kind: str  # caller | agent | barge-in | tool | key | route | status | reconnect | turn
    text: str
    detail: dict[str, Any] = field(default_factory=dict)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def timeline(r: dict[str, Any]) -> list[Entry]:
    entries: list[Entry] = []
    for line in r.get("transcript", []):
        detail = {k: line.get(k) for k in ("interrupted", "heard_ms", "generated_ms", "heard_text") if k in line}
        entries.append(Entry(_num(line.get("at")), line.get("role", "?"), line.get("text", ""), detail))
    for b in r.get("barge_ins", []):
        what = "nothing heard: the reply was deleted" if b.get("deleted") else f"heard {b.get('heard_ms', 0)} ms"
        if b.get("words") is False:
            what += "; the caller said no words: likely noise"
        entries.append(Entry(_num(b.get("at")), "barge-in", f"caller talked over the agent ({what})", dict(b)))
    for t in r.get("tool_calls", []):
        result = t.get("error") or t.get("output") or ""
        ms = t.get("ms")
        took = "still running when the call ended" if ms is None else f"{ms:g} ms"
        entries.append(Entry(_num(t.get("started_at")), "tool", f"{t.get('name')}({t.get('arguments', '')}) -> {result} [{took}]",
                             dict(t)))
    keys, keys_at = r.get("dtmf", []), r.get("dtmf_at", [])
    for i, digit in enumerate(keys):
        entries.append(Entry(_num(keys_at[i]) if i < len(keys_at) else None, "key", f"pressed {digit}", {"digit": digit}))
    for route in r.get("routes", []):
        entries.append(Entry(_num(route.get("at")), "route", f"{route.get('via')} {route.get('choice')!r} -> "
                             f"{route.get('action')} {route.get('target')}".rstrip(), dict(route)))
    started = _num(r.get("started_at"))
    for s in r.get("statuses", []):
        received = s.get("received")
        at = float(received) - started if started and isinstance(received, str) and received.replace(".", "", 1).isdigit() else None
        entries.append(Entry(round(at, 3) if at is not None else None, "status", f"Twilio status {s.get('status')}", dict(s)))
    for fall, turn in zip(waterfalls(r), (t for t in r.get("turns", []) if t.get("ms") is not None)):
        entries.append(Entry(_num(turn.get("speech_stopped_at")), "turn", f"caller stopped; {fall.said()}", dict(turn)))
    for note in r.get("reconnects", []):
        entries.append(Entry(None, "reconnect", f"OpenAI session renewed: {note}"))
    # Stable: at equal times the order above (what was said before what it caused) stands.
    return sorted(entries, key=lambda e: (e.at is None, e.at or 0.0))


@dataclass
class Waterfall:
    """One turn's latency in parts (ms); None where the record cannot tell."""

    turn: int
    vad_wait_ms: float | None  # the VAD's wait after the caller's speech ended (estimated)
    model_ms: float | None  # speech_stopped -> the first audio delta arrived
    relay_ms: float | None  # that delta in -> its frame written to Twilio

    @property
    def total_ms(self) -> float:
        """The voice-to-voice time (``TurnLatency.voice_to_voice_ms``), as the sum of its parts;
        without the VAD wait when that is unknown (``known`` says)."""
        return round(sum(v for v in (self.vad_wait_ms, self.model_ms, self.relay_ms) if v is not None), 1)

    @property
    def known(self) -> bool:
        return self.vad_wait_ms is not None

    def said(self) -> str:
        """One line: the number and the parts that make it up."""
        return (f"voice-to-voice {'' if self.known else '≥ '}{self.total_ms:.0f} ms = VAD wait ~{_ms(self.vad_wait_ms)} "
                f"+ model {_ms(self.model_ms)} + llc relay {_ms(self.relay_ms)}")


def _ms(v: float | None) -> str:
    return "?" if v is None else f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"


def waterfalls(r: dict[str, Any]) -> list[Waterfall]:
    falls = (waterfall(i, t) for i, t in enumerate(r.get("turns", []), 1))
    return [w for w in falls if w is not None]


def waterfall(n: int, t: dict[str, Any]) -> Waterfall | None:
    """Turn ``n``'s parts, or None when it got no spoken reply (a tool ran, the call ended)."""
    ms, relay = _num(t.get("ms")), _num(t.get("relay_ms"))
    if ms is None:
        return None
    # ``ms`` runs to the frame sent, so it holds the relay: the model's part is the rest.
    model = round(ms - relay, 1) if relay is not None else ms
    return Waterfall(n, _num(t.get("vad_wait_ms")), model, relay)

"""Every Realtime event on the wire, both ways, against the official SDK's GA models.

The product speaks the Realtime protocol without the ``openai`` package, and the simulator plays
the service; both could drift from the real API together and every other test would still pass.
Here the SDK is the oracle: each frame the product sent to the fake OpenAI must validate as a
``RealtimeClientEvent``, each frame the fake sent as a ``RealtimeServerEvent``, strictly (JSON
types as declared) and with no field the models do not declare. The traffic is that of real
runs: the demo call, the three inbound modes and a barge-in.

Only the GA shape is checked: the SDK has no models for the flat beta shape, so flat sessions
(none in these runs; the sim keeps their events as they were) are left out, not failed.
"""

from __future__ import annotations

import functools
import operator
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, get_args

import orjson
import pydantic
import trio
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent

from llc.core import openai_events as oa
from llc.kit.demo import run_demo
from llc.kit.sim import wire_log
from llc.kit.sim.fake_caller import CallerScript, CallerTurn, FakeCaller
from llc.kit.sim.fake_openai_sip import SipScript
from llc.kit.sim.modes import run_mode
from llc.kit.sip_demo import run_sip_demo

# The service's own bookkeeping in session.created/updated, which the SDK's session model (the
# create *request*) does not declare; the live service sends them, so the sim does too.
SERVICE_SESSION_FIELDS = frozenset({"session.id", "session.object", "session.expires_at"})
LONG = "Our opening hours are nine to five on weekdays, ten to two on Saturdays, and we are closed on Sundays."


def discriminated(union: Any) -> pydantic.TypeAdapter[Any]:
    """A TypeAdapter over the SDK's union, discriminated on ``type`` as the wire is.

    The SDK marks its unions with its own ``PropertyInfo(discriminator=...)``, which pydantic does
    not read; without a real discriminator an event would be tried against every member.
    """
    members = get_args(get_args(union)[0])
    union = functools.reduce(operator.or_, members)  # Union[...] of the members, built at run time
    return pydantic.TypeAdapter(Annotated[union, pydantic.Field(discriminator="type")])


CLIENT = discriminated(RealtimeClientEvent)
SERVER = discriminated(RealtimeServerEvent)


def undeclared(value: Any, path: str = "") -> list[str]:
    """Dotted paths of fields the models do not declare (the SDK's models keep extras, not reject them)."""
    def at(key: object) -> str:
        return f"{path}.{key}" if path else str(key)

    if isinstance(value, pydantic.BaseModel):
        found = [at(key) for key in value.model_extra or {}]
        for name in type(value).model_fields:
            found += undeclared(getattr(value, name), at(name))
        return found
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in undeclared(v, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in undeclared(v, at(k))]
    return []


def event_type(frame: str | bytes) -> str:
    try:
        parsed = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return "<not json>"
    return str(parsed.get("type")) if isinstance(parsed, dict) else "<not an object>"


def violations(adapter: pydantic.TypeAdapter[Any], frame: str | bytes) -> list[str]:
    """Why one frame does not conform ([] if it does): each reason as 'field: what is wrong'."""
    try:
        model = adapter.validate_json(frame, strict=True)
    except pydantic.ValidationError as exc:
        # The first loc item is the discriminator tag; the rest is the path inside the event.
        return [f"{'.'.join(map(str, e['loc'][1:])) or 'type'}: {e['msg']}" for e in exc.errors()]
    extra = set(undeclared(model))
    if model.type in ("session.created", "session.updated"):
        extra -= SERVICE_SESSION_FIELDS
    return [f"{path}: not declared" for path in sorted(extra)]


def read_as_sdk(model: Any) -> oa.OpenAIEvent | None:
    """What the SDK's model of a server event says, in our typed events (None: one we do not type).

    The fields come from the SDK's own attribute names, so a field our parser reads under the
    wrong name, or a type it misreads, shows up as a disagreement with ``oa.parse``.
    """
    kind = model.type
    if kind == "response.output_audio.delta":
        return oa.AudioDelta(model.item_id, model.response_id, model.delta)
    if kind in ("response.created", "response.done"):
        r = model.response
        out_of_band = "conversation_id" in r.model_fields_set and r.conversation_id is None
        return (oa.ResponseCreated if kind == "response.created" else oa.ResponseDone)(r.id or "", out_of_band)
    if kind == "response.function_call_arguments.done":
        return oa.FunctionCall(model.call_id, model.name or "", model.arguments)
    if kind == "response.output_audio_transcript.done":
        return oa.AgentTranscript(model.item_id, model.response_id, model.transcript)
    if kind == "conversation.item.input_audio_transcription.completed":
        return oa.CallerTranscript(model.transcript, model.item_id)
    if kind == "conversation.item.input_audio_transcription.failed":
        return oa.CallerTranscript("", model.item_id, failed=True)
    if kind == "input_audio_buffer.speech_started":
        return oa.SpeechStarted(model.item_id)
    if kind == "error":
        e = model.error
        return oa.ServiceError(e.code or "", e.type or "", e.message, e.param, e.event_id)
    simple = {"session.created": oa.SessionCreated(), "session.updated": oa.SessionUpdated(),
              "response.output_audio.done": oa.AudioDone(), "input_audio_buffer.speech_stopped": oa.SpeechStopped()}
    return simple.get(kind)


def disagreements(log: wire_log.WireLog) -> Counter[str]:
    """Server events whose typed reading (``llc.core.openai_events``) differs from the SDK's, by type."""
    bad = Counter[str]()
    for session in (s for s in log.sessions if s.shape == "ga"):
        for frame in session.sent:
            sdk = read_as_sdk(SERVER.validate_json(frame))
            ours = oa.parse(frame)
            if sdk is not None and ours != sdk or sdk is None and not isinstance(ours, oa.Unknown):
                bad[f"{event_type(frame)}: ours {ours!r}, the SDK's {sdk!r}"] += 1
    return bad


def check(log: wire_log.WireLog) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """(client events by type, server events by type, non-conformities by 'direction type: reason')."""
    ga = [s for s in log.sessions if s.shape == "ga"]  # flat: no SDK models (see the module doc)
    client, server, bad = Counter[str](), Counter[str](), Counter[str]()
    for session in ga:
        for direction, adapter, frames, seen in (("client", CLIENT, session.received, client),
                                                 ("server", SERVER, session.sent, server)):
            for frame in frames:
                etype = event_type(frame)
                seen[etype] += 1
                for reason in violations(adapter, frame):
                    bad[f"{direction} {etype}: {reason}"] += 1
    return client, server, bad


async def record(run: Callable[[], Awaitable[object]]) -> wire_log.WireLog:
    with wire_log.recording() as log:
        await run()
    return log


# A SIP call's sideband: speech, a barge-in, a key press, a tool and the goodbye.
SIP_CALL = SipScript([("say", "Hours?"), ("barge", "Wait, sorry"), ("dtmf", "5"),
                      ("tool", "end_call", '{"reason": "done"}')], replies=[LONG, "Sure, go ahead."])


async def barge_in(start_stack: Any) -> None:
    """As in test_turns_e2e: the caller talks over a long reply, so cancel and truncate are on the wire."""
    stack = await start_stack(replies=[LONG, "Sure, go ahead."], user_transcripts=["Hours?", "Wait, sorry"])
    script = CallerScript(turns=[CallerTurn("Hours?"), CallerTurn("Wait, sorry", barge_in_after_ms=1000)],
                          max_call_s=20)
    await FakeCaller(stack.base_url, script).run()
    await stack.wait_records(1)
    assert len(stack.state.records[-1].barge_ins) == 1  # else this run did not exercise a barge-in


async def test_every_event_on_the_wire_conforms_to_the_sdk(start_stack: Any) -> None:
    # Short simulator timings; the shapes of events do not depend on them. The calls are paced in
    # real time (the caller speaks, the agent plays out), so they run side by side: seconds, not a minute.
    runs: dict[str, Callable[[], Awaitable[object]]] = {
        "demo": lambda: run_demo(ttfb_ms=50, silence_ms=200),
        "ivr": lambda: run_mode("ivr"),
        "receptionist": lambda: run_mode("receptionist"),
        "csr": lambda: run_mode("csr"),
        "barge-in": lambda: barge_in(start_stack),
        "sip": lambda: run_sip_demo(":memory:", SIP_CALL),
    }
    logs: dict[str, wire_log.WireLog] = {}

    async def one(name: str) -> None:
        logs[name] = await record(runs[name])  # each task its own recorder: the context is per task

    async with trio.open_nursery() as nursery:
        for name in runs:
            nursery.start_soon(one, name)

    totals = [Counter[str](), Counter[str](), Counter[str]()]
    print()
    for name in runs:
        client, server, bad = check(logs[name])
        print(f"{name:>13}: product sent {client.total():5d} client events, simulator sent {server.total():5d} "
              f"server events, {bad.total()} not conforming")
        # Each run is a real call, not just a handshake.
        assert client["session.update"] > 0 and server["response.done"] > 0, f"{name}: no call on the wire"
        for total, counts in zip(totals, (client, server, bad), strict=True):
            total.update(counts)
    client, server, bad = totals
    print(f"{'all':>13}: product sent {client.total():5d} client events, simulator sent {server.total():5d} "
          f"server events, {bad.total()} not conforming")
    for reason, n in bad.most_common():
        print(f"  {n:5d}  {reason}")
    assert not bad, f"{bad.total()} non-conforming events:\n" + "\n".join(f"{n:5d}  {r}" for r, n in bad.most_common())
    # What the core acts on: every server event, read by our typed parse, says what the SDK says.
    misread = Counter[str]()
    for name in runs:
        misread.update(disagreements(logs[name]))
    assert not misread, "\n".join(f"{n:5d}  {r}" for r, n in misread.most_common())


def test_the_check_is_strict() -> None:
    """The oracle fails what it should: an undeclared field, a loose JSON type, an unknown event."""
    ok = '{"type": "input_audio_buffer.append", "event_id": "e1", "audio": "AAAA"}'
    assert violations(CLIENT, ok) == []
    assert violations(CLIENT, ok[:-1] + ', "speed": 2}') == ["speed: not declared"]
    assert violations(CLIENT, '{"type": "conversation.item.truncate", "item_id": "i", "content_index": 0, '
                              '"audio_end_ms": "900"}') == ["audio_end_ms: Input should be a valid integer"]
    assert violations(SERVER, ok) != []  # a client event is not a server event
    created = {"type": "session.created", "event_id": "e2",
               "session": {"type": "realtime", "id": "sess_1", "object": "realtime.session", "expires_at": 1}}
    assert violations(SERVER, orjson.dumps(created)) == []  # the service's own session fields aside
    created["session"]["audio"] = {"output": {"voice": "marin", "pitch": 1}}
    assert violations(SERVER, orjson.dumps(created)) == ["session.audio.output.pitch: not declared"]

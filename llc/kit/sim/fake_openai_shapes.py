"""The pure parts of the fake OpenAI Realtime server: the two API shapes, validators, the VAD.

Kept apart from the socket code so the strictness rules can be read (and tested) on their own.
The live GA service answers a session in the other shape with ``missing_required_parameter``
(``session.type``) or ``unknown_parameter``; older "flat" gateways reject GA keys the same way
(docs/02-session-config.md, "Wrong shape"). Messages follow OpenAI's wording so product log lines
read the same against the fake as against the real service.
"""

from __future__ import annotations

import base64
import binascii
import copy
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from llc.core.dialect import Shape
from llc.kit.sim.audio import BYTES_PER_MS, FRAME_MS, is_speech, speech_like, speech_ms_for_text

PATH = "/v1/realtime"
ApiError = tuple[str | None, str, str | None]  # (code, message, param)
Check = Callable[[Any, str], ApiError | None]

# Logical event / part names -> wire names per shape. None: the shape has no such event.
EVENTS: dict[str, dict[str, str | None]] = {
    "ga": {
        "audio_delta": "response.output_audio.delta",
        "audio_done": "response.output_audio.done",
        "transcript_delta": "response.output_audio_transcript.delta",
        "transcript_done": "response.output_audio_transcript.done",
        "text_delta": "response.output_text.delta",
        "text_done": "response.output_text.done",
        "item_added": "conversation.item.added",
        "item_done": "conversation.item.done",
        "audio_part": "output_audio",  # in the item's content; content_part events say "audio" (content_part)
        "text_part": "output_text",
        "modalities": "output_modalities",
    },
    "flat": {
        "audio_delta": "response.audio.delta",
        "audio_done": "response.audio.done",
        "transcript_delta": "response.audio_transcript.delta",
        "transcript_done": "response.audio_transcript.done",
        "text_delta": "response.text.delta",
        "text_done": "response.text.done",
        "item_added": "conversation.item.created",
        "item_done": None,
        "audio_part": "audio",
        "text_part": "text",
        "modalities": "modalities",
    },
}

CLIENT_EVENTS = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "response.create",
    "response.cancel",
)

# Content part types a client may put in a message, per shape and role.
PART_TYPES: dict[str, dict[str, tuple[str, ...]]] = {
    "ga": {
        "user": ("input_text", "input_audio", "input_image"),
        "system": ("input_text",),
        "assistant": ("output_text", "output_audio"),
    },
    "flat": {
        "user": ("input_text", "input_audio", "item_reference"),
        "system": ("input_text",),
        "assistant": ("text", "audio"),
    },
}

_JSON_NAMES = {bool: "a boolean", int: "an integer", float: "a decimal", str: "a string",
               list: "an array", dict: "an object", type(None): "null"}


def words(values: tuple[Any, ...]) -> str:
    """``'a', 'b' and 'c'``: how OpenAI lists supported values."""
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def bad_type(value: Any, path: str, want: str) -> ApiError:
    got = _JSON_NAMES.get(type(value), "an unknown type")
    return ("invalid_type", f"Invalid type for '{path}': expected {want}, but got {got} instead.", path)


def bad_value(value: Any, path: str, allowed: tuple[Any, ...]) -> ApiError:
    return ("invalid_value", f"Invalid value: '{value}'. Supported values are: {words(allowed)}.", path)


def missing(path: str) -> ApiError:
    return ("missing_required_parameter", f"Missing required parameter: '{path}'.", path)


def _type(*types: type, want: str, nullable: bool = False) -> Check:
    def check(v: Any, path: str) -> ApiError | None:
        if v is None and nullable:
            return None
        if (isinstance(v, bool) and bool not in types) or not isinstance(v, types):
            return bad_type(v, path, want)
        return None

    return check


STR = _type(str, want="a string")
INT = _type(int, want="an integer")
NUM = _type(int, float, want="a number")
BOOL = _type(bool, want="a boolean")


def ANY(v: Any, path: str) -> ApiError | None:
    return None


def _enum(*values: str) -> Check:
    def check(v: Any, path: str) -> ApiError | None:
        if not isinstance(v, str):
            return bad_type(v, path, "a string")
        return None if v in values else bad_value(v, path, values)

    return check


def _int_or_inf(v: Any, path: str) -> ApiError | None:
    ok = v == "inf" or (isinstance(v, int) and not isinstance(v, bool))
    return None if ok else bad_type(v, path, "an integer or 'inf'")


def _list(each: Check) -> Check:
    def check(v: Any, path: str) -> ApiError | None:
        if not isinstance(v, list):
            return bad_type(v, path, "an array")
        for i, x in enumerate(v):
            if err := each(x, f"{path}[{i}]"):
                return err
        return None

    return check


def _obj(fields: dict[str, Check], required: tuple[str, ...] = (), nullable: bool = False) -> Check:
    """An object check: required keys first (that is what a flat session hits on GA), then unknown keys."""

    def check(v: Any, path: str) -> ApiError | None:
        if v is None and nullable:
            return None
        if not isinstance(v, dict):
            return bad_type(v, path, "an object")
        for key in required:
            if key not in v:
                return missing(f"{path}.{key}")
        for key, val in v.items():
            sub = fields.get(key)
            if sub is None:
                return ("unknown_parameter", f"Unknown parameter: '{path}.{key}'.", f"{path}.{key}")
            if err := sub(val, f"{path}.{key}"):
                return err
        return None

    return check


def _modalities(*combos: tuple[str, ...]) -> Check:
    def check(v: Any, path: str) -> ApiError | None:
        if not isinstance(v, list) or not all(isinstance(m, str) for m in v):
            return bad_type(v, path, "an array of strings")
        if tuple(sorted(v)) not in combos:
            allowed = " and ".join(str(list(c)) for c in combos)
            return ("invalid_value", f"Invalid modalities: {v}. Supported combinations are: {allowed}.", path)
        return None

    return check


_TOOL = _obj({"type": _enum("function"), "name": STR, "description": STR,
              "parameters": _type(dict, want="an object")}, required=("type", "name"))
_NAMES = _list(STR)
# An MCP server the service calls itself (GA only; the SDK's ``realtime_tools_config_param.Mcp``).
_MCP = _obj({"type": _enum("mcp"), "server_label": STR, "server_url": STR, "server_description": STR,
             "allowed_tools": lambda v, p: None if isinstance(v, dict) else _NAMES(v, p),
             "headers": _type(dict, want="an object", nullable=True), "authorization": STR,
             "require_approval": lambda v, p: None if isinstance(v, dict) else _enum("always", "never")(v, p),
             "connector_id": STR, "tunnel_id": STR, "defer_loading": BOOL, "allowed_callers": _NAMES},
            required=("type", "server_label"))


def _ga_tool(v: Any, path: str) -> ApiError | None:
    return _MCP(v, path) if isinstance(v, dict) and v.get("type") == "mcp" else _TOOL(v, path)


_TURN = _obj({"type": _enum("server_vad", "semantic_vad"), "threshold": NUM, "prefix_padding_ms": INT,
              "silence_duration_ms": INT, "idle_timeout_ms": _type(int, want="an integer", nullable=True),
              "create_response": BOOL, "interrupt_response": BOOL,
              "eagerness": _enum("low", "medium", "high", "auto")}, nullable=True)
_TRANSCRIPTION = _obj({"model": STR, "language": STR, "prompt": STR}, nullable=True)
_NOISE = _obj({"type": _enum("near_field", "far_field")}, nullable=True)
_FORMAT = _obj({"type": _enum("audio/pcm", "audio/pcmu", "audio/pcma"), "rate": INT})
_FLAT_FORMAT = _enum("pcm16", "g711_ulaw", "g711_alaw")
_COMMON: dict[str, Check] = {"instructions": STR, "tools": _list(_TOOL), "model": STR, "tracing": ANY,
                             "tool_choice": _type(str, dict, want="a string or an object"), "prompt": ANY}
_RESPONSE_COMMON: dict[str, Check] = {**_COMMON, "conversation": STR, "input": _list(ANY),
                                      "metadata": _type(dict, want="an object", nullable=True)}

_SESSION: dict[str, Check] = {
    "ga": _obj({
        **_COMMON, "tools": _list(_ga_tool),
        "type": _enum("realtime"), "output_modalities": _modalities(("audio",), ("text",)),
        "max_output_tokens": _int_or_inf, "include": _type(list, want="an array", nullable=True),
        "truncation": ANY,
        "audio": _obj({
            "input": _obj({"format": _FORMAT, "turn_detection": _TURN, "transcription": _TRANSCRIPTION,
                           "noise_reduction": _NOISE}),
            "output": _obj({"format": _FORMAT, "voice": STR, "speed": NUM}),
        }),
    }, required=("type",)),
    "flat": _obj({
        **_COMMON, "modalities": _modalities(("text",), ("audio", "text")), "voice": STR,
        "input_audio_format": _FLAT_FORMAT, "output_audio_format": _FLAT_FORMAT,
        "input_audio_transcription": _TRANSCRIPTION, "turn_detection": _TURN, "temperature": NUM,
        "max_response_output_tokens": _int_or_inf, "input_audio_noise_reduction": _NOISE, "speed": NUM,
    }),
}
_RESPONSE: dict[str, Check] = {
    "ga": _obj({**_RESPONSE_COMMON, "output_modalities": _modalities(("audio",), ("text",)),
                "max_output_tokens": _int_or_inf,
                "audio": _obj({"output": _obj({"format": _FORMAT, "voice": STR})})}),
    "flat": _obj({**_RESPONSE_COMMON, "modalities": _modalities(("text",), ("audio", "text")), "voice": STR,
                  "output_audio_format": _FLAT_FORMAT, "temperature": NUM,
                  "max_response_output_tokens": _int_or_inf}),
}


def validate_session(shape: Shape, session: Any) -> ApiError | None:
    """The error the service would send for this ``session.update`` body, or None if accepted."""
    if session is None:
        return missing("session")
    return _SESSION[shape](session, "session")


def validate_response(shape: Shape, response: Any) -> ApiError | None:
    """The error for a ``response.create`` ``response`` body, or None."""
    return _RESPONSE[shape](response, "response")


def _turn_detection_default() -> dict[str, Any]:
    return {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 200,
            "create_response": True, "interrupt_response": True}


def default_session(shape: Shape, model: str, session_id: str, expires_at: int) -> dict[str, Any]:
    """What ``session.created`` carries: the service defaults (PCM 24 kHz, not mu-law: the product must ask)."""
    base: dict[str, Any] = {"object": "realtime.session", "id": session_id, "model": model,
                            "expires_at": expires_at, "instructions": "", "tools": [], "tool_choice": "auto"}
    if shape == "flat":
        return {**base, "modalities": ["text", "audio"], "voice": "alloy", "input_audio_format": "pcm16",
                "output_audio_format": "pcm16", "input_audio_transcription": None,
                "turn_detection": _turn_detection_default(), "temperature": 0.8,
                "max_response_output_tokens": "inf"}
    pcm = {"type": "audio/pcm", "rate": 24000}
    return {"type": "realtime", **base, "output_modalities": ["audio"], "max_output_tokens": "inf",
            "tracing": None, "prompt": None, "include": None,
            "audio": {"input": {"format": dict(pcm), "transcription": None, "noise_reduction": None,
                                "turn_detection": {**_turn_detection_default(), "idle_timeout_ms": None}},
                      "output": {"format": dict(pcm), "voice": "marin", "speed": 1.0}}}


_CONTAINERS = frozenset({"audio", "input", "output"})


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Apply a session.update: containers (``audio``/``input``/``output``) merge, every other key replaces."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if key in _CONTAINERS and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def turn_detection(shape: Shape, session: dict[str, Any]) -> dict[str, Any] | None:
    """The session's VAD settings (None: VAD off, the client commits by hand)."""
    found = session.get("turn_detection") if shape == "flat" else \
        session.get("audio", {}).get("input", {}).get("turn_detection")
    return found if isinstance(found, dict) else None


def text_only(shape: Shape, response: dict[str, Any], session: dict[str, Any]) -> bool:
    """Whether a response speaks no audio ("inference priming" asks for text only)."""
    key = str(EVENTS[shape]["modalities"])
    return response.get(key, session.get(key)) == ["text"]


# -- ids, items, responses and the errors that need more than a type check ------------------

DEFAULT_REPLIES = ["Hello, thanks for calling. How can I help you today?", "Sure, I can help with that.",
                   "Is there anything else I can do for you?"]
DEFAULT_TRANSCRIPTS = ["Hi, I'd like to book a table for two.", "Tomorrow at seven, please.",
                       "No, that's all, thank you."]
RATE_LIMITS = [{"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5}]
BETA_DISABLED: ApiError = (
    "beta_api_shape_disabled",
    ("The Realtime beta interface (header 'OpenAI-Beta: realtime=v1') has been turned off. Connect "
     "without that header and send a GA session with session.type = 'realtime'."), None)
SESSION_EXPIRED: ApiError = ("session_expired", "Your session hit the maximum duration of 60 minutes.", None)
CANCEL_NOT_ACTIVE: ApiError = ("response_cancel_not_active", "Cancellation failed: no active response found.",
                               None)


def new_id(prefix: str) -> str:
    """Random ids like the service's, so a product that mixes up items across sessions is caught."""
    return f"{prefix}_{secrets.token_hex(10)}"


def pick(lines: list[str], index: int) -> str:
    """Scripted lines: one per use, the last one repeats."""
    return lines[min(index, len(lines) - 1)] if lines else ""


def not_found(item_id: Any, param: str = "item_id") -> ApiError:
    return ("invalid_value", f"Item with item_id '{item_id}' not found.", param)


def commit_empty(ms: float) -> ApiError:
    return ("input_audio_buffer_commit_empty", ("Error committing input audio buffer: buffer too small. "
            f"Expected at least 100ms of audio, but buffer only has {ms:.2f}ms of audio."), None)


def already_active(response_id: str) -> ApiError:
    return ("conversation_already_has_active_response", ("Conversation already has an active response in "
            f"progress: {response_id}. Wait until the response is finished before creating a new one."), None)


def message_item(role: str, content: list[dict[str, Any]], item_id: str | None = None,
                 status: str = "completed") -> dict[str, Any]:
    return {"id": item_id or new_id("item"), "object": "realtime.item", "type": "message", "status": status,
            "role": role, "content": content}


def check_item(shape: Shape, item: Any, items: Collection[str], calls: Collection[str]) -> ApiError | None:
    """Validate a ``conversation.item.create`` item against the conversation and open tool calls."""
    if item is None:
        return missing("item")
    if not isinstance(item, dict):
        return bad_type(item, "item", "an object")
    kinds = ("message", "function_call", "function_call_output")
    if (itype := item.get("type")) not in kinds:
        return bad_value(itype, "item.type", kinds) if itype else missing("item.type")
    if isinstance(item.get("id"), str) and item["id"] in items:
        return ("invalid_value", f"Item with item_id '{item['id']}' already exists.", "item.id")
    if itype == "function_call_output":
        for key in ("call_id", "output"):
            if key not in item:
                return missing(f"item.{key}")
            if not isinstance(item[key], str):
                return bad_type(item[key], f"item.{key}", "a string")
        if item["call_id"] not in calls:
            return ("invalid_value", f"Tool call with call_id '{item['call_id']}' not found.", "item.call_id")
    if itype != "message":
        return None
    roles = PART_TYPES[shape]
    if (role := item.get("role")) not in roles:
        return bad_value(role, "item.role", tuple(roles))
    content = item.get("content")
    if not isinstance(content, list):
        return bad_type(content, "item.content", "an array")
    for i, part in enumerate(content):
        ptype = part.get("type") if isinstance(part, dict) else None
        if ptype not in roles[role]:
            return bad_value(ptype, f"item.content[{i}].type", roles[role])
    return None


def check_truncate(item: dict[str, Any], index: Any, end: Any, have_ms: int) -> ApiError | None:
    """A truncate may only shorten assistant audio that exists: never to 0 ms, never past what was sent."""
    if item.get("role") != "assistant":
        return ("invalid_value", "Only assistant messages can be truncated.", "item_id")
    if index != 0:
        return ("invalid_value", f"Invalid content_index: {index}.", "content_index")
    if end is None:
        return missing("audio_end_ms")
    if not isinstance(end, int) or isinstance(end, bool):
        return bad_type(end, "audio_end_ms", "an integer")
    if end <= 0:
        return ("invalid_value", (f"Invalid 'audio_end_ms': {end}. It must be greater than 0; delete the "
                "item instead."), "audio_end_ms")
    if end > have_ms:
        return ("invalid_value", f"Audio content of {have_ms}ms is already shorter than {end}ms", "audio_end_ms")
    return None


def response_object(shape: Shape, response_id: str, status: str, *, text_only: bool, out_of_band: bool,
                    item: dict[str, Any] | None, sent_ms: int, words: int, reason: str | None = None
                    ) -> dict[str, Any]:
    """The ``response`` in response.created/done; usage is made up but shaped like the service's."""
    usage = None
    if status != "in_progress":
        out = sent_ms // 50 + words
        usage = {"total_tokens": 120 + out, "input_tokens": 120, "output_tokens": out,
                 "input_token_details": {"text_tokens": 100, "audio_tokens": 20, "cached_tokens": 0},
                 "output_token_details": {"text_tokens": words, "audio_tokens": sent_ms // 50}}
    return {"object": "realtime.response", "id": response_id, "status": status,
            "status_details": {"type": status, "reason": reason} if reason else None,
            "output": [item] if item else [], "conversation_id": None if out_of_band else "conv_fake",
            str(EVENTS[shape]["modalities"]): ["text"] if text_only else ["audio"], "usage": usage}


def content_part(shape: Shape, kind: Literal["audio", "text"], in_event: bool, **body: str) -> dict[str, Any]:
    """A response's content part. ``response.content_part.added/done`` type it "audio" or "text" in
    both shapes; only the item's content says "output_audio"/"output_text" in GA (the SDK's models:
    the events' ``Part.type`` against the assistant message's ``Content.type``)."""
    return {"type": kind if in_event else EVENTS[shape][f"{kind}_part"], **body}


def transcription_completed(shape: Shape, item_id: str, transcript: str, audio_ms: int) -> dict[str, Any]:
    """``conversation.item.input_audio_transcription.completed`` fields. GA requires ``usage``;
    token-billed as the gpt-4o transcribe models are (made-up counts); the flat shape had none."""
    fields: dict[str, Any] = {"item_id": item_id, "content_index": 0, "transcript": transcript}
    if shape == "ga":
        audio_tokens, text_tokens = audio_ms // 100, len(transcript.split())
        fields["usage"] = {"type": "tokens", "input_tokens": audio_tokens, "output_tokens": text_tokens,
                           "total_tokens": audio_tokens + text_tokens,
                           "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens}}
    return fields


def function_call_item(name: str, call_id: str) -> dict[str, Any]:
    return {"id": new_id("item"), "object": "realtime.item", "type": "function_call", "status": "in_progress",
            "name": name, "call_id": call_id, "arguments": ""}


def find_item(event: dict[str, Any], items: Collection[str]) -> str | ApiError:
    """The event's ``item_id`` if it names an item of the conversation, else the error to send."""
    iid = event.get("item_id")
    if iid is None:
        return missing("item_id")
    if not isinstance(iid, str):
        return bad_type(iid, "item_id", "a string")
    return iid if iid in items else not_found(iid)


def decode_audio(audio: Any) -> bytes | ApiError:
    """An ``input_audio_buffer.append`` payload, or the error for it."""
    if audio is None:
        return missing("audio")
    if not isinstance(audio, str):
        return bad_type(audio, "audio", "a string")
    try:
        return base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        return ("invalid_value", "Invalid 'audio': expected base64-encoded audio bytes.", "audio")


VOICES = 8  # distinct syntheses per line, each cached once synthesised


def speech_chunks(line: str, seed: int, chunk_ms: int) -> list[tuple[bytes, str]]:
    """A scripted line as (audio chunk, transcript delta) pairs: words spread evenly over the audio.

    Why ``seed % VOICES``: a new synthesis of a long line takes ~0.2 s of pure Python, which
    stalls every simulated call in the process (the callers' playout clocks with them, so the
    barge-in bench measured its own stalls). A few voices, cached, still vary reply to reply.
    """
    audio = speech_like(speech_ms_for_text(line), seed=seed % VOICES)
    step = chunk_ms * BYTES_PER_MS
    chunks = [audio[i:i + step] for i in range(0, len(audio), step)]
    words, n = line.split(), len(chunks)
    said = [" ".join(words[k * len(words) // n:(k + 1) * len(words) // n]) for k in range(n)]
    return list(zip(chunks, said, strict=True))


@dataclass
class EnergyVAD:
    """Turn detection in audio time, not wall time, so a client that sends faster than real time
    (a test, a benchmark) sees the same turns as one pacing 20 ms frames like Twilio."""

    threshold: float
    start_frames: int  # consecutive loud frames before a turn starts
    end_silence_ms: int  # quiet after speech before it ends
    pos_ms: int = 0  # input audio heard so far
    run: int = 0
    silence_ms: int = 0
    speaking: bool = False

    def feed(self, frame: bytes, detect: bool = True) -> tuple[str, int] | None:
        """One 20 ms frame: ("started", audio_start_ms), ("stopped", audio_end_ms) or None."""
        self.pos_ms += FRAME_MS
        if not detect:
            return None
        if is_speech(frame, self.threshold):
            self.run += 1
            self.silence_ms = 0
            if not self.speaking and self.run >= self.start_frames:
                self.speaking = True
                return ("started", self.pos_ms - self.run * FRAME_MS)
            return None
        self.run = 0
        if not self.speaking:
            return None
        self.silence_ms += FRAME_MS
        if self.silence_ms < self.end_silence_ms:
            return None
        self.reset()
        return ("stopped", self.pos_ms)

    def reset(self) -> None:
        self.run = self.silence_ms = 0
        self.speaking = False


def parse_event(message: str | bytes) -> tuple[dict[str, Any], ApiError | None]:
    """A client frame as an event (``{}`` if it is not one) and the error it earns, if any."""
    try:
        event = orjson.loads(message)
    except orjson.JSONDecodeError:
        return {}, ("invalid_json", ("We could not parse the JSON body of your request. (HINT: send every "
                    "event as a JSON object in a text frame.)"), None)
    if not isinstance(event, dict):
        return {}, bad_type(event, "event", "an object")
    etype = event.get("type")
    if etype is None:
        return event, missing("type")
    if etype not in CLIENT_EVENTS:
        return event, bad_value(etype, "type", CLIENT_EVENTS)
    return event, None


def check_handshake(path: str, headers: dict[str, str], require_auth: bool) -> tuple[int, str] | None:
    """(HTTP status, message) to refuse the upgrade with, as the service does, or None to accept."""
    if path != PATH:
        return 404, f"Invalid URL (GET {path})"
    auth = headers.get("authorization", "")
    if require_auth and not (auth.startswith("Bearer ") and auth[7:].strip()):
        return 401, "Missing bearer authentication in header 'Authorization'."
    return None

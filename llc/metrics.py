"""Prometheus metrics: what `GET /metrics` exposes, and the small functions that move them.

One registry per process (``REGISTRY``), because one process runs one server. Counters only
ever go up, so tests and dashboards read *changes*, never absolute values. Nothing here runs
per frame: a call's totals are folded in once, when it ends (``record_call``), so the relay
path pays nothing for being observed.

Other features call the plain functions below (``observe_bargein``, ``prewarm_hit``,
``prewarm_fallback``) rather than touching the metric objects, so the names and buckets can
change in one place.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from llc.core.record import CallRecord, EndReason

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # CPU, memory, open fds, start time of this process

ACTIVE_CALLS = Gauge("llc_active_calls", "Calls in progress (media streams open).", registry=REGISTRY)
DRAINING = Gauge("llc_draining", "1 while the server drains after SIGTERM: new calls are turned away.", registry=REGISTRY)
CALLS = Counter(
    "llc_calls", "Finished calls by outcome (the record's end_reason) and direction.",
    ["outcome", "direction"], registry=REGISTRY,
)
# The target is about 800 ms voice-to-voice; buckets are dense around it.
VOICE_TO_VOICE = Histogram(
    "llc_voice_to_voice_seconds",
    "Per turn, server side: the caller's last loud frame to the first agent audio frame sent to Twilio "
    "(VAD wait + model + llc relay).",
    buckets=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0), registry=REGISTRY,
)
BARGEIN = Histogram(
    "llc_bargein_seconds",
    "Barge-in, server side: OpenAI speech_started received to Twilio clear (and truncate) sent.",
    buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0), registry=REGISTRY,
)
BARGEINS = Counter(
    "llc_bargeins", "Barge-ins by whether the caller's interrupting speech had words: no is likely noise "
    "(a cough, a door, line hiss); unknown is a key press or a call without transcription.",
    ["words"], registry=REGISTRY,
)
PREWARM = Counter(
    "llc_prewarm", "Outbound calls by how their OpenAI session was obtained: hit (prewarmed) or fallback (cold).",
    ["result"], registry=REGISTRY,
)
OPENAI_ERRORS = Counter("llc_openai_errors", "OpenAI Realtime `error` events by code.", ["code"], registry=REGISTRY)
FRAMES = Counter(
    "llc_frames_relayed", "Media frames relayed, counted when each call ends.", ["direction"], registry=REGISTRY,
)
# Every label value comes from a closed set: a record's fields can carry what a peer sent (a
# forged stream's direction, an error code), and each new value would be a new time series.
# Anything outside the set is counted as OTHER.
OTHER = "other"
OUTCOMES = frozenset({reason.value for reason in EndReason} | {"unknown"})  # "unknown": no reason recorded
DIRECTIONS = frozenset({"inbound", "outbound", "unknown"})
# The Realtime service's error codes this server knows how to react to or that operators watch for.
OPENAI_ERROR_CODES = frozenset({
    "session_expired", "conversation_already_has_active_response", "response_cancel_not_active",
    "input_audio_buffer_commit_empty", "invalid_value", "invalid_json", "invalid_request_error",
    "unknown_parameter", "missing_required_parameter", "rate_limit_exceeded", "server_error",
    "beta_api_shape_disabled", "unknown",
})


def closed(value: str, allowed: frozenset[str]) -> str:
    """``value`` when it is one of ``allowed`` (empty counts as "unknown"), else OTHER."""
    value = value or "unknown"
    return value if value in allowed else OTHER


for _result in ("hit", "fallback"):
    PREWARM.labels(result=_result)
for _direction in ("to_openai", "to_twilio"):
    FRAMES.labels(direction=_direction)
for _words in ("yes", "no", "unknown"):
    BARGEINS.labels(words=_words)


def record_call(record: CallRecord) -> None:
    """Fold a finished call into the metrics. Called once per call, from the media route's finally."""
    CALLS.labels(outcome=closed(record.end_reason or "", OUTCOMES), direction=closed(record.direction, DIRECTIONS)).inc()
    for turn in record.turns:
        if turn.voice_to_voice_ms is not None:
            VOICE_TO_VOICE.observe(turn.voice_to_voice_ms / 1000)
    for code, count in record.openai_errors.items():
        OPENAI_ERRORS.labels(code=closed(code, OPENAI_ERROR_CODES)).inc(count)
    FRAMES.labels(direction="to_openai").inc(record.frames_from_twilio)
    FRAMES.labels(direction="to_twilio").inc(record.frames_to_twilio)
    for barge in record.barge_ins:
        BARGEINS.labels(words={True: "yes", False: "no", None: "unknown"}[barge.words]).inc()


def observe_bargein(ms: float) -> None:
    """Barge-in reaction of one interruption, in milliseconds (called by the call bridge)."""
    BARGEIN.observe(ms / 1000)


def prewarm_hit() -> None:
    """An outbound call claimed a prewarmed OpenAI session."""
    PREWARM.labels(result="hit").inc()


def prewarm_fallback() -> None:
    """An outbound call found no usable prewarmed session and connected cold."""
    PREWARM.labels(result="fallback").inc()


def exposition(active_calls: int, draining: bool) -> tuple[bytes, str]:
    """The Prometheus text page and its content type; the gauges are set from the values given now."""
    ACTIVE_CALLS.set(active_calls)
    DRAINING.set(1 if draining else 0)
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


EVENTS = Counter("llc_events", "Call event delivery attempts by result: delivered, retried (will be tried again), "
                 "failed (given up).", ["result"], registry=REGISTRY)
EVENTS_OLDEST_PENDING = Gauge("llc_events_oldest_pending_seconds",
                              "Age of the oldest call event not yet delivered (0: none waits).", registry=REGISTRY)


def event_attempt(result: str) -> None:
    """One call event attempt ended: ``delivered``, ``retried`` or ``failed``."""
    EVENTS.labels(result=result).inc()


def events_oldest_pending(age_s: float) -> None:
    EVENTS_OLDEST_PENDING.set(age_s)

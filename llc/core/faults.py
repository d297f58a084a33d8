"""What a call does when OpenAI goes away: the pure parts (limits, the context summary).

A dropped socket gets one reconnect; the 60-minute cap (``session_expired``) gets a new
session every time it is reached (bounded by the call's own length). Either way the new
session is told what was said so far, so the caller notices a pause, not a stranger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llc.core.record import TranscriptLine

MAX_RECONNECTS = 1  # reconnects after a drop, per call
MAX_RENEWALS = 24  # new sessions after session_expired, per call (a day of 60-minute sessions)
APOLOGY_MARK = "llc-apology"
APOLOGY_GRACE_S = 3.0  # beyond the clip's length, if Twilio never returns its mark
SUMMARY_LINES = 12
SUMMARY_CHARS = 1500


@dataclass(frozen=True)
class Resume:
    """What a replacement session is told, and whether it must speak first.

    ``lost_turn``: the caller had spoken since the agent's last reply ended, so their words
    went down with the old session (they were never transcribed, nor answered). Left alone,
    the new session would wait for speech that already happened, and the caller would wait
    for an answer that never comes: dead air until one of them gives up. So the new session
    speaks at once and asks them to say it again.
    """

    summary: str
    lost_turn: bool


def resume(transcript: Sequence[TranscriptLine], lost_turn: bool) -> Resume:
    return Resume(summary(transcript, lost_turn), lost_turn)


def summary(transcript: Sequence[TranscriptLine], lost_turn: bool = False) -> str:
    """A short summary of the conversation so far, for the model of a replacement session."""
    # What the caller heard of an interrupted reply, not the words that were never played.
    lines = [f"{'Caller' if t.role == 'caller' else 'You'}: {_heard(t)}" for t in transcript[-SUMMARY_LINES:]]
    body = "\n".join(lines)
    if len(body) > SUMMARY_CHARS:
        body = "…" + body[-SUMMARY_CHARS:]
    if lost_turn:
        head = ("The phone call is already in progress; the connection to you was briefly interrupted while "
                "the caller was speaking, and their last words were lost. Say in a few words that the line "
                "broke up and ask them to repeat what they just said; do not greet them again.")
    else:
        head = ("The phone call is already in progress; the connection to you was briefly interrupted. "
                "Continue the conversation naturally: do not greet the caller again or mention the interruption.")
    return head + ("\nThe conversation so far:\n" + body if body else "\nNothing has been said yet.")


def _heard(line: TranscriptLine) -> str:
    if line.interrupted and line.heard_text is not None:
        return f"{line.heard_text} (cut off by the caller)"
    return line.text


def context_item(text: str) -> dict[str, Any]:
    """A system message carrying the summary (both shapes accept system input_text items)."""
    return {"type": "conversation.item.create",
            "item": {"type": "message", "role": "system", "content": [{"type": "input_text", "text": text}]}}

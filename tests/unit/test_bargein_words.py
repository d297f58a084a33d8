"""Barge-ins with words apart from those without (likely noise), decided as data from wire events."""

from __future__ import annotations

from typing import Any

import pytest

from llc import metrics
from llc.core import openai_events as oa
from llc.core import twilio_frames as tw
from llc.core.call import CallCore
from llc.core.dialect import GA
from llc.core.record import EndReason
from llc.core.session import SessionSpec
from llc.core.timeline import timeline

DELTA = "A" * 1068 + "=="  # 100 ms of mu-law audio


def event(kind: str, **fields: Any) -> oa.OpenAIEvent:
    return oa.from_json({"type": kind, **fields})


def call(transcribing: bool = True) -> CallCore:
    core = CallCore(GA, SessionSpec(transcription_model="gpt-4o-mini-transcribe" if transcribing else None))
    core.on_twilio(tw.Start("MZ1", "CA1", "AC1", {}), 0.0)
    core.on_openai_open()
    core.on_openai(oa.SessionUpdated(), 0.1)
    return core


def agent_speaks(core: CallCore, n: int, now: float) -> None:
    core.on_openai(event("response.created", response={"id": f"resp_{n}"}), now)
    for _ in range(10):
        core.on_openai(event("response.output_audio.delta", item_id=f"agent_{n}", response_id=f"resp_{n}", delta=DELTA), now)


def caller_talks_over(core: CallCore, item: str, now: float) -> None:
    core.on_openai(event("input_audio_buffer.speech_started", item_id=item, audio_start_ms=0), now)


def transcribed(core: CallCore, item: str, text: str, now: float) -> None:
    core.on_openai(event("conversation.item.input_audio_transcription.completed", item_id=item, content_index=0,
                         transcript=text), now)


def test_words_in_the_callers_transcript_make_a_real_barge_in() -> None:
    core = call()
    agent_speaks(core, 1, 1.0)
    caller_talks_over(core, "caller_1", 1.2)
    agent_speaks(core, 2, 1.6)  # the agent's next reply starts before the transcript lands
    transcribed(core, "caller_1", "Sorry, one more thing", 1.9)
    core.end(EndReason.CALLER_HANGUP)
    [barge] = core.record.barge_ins
    assert (barge.words, barge.caller_item_id, core.record.barge_ins_without_words) == (True, "caller_1", 0)


@pytest.mark.parametrize("ending", ["empty transcript", "no transcript before the call ended"])
def test_a_barge_in_whose_speech_had_no_words_is_counted_apart(ending: str) -> None:
    core = call()
    agent_speaks(core, 1, 1.0)
    caller_talks_over(core, "caller_1", 1.2)
    if ending == "empty transcript":
        transcribed(core, "caller_1", "  ", 1.5)
        assert core.record.barge_ins_without_words == 1  # settled as it arrives, not only at the end
    core.end(EndReason.CALLER_HANGUP)
    [barge] = core.record.barge_ins
    assert barge.words is False and core.record.barge_ins_without_words == 1
    assert core.record.as_dict()["barge_ins_without_words"] == 1
    [entry] = [e for e in timeline(core.record.as_dict()) if e.kind == "barge-in"]
    assert "likely noise" in entry.text


def test_a_transcript_of_another_caller_item_settles_nothing() -> None:
    core = call()
    agent_speaks(core, 1, 1.0)
    caller_talks_over(core, "caller_2", 1.2)
    transcribed(core, "caller_1", "Hello?", 1.3)  # the turn before the barge-in
    assert core.record.barge_ins[0].words is None
    transcribed(core, "caller_2", "Wait", 1.5)
    assert core.record.barge_ins[0].words is True


@pytest.mark.parametrize("why", ["transcription off", "transcription failed", "session replaced", "no item id"])
def test_when_no_transcript_can_tell_the_barge_in_is_unknown_not_noise(why: str) -> None:
    core = call(transcribing=why != "transcription off")
    agent_speaks(core, 1, 1.0)
    caller_talks_over(core, "" if why == "no item id" else "caller_1", 1.2)
    if why == "transcription failed":
        core.on_openai(event("conversation.item.input_audio_transcription.failed", item_id="caller_1", content_index=0,
                             error={"type": "transcription_error", "message": "x"}), 1.5)
    if why == "session replaced":
        core.journal.session_renewed("dropped (code 1011)")
    core.end(EndReason.CALLER_HANGUP)
    [barge] = core.record.barge_ins
    assert barge.words is None and core.record.barge_ins_without_words == 0


def test_the_metric_counts_each_barge_in_by_words() -> None:
    core = call()
    for n, (item, text) in enumerate([("c1", "Stop"), ("c2", ""), ("c3", None)], start=1):
        agent_speaks(core, n, float(n))
        caller_talks_over(core, item, n + 0.2)
        if text is not None:
            transcribed(core, item, text, n + 0.5)
    core.end(EndReason.CALLER_HANGUP)

    def count(words: str) -> float:
        return metrics.REGISTRY.get_sample_value("llc_bargeins_total", {"words": words}) or 0.0

    before = {w: count(w) for w in ("yes", "no", "unknown")}
    metrics.record_call(core.record)
    assert {w: count(w) - before[w] for w in before} == {"yes": 1, "no": 2, "unknown": 0}

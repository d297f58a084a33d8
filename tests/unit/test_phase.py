"""The call's lifecycle as data: the transition table, the Lifecycle that holds the ending, and the
phases a call walks through its core's inputs."""

from __future__ import annotations

import itertools

import pytest

from llc.core import openai_events as oa
from llc.core import twilio_frames as tw
from llc.core.actions import Deadline, EndCall, PlayApology, ReconnectOpenAI
from llc.core.call import CallCore
from llc.core.dialect import GA
from llc.core.phase import TRANSITIONS, IllegalTransition, Lifecycle, Phase, advance
from llc.core.record import EndReason
from llc.core.session import SessionSpec

START = tw.Start("MZ1", "CA1")


@pytest.mark.parametrize("current, new", list(itertools.product(Phase, Phase)))
def test_the_table_allows_exactly_what_it_lists(current: Phase, new: Phase) -> None:
    if new in TRANSITIONS[current]:
        assert advance(current, new) is new
    else:
        with pytest.raises(IllegalTransition, match=f"from {current.value} to {new.value}"):
            advance(current, new)


def test_every_phase_is_in_the_table_and_reachable_and_only_ended_is_final() -> None:
    assert set(TRANSITIONS) == set(Phase)
    reached, todo = {Phase.WAITING}, [Phase.WAITING]
    while todo:
        for nxt in TRANSITIONS[todo.pop()] - reached:
            reached.add(nxt)
            todo.append(nxt)
    assert reached == set(Phase)
    assert [p for p in Phase if TRANSITIONS[p] <= {p}] == [Phase.ENDED]
    assert all(Phase.ENDED in TRANSITIONS[p] for p in Phase)  # anything can end a call


def test_the_first_ending_is_the_one_kept() -> None:
    life = Lifecycle()
    assert life.end(EndReason.NO_START, "no start") == EndCall(EndReason.NO_START, "no start")
    assert life.end(EndReason.TWILIO_CLOSED, "closed") is None and life.phase is Phase.ENDED


def test_a_hand_off_ends_as_the_hand_off_whatever_ends_the_stream() -> None:
    life = Lifecycle()
    life.move(Phase.CONNECTING)
    life.hand_off("OpenAI unreachable; handed to +15550100999")
    assert life.ending and life.phase is Phase.HANDING_OFF
    # Twilio's stop as it redirects: not a hang-up.
    assert life.end(EndReason.CALLER_HANGUP, "") == EndCall(EndReason.OPENAI_UNREACHABLE,
                                                            "OpenAI unreachable; handed to +15550100999")


def test_a_refused_hand_off_goes_back_and_the_apology_follows() -> None:
    life = Lifecycle()
    life.move(Phase.CONNECTING)
    life.hand_off("x")
    life.hand_off_failed()
    assert life.phase is Phase.CONNECTING and not life.ending
    assert life.apologise(EndReason.OPENAI_UNREACHABLE, "no session") == EndCall(EndReason.OPENAI_UNREACHABLE, "no session")
    assert life.apology_over() == [EndCall(EndReason.OPENAI_UNREACHABLE, "no session")]
    # A caller who hangs up during the apology did hang up.
    assert life.end(EndReason.CALLER_HANGUP, "") == EndCall(EndReason.CALLER_HANGUP, "")
    assert life.apology_over() == []


def test_a_call_walks_the_phases_through_its_inputs() -> None:
    core = CallCore(GA, SessionSpec())
    seen = [core.phase]
    core.on_twilio(START, 0.0)
    seen.append(core.phase)
    core.on_openai_open()
    seen.append(core.phase)
    core.on_openai(oa.SessionUpdated(), 0.1)
    seen.append(core.phase)
    assert ReconnectOpenAI("dropped") in core.on_openai_closed(1011, "")
    seen.append(core.phase)
    core.on_openai_open()
    core.on_openai(oa.SessionUpdated(), 1.1)
    apology = core.on_openai_closed(1011, "")  # a second drop: no reconnect left
    seen.append(core.phase)
    assert any(isinstance(a, PlayApology) for a in apology)
    [end] = core.on_twilio(tw.Mark("llc-apology"), 2.0)
    assert end == EndCall(EndReason.OPENAI_LOST, "OpenAI closed the session (code 1011); no reconnect left")
    core.end(end.reason, end.detail)
    seen.append(core.phase)
    assert seen == [Phase.WAITING, Phase.CONNECTING, Phase.CONFIGURING, Phase.LIVE, Phase.CONNECTING,
                    Phase.APOLOGY, Phase.ENDED]
    assert core.record.end_reason is EndReason.OPENAI_LOST
    assert core.on_timer(Deadline.APOLOGY_DONE, 9.0) == []  # ended: nothing more happens


def test_inputs_that_make_no_sense_in_a_phase_raise_or_change_nothing() -> None:
    core = CallCore(GA, SessionSpec())
    with pytest.raises(IllegalTransition):
        core.on_openai_open()  # a socket before the stream started: a bug in the shell
    assert core.on_openai_closed(1006, "") == []  # no session was open: nothing lost
    core.end(EndReason.NO_START, "no start")
    assert core.on_twilio(START, 1.0) == [] and core.phase is Phase.ENDED  # a start after the end starts nothing
    assert core.on_openai_open() == []

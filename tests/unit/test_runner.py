"""The one action runner: what goes at once, what waits (and in what order), and what it refuses."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
import trio

from llc.core.actions import (
    Action,
    ConnectOpenAI,
    Deadline,
    EndCall,
    Log,
    PlayApology,
    RunTool,
    Timer,
    TimerKey,
    ToOpenAI,
    ToTwilio,
)
from llc.core.record import EndReason
from llc.runner import ActionRunner, NotACall
from llc.ws.transport import TransportClosed

log = logging.getLogger("test.runner")


class FakeLeg:
    """A socket that is free or busy (a partial write still finishing) as the test says."""

    def __init__(self) -> None:
        self.busy = False
        self.closed = False
        self.writes: list[list[str | bytes]] = []  # one entry per write, as it went out
        self.backlogged = False
        self.pongs = 0
        self.freed = trio.Event()

    def send_nowait(self, texts: Sequence[str | bytes]) -> bool:
        if self.closed:
            raise TransportClosed(1006, "gone")
        if self.busy:
            return False
        self.writes.append(list(texts))
        return True

    async def send_texts(self, texts: Sequence[str | bytes]) -> None:
        await self.freed.wait()
        if self.closed:
            raise TransportClosed(1006, "gone")
        self.writes.append(list(texts))

    async def send_text(self, text: str | bytes) -> None:
        await self.send_texts([text])

    async def flush(self) -> None:
        self.backlogged = False


class Effects:
    def __init__(self) -> None:
        self.done: list[object] = []

    def connect_openai(self) -> None:
        self.done.append("connect")

    def end(self, reason: EndReason, detail: str = "") -> None:
        self.done.append((reason, detail))

    def twilio_send_failed(self) -> None:
        self.done.append("send failed")

    def run_tool(self, action: RunTool) -> None:
        self.done.append(action)

    def start_timer(self, key: TimerKey, delay_s: float) -> None:
        self.done.append((key, delay_s))

    async def play_apology(self, mark: str) -> None:
        self.done.append(mark)


def call_runner() -> tuple[ActionRunner, FakeLeg, FakeLeg, Effects]:
    twilio, openai, effects = FakeLeg(), FakeLeg(), Effects()
    runner = ActionRunner(log, twilio=twilio, effects=effects)  # type: ignore[arg-type]  # a fake leg, duck-typed
    runner.openai = openai  # type: ignore[assignment]  # likewise
    return runner, twilio, openai, effects


async def test_what_needs_no_wait_goes_at_once_and_twilio_frames_share_a_write() -> None:
    runner, twilio, openai, effects = call_runner()
    actions: list[Action] = [ToTwilio("clear"), ToTwilio("media"), ToTwilio("mark"), ToOpenAI("cancel"),
                             ConnectOpenAI(), RunTool("c1", "t", "{}"), Timer(Deadline.HANGUP_GRACE, 2.0),
                             Log("info", "x"), EndCall(EndReason.AGENT_HANGUP, "bye")]
    assert runner.submit_nowait(actions)
    assert twilio.writes == [["clear", "media", "mark"]] and openai.writes == [["cancel"]]
    assert effects.done == ["connect", RunTool("c1", "t", "{}"), (Deadline.HANGUP_GRACE, 2.0),
                            (EndReason.AGENT_HANGUP, "bye")]


async def test_a_busy_socket_defers_the_rest_in_order_behind_what_waits_already() -> None:
    runner, twilio, openai, _ = call_runner()
    async with trio.open_nursery() as nursery:
        runner.nursery = nursery
        twilio.busy = True
        assert not runner.submit_nowait([ToOpenAI("a1"), ToTwilio("m1"), ToOpenAI("a2")])
        assert openai.writes == [["a1"]]  # what went before the busy socket went at once
        assert not runner.submit_nowait([ToOpenAI("a3")])  # behind the queue, though its socket is free
        assert openai.writes == [["a1"]]
        await trio.sleep(0.01)
        assert twilio.writes == [] and openai.writes == [["a1"]]  # the drain waits on the write
        twilio.busy = False
        twilio.freed.set()
        with trio.fail_after(1):
            await runner.settle()
    assert twilio.writes == [["m1"]] and openai.writes == [["a1"], ["a2"], ["a3"]]


async def test_from_a_task_a_blocked_send_is_awaited_in_place() -> None:
    runner, twilio, _, effects = call_runner()
    twilio.busy = True
    async with trio.open_nursery() as nursery:
        nursery.start_soon(runner.execute, [ToTwilio("m1"), PlayApology("llc-apology")])
        await trio.sleep(0.01)
        assert twilio.writes == [] and effects.done == []
        twilio.freed.set()
    assert twilio.writes == [["m1"]] and effects.done == ["llc-apology"]


async def test_a_twilio_socket_gone_while_sending_hands_the_ending_to_the_call() -> None:
    runner, twilio, _, effects = call_runner()
    twilio.closed = True
    assert runner.submit_nowait([ToTwilio("m1")])
    assert effects.done == ["send failed"]


async def test_a_stop_queued_behind_a_write_that_fails_still_says_why_the_call_ended() -> None:
    """Twilio's ``stop`` arrives while a write waits; the close that follows fails the write.
    The stop's ending still runs (before: the failed write ended the call as a dropped socket)."""
    runner, twilio, _, effects = call_runner()
    async with trio.open_nursery() as nursery:
        runner.nursery = nursery
        twilio.busy = True
        assert not runner.submit_nowait([ToTwilio("m1")])
        assert not runner.submit_nowait([EndCall(EndReason.CALLER_HANGUP, "stop")])  # queued behind the write
        twilio.closed = True
        twilio.freed.set()
        with trio.fail_after(1):
            await runner.settle()
    assert effects.done == ["send failed", (EndReason.CALLER_HANGUP, "stop")]


async def test_a_warm_session_runner_refuses_what_only_a_call_can_do() -> None:
    runner = ActionRunner(log)
    runner.openai = FakeLeg()  # type: ignore[assignment]  # a fake leg, duck-typed
    await runner.execute([ToOpenAI("session.update"), Log("debug", "fine")])
    for action in (ToTwilio("m"), ConnectOpenAI(), EndCall(EndReason.NO_START), PlayApology("x")):
        with pytest.raises(NotACall):
            await runner.execute([action])


async def test_something_that_is_not_an_action_is_an_error_not_a_silent_skip() -> None:
    runner, *_ = call_runner()
    with pytest.raises(AssertionError, match="unreachable"):
        runner.submit_nowait(["not an action"])  # type: ignore[list-item]  # exactly what the test is about

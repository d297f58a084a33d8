"""What a tool may do to the call it runs in: the call shell's side of ``llc.tools.registry.ToolContext``."""

from __future__ import annotations

from collections.abc import Callable

import trio

from llc.core.call import CallCore
from llc.core.levers import Lever
from llc.modes.runtime import ModeCall
from llc.runner import ActionRunner
from llc.twilio.control import TwilioCallControl
from llc.twilio.twiml import dial_target


class CallToolContext:
    def __init__(self, core: CallCore, runner: ActionRunner, call_control: TwilioCallControl,
                 mode: Callable[[], ModeCall | None]) -> None:
        self._core, self._runner, self._call_control, self._mode = core, runner, call_control, mode

    @property
    def mode(self) -> ModeCall | None:
        """The call's scenario (its store, caller, customer, menu); None before the plan."""
        return self._mode()

    @property
    def transfer_allow(self) -> tuple[str, ...]:
        """The allow-list of the call's current scenario (an IVR may switch it mid-call)."""
        mode = self.mode
        return mode.transfer_allow if mode is not None else ()

    @property
    def call_sid(self) -> str:
        return self._core.record.call_sid

    @property
    def params(self) -> dict[str, str]:
        return self._core.params

    def now(self) -> float:
        return trio.current_time()

    async def apply(self, levers: list[Lever]) -> None:
        """The mode's levers (a spoken menu choice), carried out by the call."""
        await self._runner.execute(self._core.on_levers(levers, trio.current_time()))

    async def hang_up_after_goodbye(self) -> None:
        await self._runner.execute(self._core.request_hangup())

    async def redirect(self, twiml: str) -> None:
        number = dial_target(twiml)
        if number is None:
            await self._call_control.redirect(self.call_sid, twiml)
            return
        with self._core.journal.transferring(number):  # Twilio ends the stream next: a hand-over, not a hang-up
            await self._call_control.redirect(self.call_sid, twiml)

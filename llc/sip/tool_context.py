"""What a tool may do to a SIP call: the SIP side of ``llc.tools.registry.ToolContext``.

A transfer is a SIP REFER, not a TwiML redirect: the built-in ``transfer_call`` hands over
``<Dial>NUMBER</Dial>``, and the number in it becomes the REFER's ``tel:`` target.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from llc.core.levers import Lever
from llc.modes.runtime import ModeCall
from llc.twilio.twiml import dial_target


class SipToolContext:
    def __init__(self, call_id: str, params: dict[str, str], mode: ModeCall,
                 apply: Callable[[list[Lever]], Awaitable[None]], hangup_after_goodbye: Callable[[], None],
                 refer: Callable[[str], Awaitable[None]]) -> None:
        self._call_id, self._params, self._mode = call_id, params, mode
        self._apply, self._goodbye, self._refer = apply, hangup_after_goodbye, refer

    @property
    def call_sid(self) -> str:
        return self._call_id

    @property
    def params(self) -> dict[str, str]:
        return self._params

    @property
    def mode(self) -> ModeCall | None:
        return self._mode

    @property
    def transfer_allow(self) -> tuple[str, ...]:
        return self._mode.transfer_allow

    def now(self) -> float:
        return trio.current_time()

    async def apply(self, levers: list[Lever]) -> None:
        await self._apply(levers)

    async def hang_up_after_goodbye(self) -> None:
        self._goodbye()

    async def redirect(self, twiml: str) -> None:
        number = dial_target(twiml)
        if number is None:
            raise ValueError("on a SIP call only a transfer to one number (<Dial>NUMBER</Dial>) can be done")
        await self._refer(f"tel:{number}")


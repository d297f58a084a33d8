"""What a scenario's mode (llc/modes) may ask of a live call: run a tool on the call's own
decision, stop the agent, hint the model, or switch the call to another scenario. Pure.

Part of CallCore (a mixin over its state), kept apart so the call's event handling reads
without the IVR's levers in the way.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from llc.core import session as sess
from llc.core.actions import Action, RunTool, ToOpenAI, json_text
from llc.core.record import ToolCallRecord
from llc.core.turns import SwitchState, TurnPolicy

if TYPE_CHECKING:
    from llc.core.call import CallCore


class ModeHooks:
    """The levers scenario modes pull on a live call (mixed into CallCore; ``self`` is the call)."""

    def run_local_tool(self: "CallCore", name: str, arguments: str, now: float) -> list[Action]:
        """Run a tool on the call's own decision (an IVR key press): recorded, output not sent to the model."""
        call_id = f"local_{len(self.record.tool_calls) + 1}"
        rec = ToolCallRecord(call_id=call_id, name=name, arguments=arguments, started_at=round(now - self.t0, 3))
        self._tools_running[call_id] = rec
        self._local_tools.add(call_id)
        self.record.tool_calls.append(rec)
        return [RunTool(call_id, name, arguments)]

    def interrupt(self: "CallCore", now: float) -> list[Action]:
        """Stop the agent as a barge-in does (a key press while it reads the menu)."""
        return self._on_speech_started({}, now)

    def tell_model(self: "CallCore", text: str) -> list[Action]:
        """A text hint as a user item, then a response about it (gated like every create)."""
        return [ToOpenAI(json_text(sess.user_message(text)))] + self.request_response()

    def switch_session(self: "CallCore", spec: sess.SessionSpec, policy: TurnPolicy) -> list[Action]:
        """Move the live call to another scenario: one full session.update, later-turn settings."""
        self.policy, self.switch = policy, SwitchState(policy, switched=True)
        td = policy.later_turn_detection(spec.turn_detection)
        self.spec = replace(spec, turn_detection=td, tools=self._tools(policy.full_tools))
        update = sess.session_update(self.shape, self.spec)
        # The service refuses a voice change once the agent has spoken: the voice stays.
        update["session"].pop("voice", None)
        update["session"].get("audio", {}).get("output", {}).pop("voice", None)
        return [ToOpenAI(json_text(update))]

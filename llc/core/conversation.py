"""A call's conversation with the agent: responses, barge-in, tools, the mode's levers, hang-up. Pure.

``CallCore`` owns the call's lifecycle (its phase, the session being opened, lost or given up)
and hands everything said and done inside a session to this part: the response gate (a
``response.create`` never meets an active response), the first-turn switch, the agent's audio
and what a barge-in does to it, tool calls and their filler, the scenario's levers, and the
hang-up after the goodbye. A new OpenAI session (``renew``) starts these afresh, keeping what
must carry over (the mark names and the playout clock).
"""

from __future__ import annotations

from typing import Any, assert_never

from llc.core import openai_events as oa
from llc.core import session as sess
from llc.core.actions import Action, Deadline, EndCall, Log, RunTool, Timer, ToolFiller, ToOpenAI, json_text
from llc.core.agent_audio import AgentAudio
from llc.core.dialect import Dialect
from llc.core.journal import Journal
from llc.core.levers import Interrupt, Lever, Routed, RunLocalTool, SwitchSession, TellModel
from llc.core.playout import Playout
from llc.core.record import EndReason
from llc.core.toolcalls import ToolCalls
from llc.core.turns import ResponseGate, SwitchState, TurnPolicy, first_turn_spec, later_spec, switch_update

# A claimed warm session's priming reply still running holds the greeting this long at most.
PRIMING_GRACE_S = 0.5


class Conversation:
    def __init__(self, dialect: Dialect, spec: sess.SessionSpec, policy: TurnPolicy,
                 tool_schemas: dict[str, dict[str, Any]], journal: Journal, t0: float) -> None:
        self.dialect, self.policy, self.tool_schemas = dialect, policy, tool_schemas
        # The first turn runs eager and lean; the switch widens both once.
        self.spec = first_turn_spec(spec, policy, tool_schemas)
        self.journal, self.t0 = journal, t0
        self.stream_sid = ""  # the Twilio stream the agent's audio goes to
        self.audio = AgentAudio(Playout(policy.mark_every_ms))
        self.gate = ResponseGate()
        self.switch = SwitchState(policy)
        self.tools = ToolCalls(journal)
        self._hangup_after: int | None = None  # responses done when end_call asked to hang up
        self._priming: str | None = None  # a warm session's priming reply still running

    @property
    def playout(self) -> Playout:
        return self.audio.playout

    def plan(self, spec: sess.SessionSpec, policy: TurnPolicy) -> None:
        """The call's scenario is known (before any session opened): its session and policy."""
        self.policy, self.switch = policy, SwitchState(policy)
        self.spec = first_turn_spec(spec, policy, self.tool_schemas)
        self.audio = self.audio.renewed(policy.mark_every_ms)  # no agent audio has gone out yet

    def renew(self, lost: str) -> None:
        """A new OpenAI session: nothing of the old one's responses or tools carries over."""
        self.gate = ResponseGate()
        self.audio = self.audio.renewed(self.policy.mark_every_ms)
        self.tools.abandon(lost, forget=True)

    def current_spec(self) -> sess.SessionSpec:
        """The session as it stands now: after the first-turn switch, later eagerness and all tools."""
        return later_spec(self.spec, self.policy, self.tool_schemas) if self.switch.switched else self.spec

    # ---- responses ------------------------------------------------------------------------

    def _send_gated(self, events: list[dict[str, Any]]) -> list[Action]:
        return [ToOpenAI(json_text(e)) for e in events]

    def request_response(self, create: dict[str, Any] | None = None) -> list[Action]:
        """Ask for a response; it waits for ``response.done`` if one is active."""
        return self._send_gated(self.gate.request(create or {"type": "response.create"}))

    def hold_for_priming(self, priming: str) -> Timer:
        """A claimed warm session's priming reply still runs: creates wait for it, within a grace."""
        self._priming = priming
        self.gate.hold(priming)
        return Timer(Deadline.PRIMING_GRACE, PRIMING_GRACE_S)

    def priming_grace(self) -> list[Action]:
        if self._priming is None:
            return []
        priming, self._priming = self._priming, None
        if priming == "?" or self.gate.active_id != priming:
            return self._send_gated(self.gate.release(priming))  # never named: stop waiting
        # Still running: cancel it by id; its response.done (cancelled) releases the gate.
        self.gate.cancel_sent()  # its done may cross the cancel: the service's "nothing active" is then expected
        return [ToOpenAI(json_text({"type": "response.cancel", "response_id": priming})),
                Log("info", f"warm session's priming reply still running after {PRIMING_GRACE_S:g} s: cancelled")]

    def on_response_created(self, response_id: str, out_of_band: bool) -> None:
        if not out_of_band:
            self.gate.on_created(response_id)

    def on_out_of_band_done(self, response_id: str) -> list[Action]:
        """A response outside the conversation ended: e.g. a warm session's priming, still in
        flight when the call claimed it. The creates it held go now."""
        self._priming = None
        return self._send_gated(self.gate.release(response_id or "?"))

    def on_response_done(self, response_id: str) -> list[Action]:
        """One of the call's responses ended (the caller checks for the hang-up after it)."""
        self.journal.reply_ended()
        actions = self.audio.tail(self.stream_sid)  # no audio.done came (e.g. cancelled): mark the tail
        actions += self._send_gated(self.gate.on_done(response_id))
        if self.switch.due(self.gate.done_count):
            # One session.update, once: calmer VAD and the full tool set for later turns.
            update = switch_update(self.dialect, self.spec, self.policy, self.tool_schemas)
            actions.insert(0, ToOpenAI(json_text(update)))
            actions.append(Log("info", "first turn done: switched eagerness and tool set",
                               {"eagerness": self.policy.later_eagerness, "tools": list(self.policy.full_tools)}))
        return actions

    # ---- barge-in ---------------------------------------------------------------------------

    def interrupt(self, now: float, service_cancels: bool, caller_item: str = "") -> list[Action]:
        """Barge-in: clear, cancel, truncate. ``service_cancels``: the service already cancelled the
        response itself (``interrupt_response`` on detected speech); a key press it never sees.
        ``caller_item``: the caller's input item the speech becomes, whose transcript tells words from noise."""
        result = self.audio.barge_in(self.gate, service_cancels, self.stream_sid, now)
        if not result.interrupted:
            return []
        # Without transcription no transcript will come: whether it had words stays unknown.
        awaits = caller_item if self.spec.transcription_model else ""
        self.journal.barge_in(now, result.truncate, self.playout, awaits)
        return result.actions

    # ---- tools ------------------------------------------------------------------------------

    def on_tool_event(self, event: oa.FunctionCall | oa.McpCall, now: float) -> list[Action]:
        if isinstance(event, oa.FunctionCall):
            return self.on_function_call(event.call_id, event.name, event.arguments, now)
        rec = self.tools.mcp(event, now - self.t0)
        if rec is None:
            return []
        return [Log("warning" if rec.error else "info", "mcp call", {"tool": rec.name, "ms": rec.ms, "error": rec.error})]

    def on_function_call(self, call_id: str, name: str, arguments: str, now: float) -> list[Action]:
        if not call_id or call_id in self.tools:
            return []
        self.tools.start(call_id, name, arguments, now - self.t0)
        actions: list[Action] = [RunTool(call_id, name, arguments), Log("info", "tool call", {"tool": name, "call_id": call_id})]
        if self.policy.tool_filler_after_ms > 0:
            actions.append(Timer(ToolFiller(call_id), self.policy.tool_filler_after_ms / 1000))
        return actions

    def on_tool_result(self, call_id: str, output: str, now: float, error: str | None) -> list[Action]:
        finished = self.tools.finish(call_id, output, error, now - self.t0)
        if finished is None:
            return []
        rec, local = finished
        if local:
            return [Log("warning" if error else "info", f"local tool {rec.name} finished", {"output": output})]
        item = {"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call_id, "output": output}}
        actions: list[Action] = [ToOpenAI(json_text(item))]
        if error:
            actions.append(Log("warning", f"tool {rec.name} failed; the model was told and the call goes on", {"error": error}))
        return actions + self.request_response()

    def filler(self, call_id: str) -> list[Action]:
        """A tool still running: a short spoken filler, unless it finished or the agent already talks."""
        if call_id not in self.tools or self.gate.busy or self.playout.speaking:
            return []
        return self.request_response({"type": "response.create", "response": {"instructions": self.policy.filler_instructions}})

    # ---- hanging up after the goodbye --------------------------------------------------------

    def request_hangup(self) -> list[Action]:
        """end_call: hang up after the agent's next reply has been heard (by mark)."""
        self._hangup_after = self.gate.done_count
        return [Timer(Deadline.HANGUP_GRACE, self.policy.hangup_grace_s)]

    @property
    def hanging_up(self) -> bool:
        """end_call was asked for: the goodbye is under way."""
        return self._hangup_after is not None

    def maybe_hang_up(self) -> list[Action]:
        if self._hangup_after is None:
            return []
        goodbye_done = self.gate.done_count > self._hangup_after and not self.gate.busy and not self.gate.queued
        if goodbye_done and not self.playout.speaking and not self.tools:
            return [EndCall(EndReason.AGENT_HANGUP, "end_call: goodbye played")]
        return []

    def hangup_grace(self) -> list[Action]:
        if self._hangup_after is None:
            return []
        return [EndCall(EndReason.AGENT_HANGUP, f"end_call: goodbye not confirmed within {self.policy.hangup_grace_s:g} s")]

    # ---- the mode's levers (a key press, a spoken menu choice) ------------------------------

    def on_levers(self, levers: list[Lever], now: float) -> list[Action]:
        """What the call's mode asks for, in order, as actions."""
        actions: list[Action] = []
        for lever in levers:
            match lever:
                case Routed(via, choice, action, target):
                    self.journal.route(lever, now)
                    actions.append(Log("info", "caller routed", {"via": via, "choice": choice, "action": action,
                                                                 "target": target}))
                case Interrupt():
                    actions += self.interrupt(now, service_cancels=False)
                case RunLocalTool(name, arguments):
                    call_id = self.tools.next_local_id()
                    self.tools.start(call_id, name, arguments, now - self.t0, local=True)
                    actions.append(RunTool(call_id, name, arguments))
                case TellModel(text):
                    actions += [ToOpenAI(json_text(sess.user_message(text))), *self.request_response()]
                case SwitchSession():
                    actions += self._switch_session(lever)
                case _:
                    assert_never(lever)
        return actions

    def _switch_session(self, lever: SwitchSession) -> list[Action]:
        self.policy, self.switch = lever.policy, SwitchState(lever.policy, switched=True)
        self.spec = later_spec(lever.spec, lever.policy, self.tool_schemas)
        self.journal.scenario_switched(lever.scenario)
        # The service refuses a voice change once the agent has spoken: the voice stays.
        update = self.dialect.without_voice(self.dialect.session_update(self.spec))
        return [ToOpenAI(json_text(update)), Log("info", "switched scenario", {"scenario": lever.scenario})]

"""Outbound call decisions with no I/O: call statuses, answering-machine outcomes, prompt variables."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Literal

# Statuses after which the callee will never be on the line: a warm session waiting for them
# is closed at once (Twilio's call statuses: queued, ringing, in-progress, completed, busy, no-answer,
# canceled, failed).
NEVER_ANSWERED = frozenset({"busy", "no-answer", "failed", "canceled"})
FINAL_STATUSES = NEVER_ANSWERED | {"completed"}
MACHINE_PREFIX = "machine_"  # machine_start, machine_end_beep, machine_end_silence, machine_end_other

OnMachine = Literal["voicemail", "hangup"]
AmdOutcome = Literal["continue", "voicemail", "hangup"]


def amd_outcome(answered_by: str, on_machine: OnMachine, has_voicemail: bool) -> AmdOutcome:
    """What to do with Twilio's ``AnsweredBy``.

    human / unknown: carry on caller-first (a wrong hang-up on a person is worse than talking
    to a machine). fax: nobody to talk to. machine_*: the scenario's choice; a voicemail
    needs a message to leave, else hang up.
    """
    if answered_by == "fax":
        return "hangup"
    if answered_by.startswith(MACHINE_PREFIX):
        return "voicemail" if on_machine == "voicemail" and has_voicemail else "hangup"
    return "continue"


class TemplateError(ValueError):
    """A prompt template names a variable the request did not give."""


def render(template: str, variables: Mapping[str, str], where: str) -> str:
    """``{name}`` placeholders filled from ``variables``; a missing one is a clear error."""
    names = {field for _, field, _, _ in string.Formatter().parse(template) if field}
    missing = sorted(names - set(variables))
    if missing:
        raise TemplateError(f"{where} needs the variable(s) {', '.join(missing)}: pass them in \"variables\"")
    try:
        return template.format_map(dict(variables))
    except (ValueError, IndexError, AttributeError) as exc:
        raise TemplateError(f"{where} is not a usable template ({exc}); write placeholders as {{name}}") from None

"""The session a scenario's call starts with: the profile overlaid, the prompt composed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llc.core.session import SessionSpec
from llc.modes.scenario import Scenario
from llc.profile import Profile


def customer_context(scenario: Scenario, customer: dict[str, Any] | None) -> str:
    """The CSR's line about who is calling (caller ID lookup), for the prompt."""
    if scenario.mode != "csr" or not scenario.csr.identify_by_caller_id:
        return ""
    if customer is None:
        return "The caller's number is not on file: you cannot look up orders; you may still open a ticket."
    return (f"The caller is {customer['name']} (customer {customer['id']}, plan {customer['plan']}), "
            "identified by caller ID. Use their first name.")


def scenario_spec(scenario: Scenario, base: Profile, default_voice: str, tool_schemas: dict[str, dict[str, Any]],
                  customer: dict[str, Any] | None = None, variables: dict[str, str] | None = None,
                  ) -> tuple[Profile, SessionSpec]:
    """The scenario's profile and the session a call of it starts with (first-turn settings)."""
    profile = scenario.profile(base)
    prompt = "\n\n".join(p for p in (scenario.prompt(profile.instructions, variables or {}),
                                     customer_context(scenario, customer)) if p)
    return profile, replace(profile.session_spec(default_voice, tool_schemas), instructions=prompt or None)

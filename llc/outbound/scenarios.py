"""Outbound scenarios are the general scenarios of ``llc.modes.scenario`` (one file, both directions).

Kept as a name for existing callers: ``parse_scenarios`` / ``load_scenarios`` return the
scenario table alone.
"""

from __future__ import annotations

from llc.modes.scenario import Scenario, load_scenario_set, parse_scenario_file

__all__ = ["Scenario", "load_scenarios", "parse_scenarios"]


def parse_scenarios(text: str, source: str) -> dict[str, Scenario]:
    return parse_scenario_file(text, source).scenarios


def load_scenarios(path: str | None = None) -> dict[str, Scenario]:
    return load_scenario_set(path, "LLC_OUTBOUND_SCENARIOS").scenarios

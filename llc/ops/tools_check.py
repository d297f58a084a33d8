"""Doctor's tools line: the LLC_TOOLS modules import, and every tool a scenario names exists."""

from __future__ import annotations

from llc.config import Settings
from llc.modes.scenario import load_scenario_set
from llc.profile import ProfileError
from llc.tools.listing import summary
from llc.tools.loader import ToolLoadError, load_tools


def tools_status(settings: Settings) -> tuple[str, str, str]:
    """(PASS or FAIL, detail, fix), as doctor's ``Check`` takes them."""
    try:
        registry = load_tools(settings)
    except ToolLoadError as exc:
        return "FAIL", str(exc), ("fix the module or LLC_TOOLS (doctor imports them from the folder it runs in: "
                                  "run it where the server starts)")
    try:
        load_scenario_set(settings.scenarios_path, "LLC_SCENARIOS").check_tools(set(registry.tools))
    except ProfileError as exc:
        return "FAIL", str(exc), "name only known tools in [tools], or add their module to LLC_TOOLS"
    return "PASS", f"{len(registry.tools)} tools: {summary(registry)}", ""

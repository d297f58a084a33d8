"""The AI IVR's menu and its decisions. Pure: a key press or a spoken choice in, a decision out.

A menu option does exactly one thing, all from the scenario file: transfer to a department's
number, switch the call to another scenario (same call, same OpenAI session, new prompt and
tools), or hand the model a text hint (e.g. "read the menu again"). DTMF and speech meet in
``decide``: a key press arrives as a ``dtmf`` frame, a spoken choice as the ``route_call`` tool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from llc.config import is_e164
from llc.profile import ProfileError

DTMF_KEYS = "0123456789*#"
ActionKind = Literal["transfer", "scenario", "hint"]


@dataclass(frozen=True)
class IvrOption:
    key: str  # the DTMF key
    label: str  # what the caller may say ("sales"); also how the prompt names it
    action: ActionKind
    target: str  # E.164 number, scenario name, or hint text

    def describe(self) -> str:
        then = {"transfer": f"transfer to {self.label}", "scenario": f"connect to {self.label}"}.get(self.action, self.target)
        return f"press {self.key} or say '{self.label}': {then}"


@dataclass(frozen=True)
class Decision:
    """What the call does about a choice; ``option`` None means the choice matched nothing."""

    option: IvrOption | None
    choice: str
    via: str  # "dtmf" | "speech"

    @property
    def hint(self) -> str:
        """The text the model is given (as a user item) so it can speak about the choice."""
        if self.option is None:
            return f"(The caller chose {self.choice!r}, which is not on the menu. Say so in a few words and offer the menu again.)"
        o = self.option
        if o.action == "transfer":
            return f"(The caller chose {o.label}. They are being transferred now.)"
        if o.action == "scenario":
            return f"(The caller chose {o.label} and is now connected to you. Greet them briefly in your new role.)"
        return f"(The caller pressed {o.key} for {o.label}. {o.target})"


@dataclass(frozen=True)
class IvrMenu:
    options: tuple[IvrOption, ...]

    def decide(self, choice: str, via: str) -> Decision:
        """A key (``"1"``) or a spoken label (``"Sales"``, ``"the sales team"``) → the option."""
        text = choice.strip().lower()
        for o in self.options:
            if text == o.key if via == "dtmf" else text in (o.key, o.label.lower()):
                return Decision(o, choice, via)
        if via == "speech":  # a model may pass "the sales department" for "sales"
            for o in self.options:
                if re.search(rf"\b{re.escape(o.label.lower())}\b", text):
                    return Decision(o, choice, via)
        return Decision(None, choice, via)

    @property
    def transfer_numbers(self) -> tuple[str, ...]:
        return tuple(o.target for o in self.options if o.action == "transfer")

    def prompt_text(self) -> str:
        lines = "\n".join(f"- {o.describe()}" for o in self.options)
        return ("Phone menu (callers may press a key or say the choice; call route_call with the "
                f"choice when they say one):\n{lines}")


def parse_menu(raw: Any, where: str, scenario_names: set[str]) -> IvrMenu:
    if not isinstance(raw, list) or not raw:
        raise ProfileError(f"{where}: 'menu' must be a list of [[...menu]] tables, each with key, label and one action")
    options: list[IvrOption] = []
    for i, item in enumerate(raw):
        at = f"{where} menu[{i}]"
        if not isinstance(item, dict):
            raise ProfileError(f"{at}: must be a table")
        unknown = set(item) - {"key", "label", "transfer", "scenario", "hint"}
        if unknown:
            raise ProfileError(f"{at}: unknown key(s) {', '.join(sorted(unknown))}; use key, label and one of transfer, scenario, hint")
        key, label = item.get("key"), item.get("label")
        if not isinstance(key, str) or len(key) != 1 or key not in DTMF_KEYS:
            raise ProfileError(f"{at}: 'key' must be one DTMF key ({DTMF_KEYS}), not {key!r}")
        if any(o.key == key for o in options):
            raise ProfileError(f"{at}: key {key!r} is used twice")
        if not isinstance(label, str) or not label.strip():
            raise ProfileError(f"{at}: 'label' must name the choice, like label = \"sales\"")
        actions = [a for a in ("transfer", "scenario", "hint") if a in item]
        if len(actions) != 1:
            raise ProfileError(f"{at}: give exactly one of transfer = \"+1...\", scenario = \"name\", hint = \"...\"")
        action, target = actions[0], item[actions[0]]
        if not isinstance(target, str):
            raise ProfileError(f"{at}: {action!r} must be a string")
        if action == "transfer" and not is_e164(target):
            raise ProfileError(f"{at}: transfer {target!r} must be an E.164 number like \"+15551234567\"")
        if action == "scenario" and target not in scenario_names:
            raise ProfileError(f"{at}: scenario {target!r} is not defined; known: {', '.join(sorted(scenario_names))}")
        options.append(IvrOption(key, label.strip(), action, target))  # type: ignore[arg-type]  # action is "transfer", "scenario" or "hint": picked above
    return IvrMenu(tuple(options))

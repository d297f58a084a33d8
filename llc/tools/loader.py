"""``LLC_TOOLS``: import the user's tool modules at start and collect their ``@tool`` functions.

Modules are found in the folder the server starts in first (its working directory goes to the
front of ``sys.path``), then in the installed packages. Every mistake stops start-up with one
line (``ToolLoadError``, exit 2): a module that is missing or fails to import, a function
``@tool`` cannot describe, two tools with one name (built-ins included).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from types import ModuleType

from llc.config import ConfigError, Settings
from llc.tools.decorator import MarkedTool, marked
from llc.tools.modes import ALL_TOOLS
from llc.tools.registry import ToolRegistry
from llc.tools.schema import ToolSchemaError, where


class ToolLoadError(ConfigError):
    """One line naming the module (or both places of a clash), the error and the fix."""

    def __init__(self, line: str) -> None:
        super().__init__([line])
        self.line = line

    def __str__(self) -> str:
        return self.line


def module_names(value: str | None) -> list[str]:
    return [n.strip() for n in (value or "").split(",") if n.strip()]


def load_tools(settings: Settings, base: ToolRegistry = ALL_TOOLS) -> ToolRegistry:
    """``base`` plus the ``@tool`` functions of the modules ``LLC_TOOLS`` names (``base`` is not changed)."""
    names = module_names(settings.tool_modules)
    if not names:
        return base
    registry = ToolRegistry(dict(base.tools))
    places = {name: f"{t.source} {where(t.fn)}" for name, t in registry.tools.items()}
    seen: set[int] = set()  # a function re-exported by a second listed module is one tool
    for module_name in names:
        for found in collect(import_tool_module(module_name)):
            if id(found.fn) in seen:
                continue
            seen.add(id(found.fn))
            tool = found.as_tool()
            if tool.name in registry.tools:
                raise ToolLoadError(f"LLC_TOOLS: two tools named {tool.name!r}: {places[tool.name]} and {found.place}; "
                                    "rename one with @tool(name=...)")
            registry.tools[tool.name] = tool
            places[tool.name] = found.place
    return registry


def import_tool_module(name: str) -> ModuleType:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # the folder the server starts in comes before installed packages
    try:
        return importlib.import_module(name)
    except ToolSchemaError as exc:
        raise ToolLoadError(f"LLC_TOOLS: module {name}: {exc}") from None
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise ToolLoadError(f"LLC_TOOLS: no module {name!r} in {cwd} or the installed packages; put "
                                f"{name.replace('.', '/')}.py in the folder llc-phone starts in, pip install it, "
                                "or fix the name") from None
        raise ToolLoadError(f"LLC_TOOLS: module {name} failed to import: {_said(exc)}; "
                            "install what it imports or fix the module") from None
    except Exception as exc:  # noqa: BLE001  the user's code: any error is theirs to fix, said in one line
        raise ToolLoadError(f"LLC_TOOLS: module {name} failed to import: {_said(exc)}; fix the module") from None


def collect(module: ModuleType) -> list[MarkedTool]:
    """The ``@tool`` functions a module holds, in definition order."""
    return [m for value in list(vars(module).values()) if (m := marked(value)) is not None]


def _said(exc: BaseException) -> str:
    """``Type: message (file:line)``, the line being the last one in the failing code."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    if isinstance(exc, SyntaxError):
        return text  # its message already says file and line
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "importlib" not in f.filename]
    if own:
        return f"{text} ({own[-1].filename}:{own[-1].lineno})"
    return text

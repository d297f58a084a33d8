"""Tools declared in the scenarios file: ``[tool.NAME]`` tables of ``type = "http"`` or ``"mcp"``.

An HTTP tool is a signed POST to the user's URL (``llc.tools.http``); an MCP server is handed
to OpenAI in the GA session, which calls it directly. Both are checked once at start-up: an
unset ``${VAR}``, a plain-http URL off loopback, a bad ``parameters`` schema, an HTTP tool
without LLC_WEBHOOK_SECRET, or an MCP server under the flat shape stops ``serve`` with one line.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from llc.config import Settings
from llc.config_vars import in_the_clear
from llc.events.signing import MAKE_SECRET
from llc.profile import ProfileError
from llc.tools.http import HttpTool, HttpTools
from llc.tools.registry import Tool, ToolContext, ToolRegistry

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what the service accepts as a tool name
_HTTP_KEYS = {"type", "description", "url", "timeout_ms", "headers", "parameters"}
_MCP_KEYS = {"type", "description", "server_url", "allowed_tools", "require_approval", "headers"}
DEFAULT_TIMEOUT_MS = 5000


async def _not_local(ctx: ToolContext, **_: Any) -> Any:
    # OpenAI calls an MCP server itself; a function call by that name would be a service bug.
    return {"error": "this tool is an MCP server that OpenAI calls directly"}


@dataclass(frozen=True)
class McpTool(Tool):
    """An MCP server as a GA session tool (``openai.types.realtime`` ``Mcp``)."""

    entry: Any = None  # the session's tool entry, built at start-up

    def schema(self) -> dict[str, Any]:
        return dict(self.entry)


def expand(value: str, where: str, environ: Mapping[str, str]) -> str:
    """``${VAR}`` from the environment; an unset one is a start-up error naming it."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in environ:
            raise ProfileError(f"{where}: ${{{name}}} is not set; export {name} or remove it")
        return environ[name]

    return _VAR.sub(one, value)


def _headers(raw: Any, where: str, environ: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ProfileError(f"{where}: headers must be a table of strings, like headers = {{ Authorization = \"Bearer ${{TOKEN}}\" }}")
    return {k: expand(v, f"{where} headers.{k}", environ) for k, v in raw.items()}


def _url(raw: Any, key: str, where: str, settings: Settings, environ: Mapping[str, str]) -> str:
    if not isinstance(raw, str) or not raw:
        raise ProfileError(f"{where}: {key} = \"https://...\" is required")
    url = expand(raw, f"{where} {key}", environ)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProfileError(f"{where}: {key}={url!r} is not an http(s) URL")
    if in_the_clear(url) and not settings.local_only:
        raise ProfileError(f"{where}: {key}={url!r} is not https: what llc sends there would cross the network "
                           "in clear; use https://, or LLC_LOCAL_ONLY=on for an experiment on this machine only")
    return url


def _parameters(raw: Any, where: str) -> dict[str, Any]:
    ok = (isinstance(raw, dict) and raw.get("type") == "object"
          and isinstance(raw.get("properties", {}), dict)
          and all(isinstance(p, dict) for p in raw.get("properties", {}).values())
          and isinstance(raw.get("required", []), list)
          and set(raw.get("required", [])) <= set(raw.get("properties", {})))
    if not ok:
        raise ProfileError(f"{where}: parameters must be a JSON schema object, like parameters = {{ type = \"object\", "
                           "properties = { order_id = { type = \"string\" } }, required = [\"order_id\"] }")
    return dict(raw)


def _http(name: str, raw: dict[str, Any], where: str, settings: Settings, environ: Mapping[str, str],
          pool: HttpTools) -> Tool:
    if unknown := sorted(set(raw) - _HTTP_KEYS):
        raise ProfileError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_HTTP_KEYS))}")
    if not settings.webhook_secret:
        raise ProfileError(f"{where}: an HTTP tool's requests are signed, but LLC_WEBHOOK_SECRET is not set; "
                           f"set it (make one with {MAKE_SECRET}) "
                           "or remove the tool")
    timeout_ms = raw.get("timeout_ms", DEFAULT_TIMEOUT_MS)
    if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or not 1 <= timeout_ms <= 60_000:
        raise ProfileError(f"{where}: timeout_ms must be a whole number of milliseconds from 1 to 60000")
    spec = HttpTool(name, _url(raw.get("url"), "url", where, settings, environ), timeout_ms / 1000,
                    _headers(raw.get("headers", {}), where, environ))
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ProfileError(f"{where}: description must be a string")
    params = _parameters(raw.get("parameters", {"type": "object", "properties": {}}), where)
    return Tool(name, description, params, pool.function(spec), source="http")


def _mcp(name: str, raw: dict[str, Any], where: str, settings: Settings, environ: Mapping[str, str]) -> Tool:
    if unknown := sorted(set(raw) - _MCP_KEYS):
        raise ProfileError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_MCP_KEYS))}")
    if settings.openai_api_shape != "ga":
        raise ProfileError(f"{where}: MCP servers need the GA session shape (the flat beta shape has no MCP "
                           f"tools); set OPENAI_API_SHAPE=ga or remove the tool")
    entry: dict[str, Any] = {"type": "mcp", "server_label": name,
                             "server_url": _url(raw.get("server_url"), "server_url", where, settings, environ)}
    allowed = raw.get("allowed_tools")
    if allowed is not None:
        if not isinstance(allowed, list) or not all(isinstance(t, str) for t in allowed):
            raise ProfileError(f"{where}: allowed_tools must be a list of the server's tool names")
        entry["allowed_tools"] = list(allowed)
    approval = raw.get("require_approval", "never")
    if approval != "never":  # a phone call has nobody to approve a call mid-conversation
        raise ProfileError(f"{where}: require_approval must be \"never\" (a phone call cannot pause for an approval)")
    entry["require_approval"] = approval
    if "headers" in raw:
        entry["headers"] = _headers(raw["headers"], where, environ)
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ProfileError(f"{where}: description must be a string")
    if description:
        entry["server_description"] = description
    return McpTool(name, description, {"type": "object", "properties": {}}, _not_local, source="mcp", entry=entry)


def parse_declared(data: Mapping[str, Any], source: str, settings: Settings, pool: HttpTools,
                   environ: Mapping[str, str] | None = None) -> list[Tool]:
    """The ``[tool.NAME]`` tables of a parsed scenarios file, as registry tools."""
    env = os.environ if environ is None else environ
    table = data.get("tool", {})
    if not isinstance(table, dict):
        raise ProfileError(f"{source}: 'tool' must hold [tool.NAME] tables")
    out: list[Tool] = []
    for name, raw in table.items():
        where = f"{source} [tool.{name}]"
        if not _NAME.match(name):
            raise ProfileError(f"{where}: a tool name is letters, digits, _ and - (64 at most)")
        if not isinstance(raw, dict):
            raise ProfileError(f"{where}: must be a table")
        kind = raw.get("type")
        if kind == "http":
            out.append(_http(name, raw, where, settings, env, pool))
        elif kind == "mcp":
            out.append(_mcp(name, raw, where, settings, env))
        else:
            raise ProfileError(f"{where}: type must be \"http\" or \"mcp\", not {kind!r}")
    return out


def with_declared(tools: ToolRegistry, settings: Settings, pool: HttpTools,
                  environ: Mapping[str, str] | None = None) -> ToolRegistry:
    """``tools`` plus the scenarios file's declared tools (a new registry; ``tools`` is shared)."""
    if not settings.scenarios_path:
        return tools
    try:
        data = tomllib.loads(Path(settings.scenarios_path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return tools  # the scenario loader reports an unreadable or invalid file, with its reason
    declared = parse_declared(data, settings.scenarios_path, settings, pool, environ)
    merged = ToolRegistry(dict(tools.tools))
    for tool in declared:
        if tool.name in merged.tools:
            raise ProfileError(f"{settings.scenarios_path} [tool.{tool.name}]: {tool.name!r} is already a "
                               f"{merged.tools[tool.name].source} tool; pick another name")
        merged.tools[tool.name] = tool
    return merged


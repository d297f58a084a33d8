"""[tool.NAME] tables of the scenarios file: what start-up refuses (one line naming the tool and
the fix), and the MCP session entry checked against the openai SDK's own ``Mcp`` tool type."""

from __future__ import annotations

import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import orjson
import pydantic
import pytest
from openai.types.realtime.realtime_tools_config_param import Mcp

from llc.config import Settings
from llc.core.dialect import GA
from llc.core.session import SessionSpec
from llc.events.signing import Signer, new_message_id, new_secret
from llc.modes.scenario import parse_scenario_file
from llc.profile import ProfileError
from llc.tools.declared import McpTool, parse_declared
from llc.tools.http import HttpTools

REPO = Path(__file__).resolve().parents[2]
SECRET = new_secret()
HTTP = 'type = "http"\nurl = "https://crm.example.com/voice/orders"\n'


def parse(body: str, env: dict[str, str] | None = None, **settings: Any) -> list[Any]:
    s = Settings(**{"webhook_secret": SECRET, **settings})
    return parse_declared(tomllib.loads(body), "s.toml", s, HttpTools(s.webhook_secret), env or {})


@pytest.mark.parametrize(("body", "env", "settings", "line"), [
    (f'[tool.a]\n{HTTP}headers = {{ Authorization = "Bearer ${{CRM_TOKEN}}" }}', {}, {},
     "s.toml [tool.a] headers.Authorization: ${CRM_TOKEN} is not set; export CRM_TOKEN or remove it"),
    ('[tool.a]\ntype = "http"\nurl = "http://crm.example.com/x"', {}, {}, "s.toml [tool.a]: url='http://crm.example.com/x' is not https"),
    (f'[tool.a]\n{HTTP}parameters = {{ type = "string" }}', {}, {}, "s.toml [tool.a]: parameters must be a JSON schema object"),
    (f'[tool.a]\n{HTTP}parameters = {{ type = "object", required = ["x"] }}', {}, {}, "s.toml [tool.a]: parameters must be"),
    (f"[tool.a]\n{HTTP}", {}, {"webhook_secret": None}, "s.toml [tool.a]: an HTTP tool's requests are signed, but LLC_WEBHOOK_SECRET is not set"),
    (f"[tool.a]\n{HTTP}timeout_ms = 0", {}, {}, "s.toml [tool.a]: timeout_ms must be"),
    (f"[tool.a]\n{HTTP}method = \"GET\"", {}, {}, "s.toml [tool.a]: unknown key(s) method"),
    ('[tool.a]\ntype = "grpc"', {}, {}, "s.toml [tool.a]: type must be \"http\" or \"mcp\""),
    ('[tool.crm]\ntype = "mcp"\nserver_url = "https://mcp.example.com/mcp"', {}, {"openai_api_shape": "flat"},
     "s.toml [tool.crm]: MCP servers need the GA session shape"),
    ('[tool.crm]\ntype = "mcp"\nserver_url = "https://mcp.example.com/mcp"\nrequire_approval = "always"', {}, {},
     "s.toml [tool.crm]: require_approval must be \"never\""),
])
def test_start_up_refuses_a_bad_declared_tool_with_one_line(body: str, env: dict[str, str], settings: dict[str, Any],
                                                            line: str) -> None:
    with pytest.raises(ProfileError) as exc:
        parse(body, env, **settings)
    assert str(exc.value).startswith(line) and "\n" not in str(exc.value)


def test_plain_http_is_fine_on_loopback_or_when_local_only() -> None:
    assert parse('[tool.a]\ntype = "http"\nurl = "http://127.0.0.1:9/x"')[0].source == "http"
    assert parse('[tool.a]\ntype = "http"\nurl = "http://crm.lan/x"', local_only=True)[0].source == "http"


def test_mcp_server_becomes_the_sdk_shaped_ga_session_tool() -> None:
    body = """[tool.crm]
type = "mcp"
description = "Orders and tickets"
server_url = "https://mcp.example.com/mcp"
allowed_tools = ["get_order"]
require_approval = "never"
headers = { Authorization = "Bearer ${MCP_TOKEN}" }
"""
    [tool] = parse(body, {"MCP_TOKEN": "s3cret"})
    assert isinstance(tool, McpTool) and tool.source == "mcp"
    entry = tool.schema()
    assert entry == {"type": "mcp", "server_label": "crm", "server_url": "https://mcp.example.com/mcp",
                     "allowed_tools": ["get_order"], "require_approval": "never",
                     "headers": {"Authorization": "Bearer s3cret"}, "server_description": "Orders and tickets"}
    # The SDK's type is the oracle: every key is one of its fields, and it validates as one.
    assert set(entry) <= set(Mcp.__annotations__)
    assert pydantic.TypeAdapter(Mcp).validate_python(entry) == entry
    session = GA.session_update(SessionSpec(tools=(entry,)))["session"]
    assert session["tools"] == [entry]


def test_serve_refuses_an_unset_variable_with_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "scenarios.toml"
    path.write_text(f'[scenario.default]\n\n[tool.check_order]\n{HTTP}headers = {{ X-Key = "${{CRM_TOKEN}}" }}\n')
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "LLC_ENV_FILE": "/dev/null", "LLC_LOCAL_ONLY": "on",
           "OPENAI_REALTIME_URL": "ws://127.0.0.1:9/v1/realtime", "LLC_SCENARIOS": str(path),
           "LLC_WEBHOOK_SECRET": SECRET, "LLC_DB_URL": str(tmp_path / "llc.db"), "PORT": "0"}
    done = subprocess.run([sys.executable, "-m", "llc", "serve"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "Traceback" not in out and "ExceptionGroup" not in out
    assert f"{path} [tool.check_order] headers.X-Key: ${{CRM_TOKEN}} is not set; export CRM_TOKEN" in out


def test_the_fake_service_is_strict_about_mcp_tools() -> None:
    from llc.kit.sim.fake_openai_shapes import validate_session

    entry = {"type": "mcp", "server_label": "crm", "server_url": "https://mcp.example.com/mcp", "require_approval": "never"}
    assert validate_session("ga", GA.session_update(SessionSpec(tools=(entry,)))["session"]) is None
    wrong = validate_session("ga", {"type": "realtime", "tools": [{**entry, "url": "https://x"}]})
    assert wrong is not None and wrong[0] == "unknown_parameter" and "session.tools[0].url" in wrong[1]
    assert validate_session("ga", {"type": "realtime", "tools": [{**entry, "require_approval": "sometimes"}]}) is not None
    unlabelled = validate_session("ga", {"type": "realtime", "tools": [{"type": "mcp", "server_url": "https://x"}]})
    assert unlabelled is not None and unlabelled[0] == "missing_required_parameter"
    flat = validate_session("flat", {"tools": [entry]})  # the beta shape has no MCP tools
    assert flat is not None and flat[2].startswith("session.tools[0]")


def _blocks(lang: str) -> list[str]:
    text = (REPO / "docs" / "05-async-tools.md").read_text().split("## HTTP tools", 1)[1]
    return [b.split("\n", 1)[1] for b in text.split("```")[1::2] if b.startswith(lang + "\n")]


def test_the_docs_examples_are_what_llc_takes_and_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    http_toml, mcp_toml = _blocks("toml")
    for block in (http_toml, mcp_toml):
        text = block + '\n[scenario.default]\n[scenario.csr]\nmode = "csr"\n'
        parse_scenario_file(text, "docs")  # the file with [tool.NAME] is a valid scenarios file
        tools = parse(text, {"CRM_TOKEN": "t", "MCP_TOKEN": "m"})
        assert {t.source for t in tools} <= {"http", "mcp"} and tools
    # The JSON shown is the body's shape; the Python receiver verifies what llc signs.
    [shown] = _blocks("json")
    body = orjson.dumps(orjson.loads(shown.replace("…", "")))
    [python] = _blocks("python")
    namespace: dict[str, Any] = {}
    monkeypatch.setenv("LLC_WEBHOOK_SECRET", SECRET)
    exec(python, namespace)  # noqa: S102  the docs' own receiver
    headers = Signer(SECRET).headers(new_message_id(), body, time.time())
    assert namespace["handle"](body, headers) == (200, {"order_id": "A1002", "status": "shipped", "eta": "Monday"})
    assert namespace["handle"](body + b" ", headers)[0] == 401

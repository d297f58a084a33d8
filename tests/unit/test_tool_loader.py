"""LLC_TOOLS: modules found in the start folder, their @tool functions collected; every mistake
one line naming the module (or both places of a clash) and the fix. The command: `llc-phone tools`,
a bad module refused by `tools` and `serve` with exit 2 and no traceback."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llc.config import Settings
from llc.ops.tools_check import tools_status
from llc.tools.loader import ToolLoadError, load_tools
from llc.tools.modes import ALL_TOOLS

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
_n = itertools.count()

GOOD = '''
from typing import Annotated
from llc import tool, ToolContext

@tool
async def {name}(ctx: ToolContext, day: Annotated[str, "which day"], party_size: int = 2) -> dict:
    """Free tables for a day."""
    return {{"day": day, "party": party_size, "call": ctx.call_sid}}

async def helper() -> None:  # not marked: not a tool
    pass
'''


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's start folder; sys.path is put back afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path


def module(folder: Path, text: str, stem: str = "tools") -> str:
    """A uniquely named module in the folder (imported modules stay in sys.modules)."""
    name = f"user_{stem}_{next(_n)}"
    (folder / f"{name}.py").write_text(textwrap.dedent(text))
    return name


def test_a_modules_tools_join_the_built_ins(folder: Path) -> None:
    name = module(folder, GOOD.format(name="check_availability"))
    registry = load_tools(Settings(tool_modules=f" {name} ,"))
    assert list(registry.tools)[: len(ALL_TOOLS.tools)] == list(ALL_TOOLS.tools)
    added = registry.tools["check_availability"]
    assert added.source == f"module {name}" and added.description == "Free tables for a day."
    assert added.parameters["required"] == ["day"] and "helper" not in registry.tools
    assert "check_availability" not in ALL_TOOLS.tools  # the built-in registry is not changed
    assert load_tools(Settings()) is ALL_TOOLS
    status, detail, _ = tools_status(Settings(tool_modules=name))
    assert status == "PASS" and f"check_availability (module {name})" in detail and "end_call (built-in)" in detail


def test_a_package_re_exporting_a_listed_modules_tool_counts_it_once(folder: Path) -> None:
    first = module(folder, GOOD.format(name="one_tool"))
    again = module(folder, f"from {first} import one_tool\n")
    assert "one_tool" in load_tools(Settings(tool_modules=f"{first},{again}")).tools


def one_line(value: str | None) -> str:
    with pytest.raises(ToolLoadError) as err:
        load_tools(Settings(tool_modules=value))
    text = str(err.value)
    assert "\n" not in text and text.startswith("LLC_TOOLS: "), text
    return text


def test_missing_broken_and_undescribable_modules(folder: Path) -> None:
    assert f"no module 'not_there' in {folder} or the installed packages" in one_line("not_there")
    broken = module(folder, "import os\nraise RuntimeError('no database configured')\n")
    said = one_line(broken)
    assert f"module {broken} failed to import: RuntimeError: no database configured ({folder}/{broken}.py:2)" in said
    needs = module(folder, "import some_package_nobody_installed\n")
    assert "ModuleNotFoundError: No module named 'some_package_nobody_installed'" in one_line(needs)
    syntax = module(folder, "def broken(:\n")
    assert f"module {syntax} failed to import: SyntaxError" in one_line(syntax)
    bad = module(folder, '''
        from llc import tool
        @tool
        async def lookup(ctx, filters: dict) -> None:
            """Look up."""
    ''')
    said = one_line(bad)
    assert f"module {bad}: @tool {bad}:lookup: parameter 'ctx' has no annotation; annotate it (`ctx: ToolContext`" in said
    status, detail, fix = tools_status(Settings(tool_modules=bad))
    assert status == "FAIL" and detail == said and "run it where the server starts" in fix


def test_two_tools_with_one_name_name_both_places(folder: Path) -> None:
    first = module(folder, GOOD.format(name="check_availability"))
    second = module(folder, GOOD.format(name="check_availability"))
    said = one_line(f"{first},{second}")
    assert (f"two tools named 'check_availability': {first}:check_availability and {second}:check_availability"
            in said and "rename one with @tool(name=...)" in said)
    clash = module(folder, GOOD.format(name="end_call"))
    assert f"two tools named 'end_call': built-in llc.tools.builtin:end_call and {clash}:end_call" in one_line(clash)


def llc_phone(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed command as a user runs it (its sys.path does not hold the folder), on this source tree."""
    base = {"PATH": f"{BIN}:/usr/bin:/bin", "PYTHONPATH": str(REPO), "LLC_ENV_FILE": "/dev/null"}
    return subprocess.run([str(BIN / "llc-phone"), *args], env={**base, **env}, cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_command_lists_tools_and_refuses_a_bad_module_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "my_tools.py").write_text(GOOD.format(name="check_availability"))
    listed = llc_phone("tools", cwd=tmp_path, LLC_TOOLS="my_tools")
    assert listed.returncode == 0, listed.stderr
    assert "check_availability  module my_tools  Free tables for a day." in listed.stdout
    rows = json.loads(llc_phone("tools", "--json", cwd=tmp_path, LLC_TOOLS="my_tools").stdout)
    assert {r["name"]: r["source"] for r in rows}["check_availability"] == "module my_tools"
    assert rows[-1]["parameters"]["properties"]["day"] == {"type": "string", "description": "which day"}

    (tmp_path / "bad_tools.py").write_text("raise ImportError('cannot reach the booking system')\n")
    serve = {"LLC_LOCAL_ONLY": "on", "PORT": "0", "OPENAI_REALTIME_URL": "ws://127.0.0.1:9/v1/realtime",
             "LLC_TOOLS": "bad_tools"}
    for refused in (llc_phone("tools", cwd=tmp_path, LLC_TOOLS="bad_tools"), llc_phone("serve", cwd=tmp_path, **serve)):
        out = refused.stdout + refused.stderr
        assert refused.returncode == 2 and "Traceback" not in out, out
        [line] = [line for line in out.splitlines() if line.startswith("llc-phone:")]
        assert line.startswith("llc-phone: LLC_TOOLS: module bad_tools failed to import: ImportError: cannot reach "
                               "the booking system") and line.endswith("fix the module"), line


def test_the_guides_example_loads_as_written(folder: Path) -> None:
    """docs/05-async-tools.md's example, copied as a new user would: its tools, schemas and sources."""
    guide = (REPO / "docs" / "05-async-tools.md").read_text()
    blocks = [part.split("```")[0] for part in guide.split("```python\n")[1:]]
    [example] = [block for block in blocks if "my_tools.py" in block]
    name = module(folder, example, stem="guide")
    registry = load_tools(Settings(tool_modules=name))
    check, book = registry.tools["check_availability"], registry.tools["book_table"]
    assert (check.source, book.source) == (f"module {name}", f"module {name}")
    assert check.parameters["properties"]["area"] == {"type": "string", "enum": ["inside", "terrace"], "default": "inside"}
    assert book.description == "Book a table once the caller has chosen a time."
    assert book.parameters["required"] == ["day", "time", "name"]

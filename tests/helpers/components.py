"""A real component the tests need is missing: skip outside CI (naming the install command),
fail under CI (``CI`` set), where .ci/run installs every component and a skip would hide a gap."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(what: str, install: str, *, module: bool = False) -> NoReturn:
    """``module``: called while a test module is imported (every test in it needs the component)."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed, and CI must run this test: {install}", pytrace=False)
    pytest.skip(f"{what} is not installed: {install}", allow_module_level=module)

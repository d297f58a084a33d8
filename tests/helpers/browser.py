"""Debian's headless Chromium driven by Selenium through its chromedriver (the `chromium` and
`chromium-driver` packages, installed by .ci/run; never a browser download). A missing browser
skips outside CI and fails under CI, like every real component."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.helpers.components import missing

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT_S = 20.0


def require_chromium() -> None:
    """At the top of a browser test module, before selenium is imported."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        missing("headless Chromium", "apt-get install chromium chromium-driver", module=True)


def start_browser(profile: str, *flags: str) -> Any:
    """A fresh headless Chromium with its own profile folder; ``flags`` add to the usual ones."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1200,1000", *flags):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    return driver


def shot(driver: Any, name: str, tmp: Path) -> None:
    """A screenshot to tmp, or to $LLC_CONSOLE_SCREENSHOTS (how docs/console-*.png are made)."""
    folder = Path(os.environ.get("LLC_CONSOLE_SCREENSHOTS") or tmp)
    driver.save_screenshot(str(folder / name))

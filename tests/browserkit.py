"""A real headless Chromium for the browser tests (selenium with Debian's chromium and chromium-driver).

`browser` is a pytest fixture: a selenium WebDriver on a headless Chromium, quit after the test.
Without selenium, /usr/bin/chromium or /usr/bin/chromedriver the test is skipped, and under
CI=true it fails instead, saying what is missing (`.ci/run` installs them where apt is there).
`By`, `Keys` and `Select` are selenium's, re-exported. `shoot(driver, tmp_path, name)` writes a screenshot of the whole page and prints its path.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

try:  # re-exported for the tests, so that a machine without selenium skips them instead of erroring
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
except ImportError:  # pragma: no cover
    By = Keys = Select = None

CHROMIUM = os.environ.get("ROUTE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("ROUTE_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for what, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)):
        if not Path(path).exists():
            return f"{what} is not installed at {path} (apt-get install -y chromium chromium-driver)"
    return None


@pytest.fixture
def browser():
    missing = _missing()
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests need a headless Chromium: {missing}")
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def shoot(driver, folder: Path, name: str) -> Path:
    """A screenshot of the whole page (the window grown to its height) as folder/screenshots/NAME.png."""
    out = Path(folder) / "screenshots" / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 6000)")
    driver.set_window_size(1280, max(800, int(height)))
    driver.save_screenshot(str(out))
    driver.set_window_size(1280, 1000)
    print(f"screenshot: {out}")
    return out


def wait_for(driver, condition, timeout: float = 30.0, what: str = "the page"):
    """Poll condition(driver) until it is truthy; returns its value, or fails naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition(driver)
        except Exception as exc:  # the page is between two loads
            last = exc
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")

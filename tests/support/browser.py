"""A real headless Chromium for the console's acceptance tests: Debian's ``/usr/bin/chromium`` driven
by Debian's ``/usr/bin/chromedriver`` through Selenium. Nothing downloads a browser: when either
binary is missing the tests are skipped with the command that installs them."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("AI_CS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("AI_CS_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
README_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "console-inbox.png"


def require_chromium() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).exists() or shutil.which(p))]
    if missing:
        pytest.skip(
            f"headless Chromium not installed ({', '.join(missing)} missing): "
            "apt-get install -y chromium chromium-driver fonts-noto-cjk"
        )


def start_browser(lang: str = "en-US") -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root in CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1360,900",
        f"--lang={lang}",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
    ):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    service = Service(executable_path=CHROMEDRIVER, log_output=subprocess.DEVNULL)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    return driver


def wait_for(driver: Any, condition: Callable[[Any], Any], timeout: float = 10.0, message: str = "") -> Any:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # a live refresh may replace an element between finding it and reading it: look again
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=ignored).until(
        condition, message
    )


def click(driver: Any, by: str, selector: str, timeout: float = 10.0) -> None:
    """Click an element, looking it up again when a live refresh replaced it between the lookup and
    the click (a stale element is never clicked, so trying again cannot click twice)."""

    def attempt(d: Any) -> bool:
        d.find_element(by, selector).click()
        return True

    wait_for(driver, attempt, timeout, message=f"could not click {selector}")


def screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path

"""A headless Debian chromium driven by Selenium through Debian's chromedriver: nothing is
downloaded at test time (the driver and the browser come from the system's packages)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

WIDTH, HEIGHT = 1280, 900
WAIT_S = 20  # an upper bound for a DOM condition, not a timing assertion


def _required(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: apt-get install -y {package} (.ci/run does)")
    return path


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """One headless browser (a fresh profile), quit afterwards."""
    with tempfile.TemporaryDirectory() as profile:
        options = Options()
        options.binary_location = _required("chromium", "chromium")
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--user-data-dir={profile}",
            "--lang=en-US",
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(executable_path=_required("chromedriver", "chromium-driver"))
        driver = webdriver.Chrome(options=options, service=service)
        try:
            yield driver
        finally:
            driver.quit()


def wait_for(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], Any]) -> Any:
    """The first truthy value of `condition` (JavaScript errors surface as failures)."""
    return WebDriverWait(
        driver,
        WAIT_S,
        poll_frequency=0.05,
        # the page redraws: an element may go between finding it and reading it
        ignored_exceptions=(StaleElementReferenceException, NoSuchElementException),
    ).until(condition)


def texts(where: webdriver.Chrome | WebElement, selector: str) -> list[str]:
    """The rendered text of each match, read in one step (the page may redraw between two)."""
    driver = where.parent if isinstance(where, WebElement) else where
    root = where if isinstance(where, WebElement) else None
    found: list[str] = driver.execute_script(
        "const root = arguments[0] || document;"
        "return [...root.querySelectorAll(arguments[1])].map((e) => e.innerText.trim());",
        root,
        selector,
    )
    return found


def one(driver: webdriver.Chrome, selector: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, selector)

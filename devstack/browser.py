"""A real headless Chromium (Debian's, driven through its chromedriver) for the console tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@contextmanager
def chromium(width: int = 1280, height: int = 800) -> Iterator[webdriver.Chrome]:
    profile = tempfile.mkdtemp(prefix="chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--window-size={width},{height}",
    ):  # fmt: skip
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def by_testid(driver: webdriver.Chrome, testid: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f"[data-testid='{testid}']")


def wait_for(driver: webdriver.Chrome, check: Callable[[webdriver.Chrome], Any], timeout: float = 20) -> Any:
    """Until `check` answers something truthy; on time-out, the page's console in the error."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: check(d))
    except Exception as exc:
        logs = "\n".join(str(e.get("message")) for e in driver.get_log("browser"))
        page = driver.find_element(By.TAG_NAME, "body").text[:300]
        page += "\nmarked: " + str(
            driver.execute_script(
                "return [...document.querySelectorAll('[data-testid]')].map(e => e.dataset.testid + '=' + "
                "e.textContent.slice(0, 40)).join(' | ')"
            )
        )
        raise AssertionError(f"{exc!r}\nat {driver.current_url}\nconsole:\n{logs}\npage:\n{page}") from None


def text_of(driver: webdriver.Chrome, testid: str) -> str:
    """The element's text; "" while it is absent, or replaced between finding and reading it
    (a page re-rendering that part)."""
    found = driver.find_elements(By.CSS_SELECTOR, f"[data-testid='{testid}']")
    try:
        return found[0].text if found else ""
    except StaleElementReferenceException:
        return ""


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """Script errors and CSP refusals the page logged; an answer's HTTP status (a refused
    order's 400, a stream cut by a restart) is the page's business, not an error here."""
    return [
        str(e["message"])
        for e in driver.get_log("browser")
        if e.get("level") == "SEVERE" and "Failed to load resource" not in str(e["message"])
    ]


# The console's steps, as a trader or an operator takes them (the tests and `make screenshots`).


def submit(driver: webdriver.Chrome, form: str, **fields: str) -> None:
    """Fill the named fields of the form `form` (its test id) and submit it."""
    el = wait_for(driver, lambda d: by_testid(d, form))
    for name, value in fields.items():
        el.find_element(By.NAME, name).send_keys(value)
    el.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def start_plan(driver: webdriver.Chrome, plan: str, size: str) -> None:
    """Start a challenge of `plan` at the account size `size` from the plans page."""
    card = wait_for(driver, lambda d: by_testid(d, f"plan-{plan}"))
    Select(card.find_element(By.TAG_NAME, "select")).select_by_value(size)
    by_testid(driver, f"start-{plan}").click()


def order(driver: webdriver.Chrome, side: str, lots: str) -> None:
    """An order from the dashboard's ticket ("buy" or "sell")."""
    qty = by_testid(driver, "quantity")
    qty.clear()
    qty.send_keys(lots)
    by_testid(driver, side).click()

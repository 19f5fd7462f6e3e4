"""The dashboard in a real browser: Debian's headless Chromium, driven by Selenium,
against the dashboard on the local cluster over the meshed bookshop. Each page loads
without console errors and shows what `weft stat` shows; the graph draws the
bookshop's edges; a weight change appears on the split page; tap shows requests.
Screenshots go to the artifacts folder (WEFT_TEST_ARTIFACTS, else a session folder)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from meshed_bookshop import NAMESPACE, Bookshop
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from viz_install import Viz, weft

WAIT_S = 150.0
PAGES = ("namespaces", "workloads", "graph", "splits", "routes", "resources", "tap")


@pytest.fixture(scope="session")
def browser() -> Iterator[WebDriver]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium, "apt-get install chromium chromium-driver (make host-tools)"
    assert driver, "apt-get install chromium-driver (make host-tools)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,900"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver is Debian's: Selenium looks nothing up online.
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


def wait(browser: WebDriver, condition: Callable[[WebDriver], Any]) -> Any:
    def retried(driver: WebDriver) -> Any:
        try:
            return condition(driver)
        except StaleElementReferenceException:  # the page redrew under us: ask again
            return False

    return WebDriverWait(browser, WAIT_S, poll_frequency=0.5).until(retried)


def open_page(browser: WebDriver, viz: Viz, page: str) -> None:
    browser.get(f"{viz.url}#/{page}/{NAMESPACE}")


def console_errors(browser: WebDriver) -> list[dict[str, Any]]:
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def value(browser: WebDriver, selector: str) -> str:
    found = browser.find_elements(By.CSS_SELECTOR, selector)
    return found[0].get_attribute("data-value") or "" if found else ""


def test_every_page_loads_without_console_errors(
    browser: WebDriver, viz: Viz, artifacts: Path
) -> None:
    browser.get(viz.url)
    for page in PAGES:
        open_page(browser, viz, page)
        # This page drawn (not the one before: only the URL's hash changed).
        drawn = f"main[data-page={page}][data-loaded=true]"
        shown = f"{drawn} tbody tr" if page == "tap" else f"{drawn} table, {drawn} svg"
        wait(browser, lambda b, shown=shown: b.find_elements(By.CSS_SELECTOR, shown))
        assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid=error]"), page
        browser.save_screenshot(str(artifacts / f"{page}.png"))
        assert console_errors(browser) == [], page


def test_the_workloads_page_shows_what_weft_stat_shows(browser: WebDriver, viz: Viz) -> None:
    open_page(browser, viz, "workloads")
    row = "[data-testid=workloads] tr[data-name='{}'] td.{}"
    names = ("web", "books-v1", "ratings")

    def figures(b: WebDriver) -> dict[str, dict[str, str]] | None:
        read = {n: {k: value(b, row.format(n, k)) for k in ("success", "rps")} for n in names}
        complete = all(v for figures in read.values() for v in figures.values())
        return read if complete else None  # one page's figures, none still drawing

    shown = wait(browser, figures)
    ran = weft(viz.shop, "stat", "deploy", "-n", NAMESPACE, "--prometheus", viz.prometheus,
               "-o", "json", timeout=240)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    stat = {row["name"]: row for row in json.loads(ran.stdout)}
    for name in names:
        assert abs(float(shown[name]["success"]) - stat[name]["success"]) <= 0.02, (shown, stat)
        assert abs(float(shown[name]["rps"]) - stat[name]["rps"]) <= 0.25 * stat[name]["rps"]


def test_the_graph_draws_the_bookshops_edges(browser: WebDriver, viz: Viz) -> None:
    open_page(browser, viz, "graph")
    edge = "svg g.edge[data-source='{0}/deploy/{1}'][data-target='{0}/deploy/{2}']"
    wanted = [("traffic", "web"), ("web", "books-v1"), ("web", "ratings")]
    selectors = [edge.format(NAMESPACE, source, target) for source, target in wanted]
    wait(browser, lambda b: all(b.find_elements(By.CSS_SELECTOR, s) for s in selectors))


def test_a_weight_change_appears_on_the_split_page(
    browser: WebDriver, viz: Viz, bookshop: Bookshop, artifacts: Path
) -> None:
    open_page(browser, viz, "splits")
    share = "[data-testid=split][data-name=books] tr[data-backend='{}'] td.weight-share"
    wait(browser, lambda b: value(b, share.format("books-v2")) == "0")
    bookshop.set_weights({"books-v1": 75, "books-v2": 25})
    try:
        # Live: the page polls, nobody reloads it.
        wait(browser, lambda b: value(b, share.format("books-v2")) == "0.25")
        assert value(browser, share.format("books-v1")) == "0.75"
        traffic = (
            "[data-testid=split][data-name=books] tr[data-backend='books-v2'] td.traffic-share"
        )
        wait(browser, lambda b: float(value(b, traffic) or 0) > 0)
        browser.save_screenshot(str(artifacts / "splits-75-25.png"))
    finally:
        bookshop.set_weights({"books-v1": 100, "books-v2": 0})


def test_tap_shows_requests_filtered_by_workload(
    browser: WebDriver, viz: Viz, artifacts: Path
) -> None:
    open_page(browser, viz, "tap")
    form = wait(browser, lambda b: b.find_element(By.ID, "tap-form"))
    form.find_element(By.NAME, "workload").send_keys("deploy/books-v1")
    form.find_element(By.NAME, "path").send_keys("/books")
    form.submit()
    cells = "[data-testid=tap] tbody tr td.path"

    def first_paths(b: WebDriver) -> list[str]:
        try:
            found = [cell.text for cell in b.find_elements(By.CSS_SELECTOR, cells)][:3]
        except StaleElementReferenceException:
            return []  # the table was redrawn as we read it: read it again
        return found if len(found) == 3 else []

    try:
        shown = wait(browser, first_paths)
    except TimeoutException:
        # What the page showed, for whoever reads the failure (it failed in CI runs, not
        # here: the cause is not known yet).
        browser.save_screenshot(str(artifacts / "tap-filtered-failed.png"))
        status = browser.find_element(By.ID, "status").text
        rows = len(browser.find_elements(By.CSS_SELECTOR, "[data-testid=tap] tbody tr"))
        raise AssertionError(
            f"no 3 filtered tap rows: status {status!r}, {rows} rows, "
            f"console {browser.get_log('browser')[-5:]}"
        ) from None
    for path in shown:
        assert path.startswith("/books")
    assert console_errors(browser) == []

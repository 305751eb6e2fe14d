"""The MLflow UI as a person sees it: Debian's Chromium (headless) driven by Selenium, over the
store of a small real sweep. `make test` installs the browser; if it is missing this test fails
with the reason, it is never skipped."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from conftest import BIN, REPO, client

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOTS = REPO / "tests" / "artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1900,1000"]
WAIT = 90  # seconds: the React app loads, then fetches the runs


@pytest.fixture(scope="module")
def browser():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium Python package")
    if missing:
        pytest.fail(f"The browser test cannot run: {', '.join(missing)} not installed; `make test` installs "
                    "them (apt-get install chromium chromium-driver, pip install -e '.[dev]').")
    options = Options()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.TemporaryDirectory(prefix="imbalance-lab-chromium-")
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile.name}"]:
        options.add_argument(flag)
    # An explicit driver path: Selenium must never try to download a driver or a browser.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        profile.cleanup()


@pytest.fixture(scope="module")
def mlflow_ui(small_sweep):
    """`mlflow ui` on a free loopback port over the sweep's store; always stopped afterwards."""
    port = _free_port()
    log = open(small_sweep["folder"] / "mlflow_ui.log", "w")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "ui", "--backend-store-uri", small_sweep["store"], "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        cwd=small_sweep["folder"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_healthy(url, server, small_sweep["folder"] / "mlflow_ui.log")
        yield url
    finally:
        _stop(server)
        log.close()


def test_ui_lists_child_runs_with_macro_f1_and_shows_the_confusion_matrix(browser, mlflow_ui, small_sweep):
    from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    c = client(small_sweep["store"])
    exp = c.get_experiment_by_name("imbalance-lab")
    children = [r for r in c.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 12
    SCREENSHOTS.mkdir(exist_ok=True)

    # The run table, filtered to the child runs (a filter the user can type) and sorted by macro-F1.
    query = urlencode({"searchFilter": 'params.seed != "none"', "orderByKey": "metrics.`test/macro_f1`",
                       "orderByAsc": "false"})
    browser.get(f"{mlflow_ui}/#/experiments/{exp.experiment_id}/runs?{query}")
    # React re-renders under our feet: an element found a moment ago may be gone, so every lookup
    # and click retries until it holds.
    wait = WebDriverWait(browser, WAIT, ignored_exceptions=(StaleElementReferenceException,
                                                            ElementClickInterceptedException))
    wait.until(lambda d: all(r.info.run_name in d.page_source for r in children))
    # Show the test/macro_f1 column, as a person would: Columns -> search -> tick it.
    _click(wait, lambda d: d.find_element(By.XPATH, "//button[normalize-space()='Columns']"))
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "input[placeholder='Search columns']")
               .send_keys("test/macro_f1") is None)
    _click(wait, lambda d: _innermost_with_text(d, "test/macro_f1", exclude="Sort:"))
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()  # close the menu
    rows = wait.until(lambda d: _rows_with_a_metric(d, children))
    browser.save_screenshot(str(SCREENSHOTS / "mlflow_ui_runs.png"))
    for run in children:
        name, value = rows[run.info.run_id]
        assert run.info.run_name in name and abs(value - run.data.metrics["test/macro_f1"]) < 1e-6

    # Filtered by an axis's tag, as the README tells: only that option's runs remain.
    # (Sorted by a metric, the table lists runs flat instead of folded under their sweep.)
    query = urlencode({"searchFilter": 'tags.loss = "bce"', "orderByKey": "metrics.`test/macro_f1`"})
    browser.get(f"{mlflow_ui}/#/experiments/{exp.experiment_id}/runs?{query}")
    bce = {r.info.run_id for r in children if r.data.tags["loss"] == "bce"}
    wait.until(lambda d: {e.get_attribute("row-id") for e in d.find_elements(By.CSS_SELECTOR, ".ag-row[row-id]")}
               - {children[0].data.tags["mlflow.parentRunId"]} == bce)

    # One run's artifacts: confusion_matrix.png is listed and its preview renders.
    best = max(children, key=lambda r: r.data.metrics["test/macro_f1"])
    browser.get(f"{mlflow_ui}/#/experiments/{exp.experiment_id}/runs/{best.info.run_id}/artifacts")
    _click(wait, lambda d: _innermost_with_text(d, "confusion_matrix.png"))
    # The preview is a blob: image; it is ours if it has the logged PNG's exact pixel size.
    (small_sweep["folder"] / "ui").mkdir(exist_ok=True)
    png = Path(c.download_artifacts(best.info.run_id, "confusion_matrix.png", str(small_sweep["folder"] / "ui")))
    width, height = struct.unpack(">II", png.read_bytes()[16:24])
    wait.until(lambda d: any(d.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", img)
                             == [width, height] for img in d.find_elements(By.TAG_NAME, "img")))
    browser.save_screenshot(str(SCREENSHOTS / "mlflow_ui_confusion_matrix.png"))


def _click(wait, find) -> None:
    """Find and click in one retried step, so a re-render between the two does not fail the test."""
    def attempt(driver):
        element = find(driver)
        if element is None:
            return False
        element.click()
        return True

    wait.until(attempt)


def _rows_with_a_metric(driver, children) -> dict[str, tuple[str, float]] | None:
    """Run id -> (the run name shown, the test/macro_f1 shown), once every child's row shows both.
    ag-grid splits a row into pinned and scrolling parts that share the run id as `row-id`."""
    from selenium.webdriver.common.by import By

    found = {}
    for run in children:
        row = f".ag-row[row-id='{run.info.run_id}']"
        names = driver.find_elements(By.CSS_SELECTOR, f"{row} [col-id*='Run Name']")
        values = driver.find_elements(By.CSS_SELECTOR, f"{row} [col-id*='test/macro_f1']")
        if not names or not values or not values[0].text.strip():
            return None
        found[run.info.run_id] = (names[0].text, float(values[0].text))
    return found


def _innermost_with_text(driver, text: str, exclude: str = ""):
    from selenium.webdriver.common.by import By

    matches = driver.find_elements(By.XPATH, f"//*[normalize-space(.)='{text}' and not(*[normalize-space(.)='{text}'])]")
    return next((m for m in matches if m.is_displayed() and (not exclude or exclude not in m.text)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_healthy(url: str, server: subprocess.Popen, log_path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow ui exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow ui did not answer on {url} within {timeout} s:\n{log_path.read_text()[-3000:]}")


def _stop(server: subprocess.Popen) -> None:
    """The server and the worker it started: the process group of this one server, by its id."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)

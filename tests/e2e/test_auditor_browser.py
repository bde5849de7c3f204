"""The auditor view in a real headless browser (Debian's chromium) against a served mediator and a fake DHIS2 in
processes of their own: what an auditor sees of a push delivered later, its records and calls, a record's history,
an export, and a refused login. A screenshot of each page is written to tests/artifacts/screenshots/."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.wait import WebDriverWait

from tests import samples
from tests.conftest import DHIS2_PASSWORD, DHIS2_USER
from tests.e2e.openhim_core import free_port, wait_for_port
from tests.processes import faults, mediator_env, start_fake_dhis2

pytestmark = pytest.mark.e2e
CHANNEL = ("openhim-insurees", "browser-channel-pass")
AUDITOR = ("auditor", "Browser-audit-1")
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def mediator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("auditor-browser")
    fake, dhis2 = start_fake_dhis2(tmp, [samples.VILLAGE], DHIS2_USER, DHIS2_PASSWORD, tmp / "fake.log")
    port = free_port()
    env = mediator_env(
        port, tmp / "state", dhis2, CHANNEL[1], auditor_password=AUDITOR[1], pseudonym_key="browser-key",
        delivery_seconds="0.5", retry_seconds="1", openhim_console_url="https://console.example.org",
    )  # fmt: skip
    log = (tmp / "mediator.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "mediator.app.cli", "serve"], env=env, stdout=log, stderr=log)
    try:
        wait_for_port(port, 30, proc)
        yield {"url": f"http://127.0.0.1:{port}", "dhis2": dhis2}
    finally:
        proc.terminate()
        proc.wait(20)
        fake.terminate()
        fake.wait(10)


@pytest.fixture(scope="module")
def delivered_later(mediator: dict[str, Any]) -> None:
    """A push DHIS2 could not take when it came (answered 202), delivered by the worker once DHIS2 was back."""
    faults(mediator["dhis2"], fail_next=10**6)
    doc = samples.bundle(
        samples.group(), samples.patient(), samples.patient(samples.MEMBER, "104000002", is_head=False)
    )
    headers = {"X-OpenHIM-TransactionID": "5f2b7c1d9e8a4b3c2d1e0f9a", "X-OpenHIM-ClientID": "openimis"}
    resp = requests.post(f"{mediator['url']}/channels/insurees", json=doc, auth=CHANNEL, headers=headers, timeout=30)
    assert resp.status_code == 202, resp.text
    time.sleep(1.5)  # the worker tries again meanwhile, and meets DHIS2 still down
    faults(mediator["dhis2"], fail_next=0)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pushes = requests.get(f"{mediator['url']}/audit/", params={"format": "json"}, auth=AUDITOR, timeout=10).json()
        if pushes["pushes"] and pushes["pushes"][0]["status"] == "Successful":
            return
        time.sleep(0.3)
    raise AssertionError("the push was not delivered")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (shutil.which(CHROMIUM) and shutil.which(DRIVER)):
        pytest.fail("chromium and chromium-driver are needed (the test command installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def loaded(driver: Any) -> None:
    WebDriverWait(driver, 15).until(lambda d: d.execute_script("return document.readyState") == "complete")


def type_into(driver: Any, name: str, text: str) -> None:
    """Type into a field of the page, once the page is whole (Chromium may still be swapping in the page it was
    sent to: a field found meanwhile belongs to no document)."""
    from selenium.common.exceptions import WebDriverException

    for attempt in range(5):
        try:
            loaded(driver)
            driver.find_element("name", name).send_keys(text)
            return
        except WebDriverException:
            if attempt == 4:
                raise
            time.sleep(0.2)


def submit(driver: Any, selector: str) -> None:
    """Click a form's button and wait until its answer has loaded."""
    page = driver.find_element("tag name", "html")
    driver.find_element("css selector", selector).click()
    WebDriverWait(driver, 15).until(staleness_of(page))
    loaded(driver)


def sign_in(driver: Any, url: str, credentials: tuple[str, str], shot: str | None = None) -> None:
    """What an auditor does: open the view, land on the sign-in page, give the user name and password."""
    driver.delete_all_cookies()
    driver.get(f"{url}/audit/")
    loaded(driver)
    assert "/audit/login" in driver.current_url
    type_into(driver, "username", credentials[0])
    type_into(driver, "password", credentials[1])
    if shot:
        driver.save_screenshot(str(SHOTS / f"{shot}.png"))
    submit(driver, "#sign-in")


def visit(driver: Any, url: str, shot: str) -> str:
    driver.get(url)
    loaded(driver)
    driver.save_screenshot(str(SHOTS / f"{shot}.png"))
    return driver.find_element("tag name", "main").text


def test_the_pushes_page_shows_a_push_delivered_later(browser: Any, mediator: dict[str, Any], delivered_later: None):
    sign_in(browser, mediator["url"], AUDITOR)
    text = visit(browser, f"{mediator['url']}/audit/", "pushes")
    row = browser.find_element("css selector", "#pushes tr:nth-child(2)").text
    assert "Successful" in row and "insurees" in row and "openimis" in row
    assert "Group 1, Patient 2" in row and "3 delivered" in row
    link = browser.find_element("link text", "5f2b7c1d9e8a4b3c2d1e0f9a").get_attribute("href")
    assert link == "https://console.example.org/#!/transactions/5f2b7c1d9e8a4b3c2d1e0f9a"
    assert "Export: CSV" in text
    assert "Ageni" not in text and "104000001" not in text


def test_a_push_in_detail_shows_its_records_its_retries_and_its_decision(
    browser: Any, mediator: dict[str, Any], delivered_later: None
):
    sign_in(browser, mediator["url"], AUDITOR)
    visit(browser, f"{mediator['url']}/audit/", "pushes-before-detail")
    submit(browser, "#pushes tr:nth-child(2) td a")
    browser.save_screenshot(str(SHOTS / "push.png"))
    records = browser.find_element("id", "records").text
    assert f"Patient/{samples.HEAD}" in records and f"Group/{samples.FAMILY}" in records
    assert "delivered" in records and "trackedEntity" in records
    calls = [
        [td.text for td in r.find_elements("tag name", "td")]
        for r in browser.find_elements("css selector", "#calls tr")[1:]
    ]
    tracker = [status for _, call, _, _, status, *_ in calls if call.startswith("POST") and "/api/tracker" in call]
    assert "503" in tracker and tracker[-1] == "200"  # refused while DHIS2 was down, then taken
    assert "Successful (200)" in browser.find_element("id", "events").text
    page = browser.find_element("tag name", "main").text
    assert "Ageni" not in page and "104000001" not in page


def test_a_record_s_history_found_by_insurance_number(browser: Any, mediator: dict[str, Any], delivered_later: None):
    sign_in(browser, mediator["url"], AUDITOR)
    visit(browser, f"{mediator['url']}/audit/records", "record-search")
    type_into(browser, "number", "104000001")
    submit(browser, "form.filters button")
    browser.save_screenshot(str(SHOTS / "record.png"))
    versions = browser.find_element("id", "versions").text
    assert f"Patient/{samples.HEAD}" in browser.find_element("tag name", "h2").text
    assert "delivered" in versions and "trackedEntity" in versions
    assert "104000001" not in browser.find_element("tag name", "main").text  # looked up, never shown


def test_a_csv_export_of_the_filtered_pushes(browser: Any, mediator: dict[str, Any], delivered_later: None):
    sign_in(browser, mediator["url"], AUDITOR)
    visit(browser, f"{mediator['url']}/audit/?status=Successful", "pushes-filtered")
    href = browser.find_element("link text", "CSV").get_attribute("href")
    resp = requests.get(href, auth=AUDITOR, timeout=10)
    assert resp.headers["content-type"].startswith("text/csv")
    (row,) = list(csv.DictReader(io.StringIO(resp.text)))
    assert row["status"] == "Successful" and json.loads(row["records"]) == {"delivered": 3}
    assert row["openhim_transaction"] == "5f2b7c1d9e8a4b3c2d1e0f9a"


def test_the_journal_verifies_from_the_browser(browser: Any, mediator: dict[str, Any], delivered_later: None):
    sign_in(browser, mediator["url"], AUDITOR)
    visit(browser, f"{mediator['url']}/audit/verify", "verify")
    assert "The chain holds" in browser.find_element("id", "verdict").text


def test_a_refused_login(browser: Any, mediator: dict[str, Any]):
    sign_in(browser, mediator["url"], (AUDITOR[0], "not-the-password"), shot="login")
    browser.save_screenshot(str(SHOTS / "refused.png"))
    assert "the user name or the password is wrong" in browser.find_element("id", "refused").text
    browser.get(f"{mediator['url']}/audit/dead-letters")
    assert "/audit/login" in browser.current_url  # still not signed in
    sign_in(browser, mediator["url"], CHANNEL)  # a channel's credentials open no auditor page
    assert browser.find_elements("id", "refused")
    sign_in(browser, mediator["url"], AUDITOR)
    assert browser.find_element("tag name", "h1").text == "Pushes"
    submit(browser, "header a:last-child")  # Sign out
    browser.get(f"{mediator['url']}/audit/")
    assert "/audit/login" in browser.current_url

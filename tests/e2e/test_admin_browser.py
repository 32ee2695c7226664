"""The admin page in a real headless browser (Debian's chromium through its chromedriver,
driven by selenium) against the demo's lab: real dnsmasq, `phoneprov serve` and `phoneprov
admin` in the appliance's namespace, reached through a forwarded loopback port.

The browser logs in, watches a phone go from `never fetched` to `provisioned` as the
simulated phone boots (the page refreshes itself: no reload), filters, reveals and masks its
SIP password, resyncs it (the phone answers the check-sync and fetches again), enrols a
phone DHCP discovered (which then provisions), sorts, reads the doctor's findings and saves
a screenshot of the phones page into the test's directory.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phoneprov.core.markers import DeviceInfo
from phoneprov.lab import Lab
from phoneprov.lab.demo import ADMIN_USER, PBX_IP, PHONES, Demo

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"  # given explicitly: Selenium Manager never runs

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(
        not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
        reason="needs Debian's chromium and chromium-driver",
    ),
]

WAIT = 30.0  # the longest any one step may take (bounded waits, no fixed sleeps)
PHONE = PHONES[0]  # the demo's phone1: in the inventory, D200, options 66+67
NEW_MAC = "00:09:52:00:00:41"  # a D-series phone in no inventory: DHCP discovers it
HOSTILE = "<script>document.title++</script><b>D-series</b>"  # its DHCP vendor class
NEW_LINE = ("299", "new-phone-secret", "New desk", PBX_IP)


@pytest.fixture
def demo() -> Iterator[Demo]:
    """The demo's lab as the demo sets it up (dnsmasq, serve with PnP, kamailio, the admin
    service with a one-time password), plus a phone nobody enrolled; all removed after."""
    workdir = Path(tempfile.mkdtemp(prefix="phoneprov-admin-e2e-"))
    workdir.chmod(0o755)  # dnsmasq reads the per-device files as nobody
    try:
        with Lab(base="ppadm") as lab:
            the_demo = Demo(lab, workdir, admin_listen=("127.0.0.1", 0))
            lab.add_host("newphone", mac=NEW_MAC)
            try:
                the_demo.set_up()
                yield the_demo
            finally:
                the_demo.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Selenium Manager (which would download a driver) must never run: pointed at nothing,
    # any attempt to use it fails the test
    monkeypatch.setenv("SE_MANAGER_PATH", "/nonexistent/selenium-manager")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-proxy-server",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1440,900",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, what: str, condition: Any) -> Any:
    """The first truthy result of `condition(driver)` within WAIT seconds (an element the
    page's refresh replaced meanwhile is looked up again); fails naming `what` with the
    page's text."""
    ignored = (NoSuchElementException, StaleElementReferenceException)
    try:
        return WebDriverWait(driver, WAIT, 0.2, ignored).until(condition)
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text
        pytest.fail(f"timed out waiting for {what}; the page says:\n{body}")


def click(driver: Any, by: str, selector: str) -> None:
    """Click an element, found again if the page's refresh replaced it in between."""
    wait_for(driver, f"{selector} to click", lambda d: d.find_element(by, selector).click() or True)


# The phones table as the page shows it now, read in one go (it is re-rendered every few s).
ROWS_JS = """
return Array.from(document.querySelectorAll("table.phones tbody tr[data-mac]"), (tr) => {
  const row = {};
  for (const td of tr.querySelectorAll("td[data-col]")) row[td.dataset.col] = td.textContent;
  [row.mac_text, row.state_text] = [row.mac, row.state];  // with their details, as shown
  [row.mac, row.state] = [tr.dataset.mac, tr.dataset.state];
  return row;
});
"""


def phone_rows(driver: Any) -> list[dict[str, str]]:
    return list(driver.execute_script(ROWS_JS))


def phone_row(driver: Any, mac: str) -> dict[str, str] | None:
    return next((r for r in phone_rows(driver) if r["mac"] == mac), None)


def phone_state(driver: Any, mac: str) -> str | None:
    row = phone_row(driver, mac)
    return row["state"] if row else None


FETCH_LINK_JS = """
const done = arguments[arguments.length - 1];
fetch(document.getElementById(arguments[0]).href)
  .then((r) => r.text().then((body) => done([r.status, body])))
  .catch((err) => done([0, String(err)]));
"""


def fetch_rows(driver: Any) -> int:
    """Rows of a phone page's fetch history."""
    return int(driver.execute_script('return document.querySelectorAll("#fetches td.path").length'))


def files_text(driver: Any) -> str:
    return str(driver.execute_script('return document.getElementById("files").textContent'))


def ip_key(address: str) -> tuple[int, ...]:
    return tuple(int(part) for part in address.split("."))


def log_in(driver: Any, demo: Demo) -> None:
    driver.get(demo.admin_url + "login")
    driver.find_element(By.NAME, "username").send_keys(ADMIN_USER)
    driver.find_element(By.NAME, "password").send_keys(demo.admin_password)
    driver.find_element(
        By.CSS_SELECTOR, "form button[type=submit], form input[type=submit]"
    ).click()
    wait_for(driver, "the phones page", lambda d: d.find_elements(By.CSS_SELECTOR, "table.phones"))


def boot(demo: Demo, mac: str, model: str, vendor_class: str | None = None) -> Any:
    """The simulated phone's provisioning (DHCP, time, URL, fetch chain, apply)."""
    from phoneprov.phone.simulator import simulate

    host = next(h for h in demo.lab.hosts.values() if h.mac == mac)
    return simulate(DeviceInfo(mac, model), netns=host.netns, vendor_class=vendor_class)


def test_the_admin_watches_a_phone_provision_resyncs_it_and_enrols_a_new_one(
    demo, browser, tmp_path
):
    # nothing is reachable before the login: the page sends the browser to /login
    browser.get(demo.admin_url)
    wait_for(browser, "the login page", lambda d: d.find_elements(By.NAME, "password"))
    assert browser.current_url.startswith(demo.admin_url + "login")
    log_in(browser, demo)

    # phone1 is in the inventory and has not fetched yet
    wait_for(
        browser, "phone1 never fetched", lambda d: phone_state(d, PHONE.mac) == "never fetched"
    )
    first_page = browser.execute_script("return performance.timeOrigin")

    report = boot(demo, PHONE.mac, PHONE.model)
    assert report.ok, "\n".join(report.step_lines())
    wait_for(browser, "phone1 provisioned", lambda d: phone_state(d, PHONE.mac) == "provisioned")
    assert browser.execute_script("return performance.timeOrigin") == first_page  # no reload
    row = phone_row(browser, PHONE.mac)
    assert row is not None
    assert row["address"].startswith("10.231.0.")
    assert (row["name"], row["model"], row["fetch_status"]) == (PHONE.display_name, "D200", "200")

    # the filter box: only what matches stays
    browser.find_element(By.ID, "filter").send_keys("d200 provisioned")
    assert [r["mac"] for r in phone_rows(browser)] == [PHONE.mac]
    browser.find_element(By.ID, "filter").send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)
    assert len(phone_rows(browser)) == len(PHONES)

    # the phone's page: Resync, the phone (listening) answers and fetches again
    click(browser, By.LINK_TEXT, PHONE.mac)
    wait_for(browser, "the phone's files", lambda d: d.find_elements(By.CSS_SELECTOR, "#files pre"))
    files = "\n".join(p.text for p in browser.find_elements(By.CSS_SELECTOR, "#files pre"))
    assert PHONE.password not in files and "********" in files
    # the backup & restore file behind the download link (the session's cookie goes along)
    status, backup = browser.execute_async_script(FETCH_LINK_JS, "backup")
    assert status == 200 and "<configuration" in backup and PHONE.display_name in backup
    click(browser, By.ID, "reveal")  # asks again with ?reveal=1 (logged by the service)
    wait_for(browser, "the password revealed", lambda d: PHONE.password in files_text(d))
    click(browser, By.ID, "reveal")
    wait_for(browser, "the password masked again", lambda d: PHONE.password not in files_text(d))
    fetched = fetch_rows(browser)
    assert fetched >= len(report.outcome.files)  # the phone's first round
    listening = threading.Event()
    again: list[Any] = []
    phone_host = demo.phones[PHONE.name]

    def listen() -> None:
        from phoneprov.phone.simulator import resync_on_check_sync

        again.append(
            resync_on_check_sync(
                report, netns=phone_host.netns, timeout=WAIT, listening=lambda _a: listening.set()
            )
        )

    waiter = threading.Thread(target=listen)
    waiter.start()
    try:
        assert listening.wait(WAIT), "the phone could not listen for check-sync"
        browser.find_element(By.ID, "resync").click()
        result = wait_for(
            browser,
            "the resync's result",
            lambda d: d.find_element(By.ID, "resync-result").get_attribute("data-result"),
        )
    finally:
        waiter.join()
    assert result == "accepted", browser.find_element(By.ID, "resync-result").text
    assert again and again[0].ok, "\n".join(again[0].step_lines()) if again else "no report"
    # the page refreshes itself: the second round shows in its fetch history
    wait_for(browser, "the resync's fetches", lambda d: fetch_rows(d) > fetched)

    # a phone in no inventory asks for a lease: discovered, enrolled from the page
    first = boot(demo, NEW_MAC, "D200", vendor_class=HOSTILE)
    assert not first.ok  # it gets no options of ours yet
    click(browser, By.LINK_TEXT, "Phones")
    wait_for(
        browser,
        "the new phone listed as discovered",
        lambda d: (phone_row(d, NEW_MAC) or {}).get("mac_text") == NEW_MAC + "discovered",
    )
    click(browser, By.LINK_TEXT, NEW_MAC)  # a discovered phone's link: the enrol form
    form_css = f'form.enrol[data-mac="{NEW_MAC}"]'
    form = wait_for(
        browser, "the discovered phone", lambda d: d.find_elements(By.CSS_SELECTOR, form_css)
    )[0]
    # what any DHCP client sends is shown as text, never run or parsed as HTML
    cells = browser.find_elements(By.CSS_SELECTOR, f'tr[data-mac="{NEW_MAC}"] td')
    assert cells[1].text == HOSTILE
    assert not browser.find_elements(By.CSS_SELECTOR, "table.discovered script, table.discovered b")
    assert "NaN" not in browser.title
    Select(form.find_element(By.NAME, "model")).select_by_visible_text("D200")
    Select(form.find_element(By.NAME, "profile")).select_by_visible_text("default")
    for name, value in zip(
        ("user", "password", "display_name", "registrar"), NEW_LINE, strict=True
    ):
        form.find_element(By.NAME, name).send_keys(value)
    # the list refreshes itself meanwhile without touching the form being filled in
    updated = browser.find_element(By.ID, "discovered-status").text
    wait_for(
        browser, "a refresh", lambda d: d.find_element(By.ID, "discovered-status").text != updated
    )
    assert form.find_element(By.NAME, "display_name").get_attribute("value") == NEW_LINE[2]
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(
        browser,
        "the enrolment",
        lambda d: "Enrolled" in form.find_element(By.TAG_NAME, "output").text,
    )

    # its next DHCP exchange brings the options: it provisions with the line it was given
    second = boot(demo, NEW_MAC, "D200")
    assert second.ok, "\n".join(second.step_lines())
    identity = second.identities[0]
    assert (identity.username, identity.displayname) == (NEW_LINE[0], NEW_LINE[2])
    click(browser, By.LINK_TEXT, "Phones")
    wait_for(
        browser, "the new phone provisioned", lambda d: phone_state(d, NEW_MAC) == "provisioned"
    )

    # sorting by a column, then the other way round; phones without a lease stay last
    click(browser, By.CSS_SELECTOR, 'th[data-col="address"] button')
    leased = [r["address"] for r in phone_rows(browser) if r["address"] != "\u2014"]
    assert len(leased) == 2 and leased == sorted(leased, key=ip_key)
    assert [r["address"] for r in phone_rows(browser)][:2] == leased
    header = browser.find_element(By.CSS_SELECTOR, 'th[data-col="address"]')
    assert header.get_attribute("aria-sort") == "ascending"
    click(browser, By.CSS_SELECTOR, 'th[data-col="address"] button')
    assert [r["address"] for r in phone_rows(browser)][:2] == leased[::-1]
    assert header.get_attribute("aria-sort") == "descending"

    # the doctor's findings, each problem with its fix
    click(browser, By.LINK_TEXT, "Doctor")
    click(browser, By.ID, "doctor-run")
    summary = wait_for(
        browser,
        "the doctor's findings",
        lambda d: re.fullmatch(
            r"(\d+) checks: \d+ failed, \d+ warnings", d.find_element(By.ID, "doctor-status").text
        ),
    )
    findings = browser.find_elements(By.CSS_SELECTOR, "#findings li.finding")
    assert len(findings) == int(summary.group(1)) > 0
    problems = [f.text for f in findings if "level-ok" not in f.get_attribute("class")]
    assert all("\nfix: " in text for text in problems), problems
    click(browser, By.LINK_TEXT, "Phones")
    wait_for(browser, "the phones again", lambda d: len(phone_rows(d)) == len(PHONES) + 1)

    shot = tmp_path / "admin-phones.png"
    assert browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000

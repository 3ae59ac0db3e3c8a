"""The dashboard in a real headless Chromium, on routes run for real: the list shows the failing
route as failing, a run's page shows its rejects with their reasons, and run now (through its
confirmation) starts a run that shows live and ends with its counts. Screenshots of each page go
to the test's tmp folder (their paths are printed)."""

from __future__ import annotations

from browserkit import By, Keys, browser, shoot, wait_for  # noqa: F401  (fixture)
from dashkit import dashboard, project  # noqa: F401  (fixtures)


def text_of(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


def test_the_route_list_shows_a_failing_route_as_failing(browser, dashboard, tmp_path):
    browser.get(dashboard.url + "/")
    row = browser.find_element(By.XPATH, "//tbody/tr[th//a[text()='broken']]")
    assert row.get_attribute("data-state") == "failing"
    assert row.find_element(By.CSS_SELECTOR, ".badge").text == "failing"
    assert "every row was rejected" in row.text
    assert "/runs/" in row.find_element(By.XPATH, "./td[4]/a").get_attribute("href")  # its last run
    ok = browser.find_element(By.XPATH, "//tbody/tr[th//a[text()='payroll']]")
    assert "portal 4, published 4, archive 5" in ok.text
    shoot(browser, tmp_path, "dashboard-routes")
    # the keyboard reaches the skip link first
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"
    # the status filter, by keyboard: only the failing route is left
    select = browser.find_element(By.ID, "state")
    select.send_keys("failing")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    wait_for(browser, lambda d: "state=failing" in d.current_url, what="the filtered list")
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table.routes tbody th a")]
    assert names == ["broken"]


def test_clicking_into_a_run_shows_its_rejects_with_their_reasons(browser, dashboard, tmp_path):
    browser.get(dashboard.url + "/")
    browser.find_element(By.LINK_TEXT, "payroll").click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "table.runs tbody a"), what="the runs table")
    assert "valid (checked offline" in text_of(browser, "pre.validation")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#chart canvas"), what="the uPlot chart")
    shoot(browser, tmp_path, "dashboard-route")
    browser.find_element(By.CSS_SELECTOR, "table.runs tbody a").click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "table.rejects"), what="the run page")
    reasons = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "table.rejects td.c-reason")]
    assert reasons == ["'13/09/2024' matches none of the formats %m/%d/%Y, ISO 8601"]
    assert [td.text for td in browser.find_elements(By.CSS_SELECTOR, "table.rejects td.c-line")] == ["6"]
    targets = {
        tr.find_element(By.TAG_NAME, "th").text: tr.find_elements(By.TAG_NAME, "td")[2].text
        for tr in browser.find_elements(By.CSS_SELECTOR, "table.targets tbody tr")
    }
    assert targets == {"portal": "4", "published": "4", "archive": "5"}
    assert "route payroll run" in text_of(browser, "pre.log")
    shoot(browser, tmp_path, "dashboard-run")


def test_run_now_starts_a_run_that_shows_live_and_ends_with_its_counts(browser, dashboard, project, tmp_path):
    browser.get(dashboard.url + "/routes/slow")
    browser.find_element(By.LINK_TEXT, "Run now\u2026").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "confirm"), what="the confirmation page")
    assert "Start a run now of slow" in browser.find_element(By.TAG_NAME, "main").text
    shoot(browser, tmp_path, "dashboard-confirm")
    browser.find_element(By.ID, "confirm").send_keys(Keys.ENTER)  # by keyboard
    wait_for(browser, lambda d: "/runs/" in d.current_url, what="the run's page")
    live = wait_for(
        browser, lambda d: "Running for" in d.find_element(By.ID, "live").text, 60, "the run to show as running"
    )
    assert live
    shoot(browser, tmp_path, "dashboard-run-live")
    browser.get(dashboard.url + "/")
    wait_for(browser, lambda d: "slow" in d.find_element(By.ID, "running").text, 30, "the run in Running now")
    browser.back()
    (project / "slow" / "go").write_text("go")
    wait_for(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, "#run-status .badge").text == "success",
        60,
        "the run to end and its page to show it",
    )
    assert text_of(browser, "#rows-read") == "3"
    assert text_of(browser, "#rows-delivered") == "archive 3"
    shoot(browser, tmp_path, "dashboard-run-ended")

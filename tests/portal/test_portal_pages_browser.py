"""The local portal's data browser in a real headless Chromium: paging, sorting and a filter show
exactly the rows SoQL returns from /resource for the same query; the columns with their types and
descriptions, the metadata, a map of a point column, and the route and runs that wrote a dataset.
Screenshots of each page go to the test's tmp folder (their paths are printed)."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from browserkit import By, Select, browser, shoot, wait_for  # noqa: F401  (fixture)
from conftest import run_route_cli

from pipeline.portal import LocalPortal

ROOT = Path(__file__).resolve().parents[2]
TOWNS = ["Hartford", "Avon", "Bristol", "Canton"]


@pytest.fixture
def served(tmp_path):
    """The portal a real route run wrote (payroll), plus a dataset of 57 places with a point column."""
    shutil.copytree(
        ROOT / "routes" / "payroll", tmp_path / "payroll", ignore=shutil.ignore_patterns(".route", "out", "*.tests")
    )
    assert run_route_cli("execute", "-q", str(tmp_path / "payroll" / "payroll.yaml")).exit_code == 0
    portal = LocalPortal(tmp_path / "payroll" / ".route" / "portal.sqlite")
    ff = portal.create_dataset(
        "Places <test>",
        [
            {"fieldName": "place_id", "name": "Place ID", "dataTypeName": "text", "description": "A stable id"},
            {"fieldName": "town", "name": "Town", "dataTypeName": "text", "description": "Where it is"},
            {"fieldName": "visits", "name": "Visits", "dataTypeName": "number"},
            {"fieldName": "spot", "name": "Spot", "dataTypeName": "point"},
        ],
        row_identifier="place_id",
        description="Places to test the data browser.",
    )
    server = portal.serve()
    rows = [
        {
            "place_id": f"P{i:03d}",
            "town": TOWNS[i % 4],
            "visits": str((i * 37) % 101),
            "spot": f"POINT ({-73 + (i % 10) * 0.1:.1f} {41 + (i // 10) * 0.1:.1f})",
        }
        for i in range(57)
    ]
    assert requests.post(f"{server.url}/resource/{ff}.json", json=rows, timeout=30).status_code == 200
    meta = {"category": "Places", "tags": ["test", "map"], "licenseId": "CC0_10"}
    assert requests.put(f"{server.url}/api/views/{ff}.json", json=meta, timeout=30).status_code == 200
    try:
        yield server, ff
    finally:
        server.stop()
        portal.close()


def table_rows(driver) -> list[list[str]]:
    return [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in driver.find_elements(By.CSS_SELECTOR, "table.rows tbody tr")
    ]


def resource_rows(server, driver) -> tuple[list[list[str]], list[dict]]:
    """The rows /resource returns for the page's own query: as CSV cells, and as JSON."""
    link = driver.find_element(By.ID, "resource-link").get_attribute("href")
    parts = urlsplit(link)
    params = dict(parse_qsl(parts.query))
    base = f"{server.url}{parts.path[: -len('.json')]}"
    as_csv = requests.get(base + ".csv", params=params, timeout=30).text
    as_json = requests.get(base + ".json", params=params, timeout=30).json()
    return list(csv.reader(io.StringIO(as_csv)))[1:], as_json


def test_paging_sorting_and_a_filter_show_the_rows_soql_returns(browser, served, tmp_path):
    server, ff = served
    browser.get(f"{server.url}/d/{ff}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Places <test>"
    assert "Rows 1\u201325 of 57" in browser.find_element(By.CSS_SELECTOR, "table.rows caption").text
    cells, rows = resource_rows(server, browser)
    assert table_rows(browser) == cells and len(rows) == 25
    shoot(browser, tmp_path, "portal-dataset")

    # a filter and a smaller page, through the form (keyboard and select)
    browser.find_element(By.ID, "f-where").send_keys("town = 'Avon' AND visits > 20")
    Select(browser.find_element(By.ID, "f-limit")).select_by_visible_text("10")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    wait_for(browser, lambda d: "%24where" in d.current_url, what="the filtered page")
    expected = requests.get(
        f"{server.url}/resource/{ff}.json", params={"$where": "town = 'Avon' AND visits > 20", "$limit": "1000"}
    ).json()
    caption = browser.find_element(By.CSS_SELECTOR, "table.rows caption").text
    assert caption == f"Rows 1\u201310 of {len(expected)} matching"
    cells, rows = resource_rows(server, browser)
    assert table_rows(browser) == cells
    assert (
        [r[0] for r in table_rows(browser)] == [r["place_id"] for r in rows] == [r["place_id"] for r in expected[:10]]
    )
    assert {r[1] for r in table_rows(browser)} == {"Avon"}
    shoot(browser, tmp_path, "portal-filtered")

    # the next page of the same filter
    browser.find_element(By.LINK_TEXT, "Next page").click()
    wait_for(browser, lambda d: "%24offset=10" in d.current_url, what="the second page")
    cells, rows = resource_rows(server, browser)
    assert table_rows(browser) == cells
    assert [r[0] for r in table_rows(browser)] == [r["place_id"] for r in expected[10:20]]

    # sort by visits, descending (two clicks on its header), still filtered
    browser.find_element(By.PARTIAL_LINK_TEXT, "Visits").click()
    wait_for(browser, lambda d: "visits" in d.current_url and "%24offset" not in d.current_url, what="sorted")
    browser.find_element(By.PARTIAL_LINK_TEXT, "Visits").click()
    wait_for(browser, lambda d: "DESC" in d.current_url, what="sorted descending")
    header = browser.find_element(By.XPATH, "//table[@class='rows']//th[.//a[contains(., 'Visits')]]")
    assert header.get_attribute("aria-sort") == "descending"
    cells, rows = resource_rows(server, browser)
    assert table_rows(browser) == cells
    visits = [float(r[2]) for r in table_rows(browser)]
    assert visits == sorted(visits, reverse=True) and all(v > 20 for v in visits)
    shoot(browser, tmp_path, "portal-sorted")


def test_columns_metadata_map_and_a_query_error(browser, served, tmp_path):
    server, ff = served
    browser.get(f"{server.url}/d/{ff}")
    columns = {
        tr.find_elements(By.TAG_NAME, "td")[0].text: [td.text for td in tr.find_elements(By.TAG_NAME, "td")[1:]]
        for tr in browser.find_elements(By.CSS_SELECTOR, "table.columns tbody tr")
    }
    assert columns["place_id (row identifier)"] == ["Place ID", "text", "A stable id"]
    assert columns["spot"][:2] == ["Spot", "point"]
    meta = browser.find_element(By.CSS_SELECTOR, "dl.meta").text
    assert "Places" in meta and "test" in meta and "map" in meta and "Creative Commons" in meta
    svg = browser.find_element(By.CSS_SELECTOR, "svg.map")
    assert len(svg.find_elements(By.TAG_NAME, "circle")) == 57
    assert "57 points" in svg.get_attribute("aria-label")
    shoot(browser, tmp_path, "portal-map")
    browser.get(f"{server.url}/d/{ff}?$where=visits >")
    assert "The query failed" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert requests.get(f"{server.url}/d/{ff}", params={"$where": "visits >"}).status_code == 400


def test_a_dataset_links_to_the_route_and_runs_that_wrote_it(browser, served, tmp_path):
    server, _ = served
    browser.get(f"{server.url}/")
    browser.find_element(By.LINK_TEXT, "State payroll").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "writers-h"), what="the payroll dataset's page")
    route_link = browser.find_element(By.LINK_TEXT, "route payroll")
    assert route_link.get_attribute("href") == "http://127.0.0.1:8700/routes/payroll"
    runs = browser.find_elements(By.XPATH, "//section[h2[@id='writers-h']]//tbody/tr")
    assert len(runs) == 1
    cells = [td.text for td in runs[0].find_elements(By.TAG_NAME, "td")]
    assert cells[1:4] == ["payroll", "portal", "success"] and cells[5] == "4"
    assert runs[0].find_element(By.TAG_NAME, "a").get_attribute("href").startswith("http://127.0.0.1:8700/runs/")
    shoot(browser, tmp_path, "portal-written-by")
    browser.get(f"{server.url}/")
    assert "Places <test>" in browser.find_element(By.TAG_NAME, "table").text
    shoot(browser, tmp_path, "portal-index")

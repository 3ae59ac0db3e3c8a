"""Wire conversion: each Socrata type from each route type, bad values flagged with a reason."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from pipeline.socrata.wire import accepts, convert


def wire(values, socrata_type, arrow_type=None, **kw):
    c = convert(pa.array(values, arrow_type), socrata_type, **kw)
    bad = c.bad.to_pylist() if c.bad is not None else [False] * len(values)
    return c.values.to_pylist(), bad, c.reason


def test_numbers_keep_text_precision_and_reject_words():
    values, bad, reason = wire(["7.90", " 2 ", "1e5", "1,000", "abc", None], "number")
    assert values == ["7.90", "2", "1e5", None, None, None]
    assert bad == [False, False, False, True, True, False]
    assert "not a number" in reason


def test_numbers_from_floats_and_ints():
    # each value as it reads, whatever else the chunk holds: 3.0 goes as "3", the same in JSON and CSV
    assert wire([1.5, 3.0, float("nan"), None], "money")[0] == ["1.5", "3", None, None]
    assert wire([1.5, 3.0, -2.0, 1e21, None], "number", form="csv")[0] == ["1.5", "3", "-2", "1e+21", None]
    assert wire([1.5, 3.0, -2.0, 1e21, None], "number")[0] == ["1.5", "3", "-2", "1e+21", None]
    # all whole: sent as integers (a port job keeps "1" as "1")
    assert wire([1.0, None, -2.0], "number")[0] == [1, None, -2]
    assert wire([1.0, None, -2.0], "number", form="csv")[0] == ["1", None, "-2"]
    _, bad, reason = wire([1.0, float("inf")], "double")
    assert bad == [False, True] and "infinite" in reason
    assert wire([1, None, 2**53 + 1], "number")[0] == [1, None, 2**53 + 1]


def test_checkbox_words_and_integers():
    assert wire(["Yes", "n", "TRUE", "0", "maybe", None], "checkbox")[:2] == (
        [True, False, True, False, None, None],
        [False, False, False, False, True, False],
    )
    assert wire([0, 1, 2], "checkbox")[:2] == ([False, True, None], [False, False, True])


def test_floating_timestamps():
    assert wire([dt.datetime(2024, 1, 5, 9, 30, 0, 123000), None], "calendar_date", pa.timestamp("us"))[0] == [
        "2024-01-05T09:30:00.123",
        None,
    ]
    assert wire([dt.date(2024, 1, 5)], "calendar_date")[0] == ["2024-01-05T00:00:00"]
    values, bad, _ = wire(
        ["2024-01-05", "2024-01-05 09:30", "2024-02-30", "2024-01-05T09:30:00Z", "x"], "calendar_date"
    )
    assert values[:2] == ["2024-01-05T00:00:00", "2024-01-05T09:30:00"]
    assert bad == [False, False, True, True, True]


def test_zoned_values_in_a_floating_column_show_wall_clock_time():
    paris = pa.timestamp("us", tz="Europe/Paris")
    assert wire([dt.datetime(2024, 1, 5, 9, 30, tzinfo=dt.UTC)], "calendar_date", paris)[0] == [
        "2024-01-05T10:30:00.000"
    ]
    assert wire([dt.datetime(2024, 1, 5, 9, 30, tzinfo=dt.UTC)], "calendar_date", paris, timezone="America/New_York")[
        0
    ] == ["2024-01-05T04:30:00.000"]


def test_fixed_timestamps_are_utc_and_naive_values_use_the_timezone():
    naive = [dt.datetime(2024, 1, 5, 9, 30), None]
    assert wire(naive, "date", pa.timestamp("us"))[0] == ["2024-01-05T09:30:00.000Z", None]
    assert wire(naive, "date", pa.timestamp("us"), timezone="America/New_York")[0] == ["2024-01-05T14:30:00.000Z", None]
    values, bad, _ = wire(
        ["2024-01-05T09:30:00+01:00", "2024-01-05 09:30", "soon"], "date", timezone="America/New_York"
    )
    assert values == ["2024-01-05T09:30:00+01:00", "2024-01-05T14:30:00.000Z", None]
    assert bad == [False, False, True]


def test_text_from_every_type():
    assert wire([True, False, None], "text")[0] == ["true", "false", None]
    assert wire([1.5, 3.0], "text")[0] == ["1.5", "3"]
    assert wire(
        [dt.datetime(2024, 1, 5, 9, 30), dt.datetime(2024, 1, 5, 9, 30, 1, 500000)], "text", pa.timestamp("us")
    )[0] == ["2024-01-05T09:30:00", "2024-01-05T09:30:01.500"]


def test_geometry_as_wkt_and_geojson_text():
    values, bad, reason = wire(
        [
            "POINT (-72.5 41.2)",
            '{"type": "Point", "coordinates": [1.5, 2]}',
            "POINT (x y)",
            '{"type": "LineString", "coordinates": [[1, 2], [3, 4]]}',
            None,
        ],
        "point",
    )
    assert values == ["POINT (-72.5 41.2)", "POINT (1.5 2)", None, None, None]
    assert bad == [False, False, True, True, False]
    assert "WKT" in reason
    assert wire(['{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}'], "polygon")[0] == [
        "POLYGON ((0 0, 1 0, 1 1, 0 0))"
    ]


def test_location_forms():
    rule_json = '{"latitude":"41.5","longitude":"-72.1","human_address":"{\\"address\\":\\"1 Main St\\",\\"city\\":\\"Hartford\\",\\"state\\":\\"\\",\\"zip\\":\\"\\"}"}'
    values, bad, _ = wire([rule_json, "(41.2, -72.5)", "12 Elm St (41.2, -72.5)", "nowhere"], "location")
    assert values[0] == {
        "latitude": "41.5",
        "longitude": "-72.1",
        "human_address": '{"address":"1 Main St","city":"Hartford","state":"","zip":""}',
    }
    assert values[1] == {"latitude": "41.2", "longitude": "-72.5", "human_address": None}
    assert values[2]["human_address"] == '{"address":"12 Elm St","city":"","state":"","zip":""}'
    assert bad == [False, False, False, True]
    assert wire([rule_json, "12 Elm St (41.2, -72.5)"], "location", form="csv")[0] == [
        "1 Main St, Hartford (41.5, -72.1)",
        "12 Elm St (41.2, -72.5)",
    ]


def test_url_with_and_without_label():
    assert wire(["https://ct.gov", "Portal (https://data.ct.gov)", None], "url")[0] == [
        {"url": "https://ct.gov", "description": None},
        {"url": "https://data.ct.gov", "description": "Portal"},
        None,
    ]


@pytest.mark.parametrize(
    "route_type, socrata_type, ok",
    [
        ("boolean", "calendar_date", False),
        ("date", "number", False),
        ("integer", "checkbox", True),
        ("text", "point", True),
        ("number", "checkbox", False),
        ("datetime", "date", True),
    ],
)
def test_which_route_types_can_go_where(route_type, socrata_type, ok):
    assert accepts(route_type, socrata_type) is ok

"""Wire conversion: each Socrata type from each route type, bad values flagged with a reason."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest

from pipeline.socrata.batching import Rebatcher
from pipeline.socrata.columns import Mapping, Target
from pipeline.socrata.convert import to_wire
from pipeline.socrata.soda import encode_json
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


class _Rejects:
    def reject(self, rows, reason, column=None, value=None):
        return len(rows)


# Every Socrata type from the route types that feed it: nulls, unicode, escapes, big and small floats,
# decimals spelled out in the source, dates, date-times, geometry, location and url.
EVERY_TYPE = [
    ("id", "number", pa.int64(), [1, 2, 3, 4]),
    ("name", "text", pa.string(), ['Zoë "Z" \\ /', "line\nbreak\ttab\x01", "😀 \u2028 日本", None]),
    ("amount", "number", pa.float64(), [1e21, 2.5e-7, 3.0, None]),
    ("whole", "double", pa.float64(), [7.0, -2.0, None, 2.0**53 + 2]),
    ("spelled", "money", pa.string(), ["7.90", " 1e5 ", "0.10", None]),
    ("dec", "number", pa.decimal128(12, 3), [Decimal("1.500"), Decimal("-0.001"), None, Decimal("12345678.900")]),
    ("count", "text", pa.int64(), [0, -5, None, 2**62]),
    ("flag", "checkbox", pa.string(), ["yes", "0", None, "TRUE"]),
    ("day", "calendar_date", pa.date32(), [dt.date(2024, 2, 29), None, dt.date(1900, 1, 1), dt.date(2024, 1, 5)]),
    (
        "at",
        "calendar_date",
        pa.timestamp("us"),
        [
            dt.datetime(2024, 1, 5, 9, 30, 0, 123000),
            None,
            dt.datetime(2024, 1, 5),
            dt.datetime(1999, 12, 31, 23, 59, 59),
        ],
    ),
    ("stamp", "date", pa.string(), ["2024-01-05T09:30:00+01:00", "2024-07-01 12:00", None, "2024-01-05"]),
    (
        "spot",
        "point",
        pa.string(),
        ["POINT (-72.5 41.2)", '{"type": "Point", "coordinates": [1.5, 2]}', None, "point(1 2)"],
    ),
    ("area", "multipolygon", pa.string(), ["POLYGON ((0 0, 1 0, 1 1, 0 0))", None, None, None]),
    ("place", "location", pa.string(), ["12 Elm St (41.2, -72.5)", "(41.5, -72.1)", None, "(0, 0)"]),
    ("link", "url", pa.string(), ["https://ct.gov", "Portal (https://data.ct.gov)", None, None]),
]
BODY_ROWS = [  # today's bytes of each row below, its id left as %d
    (
        b'{"id":%d'
        b',"name":"Zo\xc3\xab \\"Z\\" \\\\ /"'
        b',"amount":"1e+21","whole":"7"'
        b',"spelled":"7.90","dec":"1.500"'
        b',"count":"0","flag":true'
        b',"day":"2024-02-29T00:00:00","at":"2024-01-05T09:30:00.123"'
        b',"stamp":"2024-01-05T09:30:00+01:00","spot":"POINT (-72.5 41.2)"'
        b',"area":"MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)))"'
        b',"place":{"latitude":"41.2","longitude":"-72.5","human_address":"{\\"address\\":\\"12 Elm St\\",\\"city\\":\\"\\",\\"state\\":\\"\\",\\"zip\\":\\"\\"}"}'
        b',"link":{"url":"https://ct.gov","description":null}}'
    ),
    (
        b'{"id":%d'
        b',"name":"line\\nbreak\\ttab\\u0001"'
        b',"amount":"2.5e-7","whole":"-2"'
        b',"spelled":"1e5","dec":"-0.001"'
        b',"count":"-5","flag":false'
        b',"day":null,"at":null'
        b',"stamp":"2024-07-01T12:00:00.000Z","spot":"POINT (1.5 2)"'
        b',"area":null'
        b',"place":{"latitude":"41.5","longitude":"-72.1","human_address":null}'
        b',"link":{"url":"https://data.ct.gov","description":"Portal"}}'
    ),
    (
        b'{"id":%d'
        b',"name":"\xf0\x9f\x98\x80 \xe2\x80\xa8 \xe6\x97\xa5\xe6\x9c\xac"'
        b',"amount":"3","whole":null'
        b',"spelled":"0.10","dec":null'
        b',"count":null,"flag":null'
        b',"day":"1900-01-01T00:00:00","at":"2024-01-05T00:00:00.000"'
        b',"stamp":null,"spot":null'
        b',"area":null'
        b',"place":null'
        b',"link":null}'
    ),
    (
        b'{"id":%d'
        b',"name":null'
        b',"amount":null,"whole":"9.007199254740994e+15"'
        b',"spelled":null,"dec":"12345678.900"'
        b',"count":"4611686018427387904","flag":true'
        b',"day":"2024-01-05T00:00:00","at":"1999-12-31T23:59:59.000"'
        b',"stamp":"2024-01-05T00:00:00.000Z","spot":"point(1 2)"'
        b',"area":null'
        b',"place":{"latitude":"0","longitude":"0","human_address":null}'
        b',"link":null}'
    ),
]


def _every_type_chunk(offset: int) -> pd.DataFrame:
    data = {n: pd.array(pa.array(v, t), dtype=pd.ArrowDtype(t)) for n, _, t, v in EVERY_TYPE}
    chunk = pd.DataFrame(data, index=range(offset + 1, offset + 5))
    chunk["id"] = chunk["id"] + offset
    return chunk


def test_request_bodies_are_byte_for_byte_todays():
    """Chunk -> wire values -> batches (sliced across chunks, and joined) -> JSON bodies: every value
    arrives exactly as it does today, whatever encoder writes the bodies."""
    mapping = Mapping(targets=[Target(n, n, t, n) for n, t, _, _ in EVERY_TYPE])
    mapping.key = mapping.targets[0]
    batches, bodies = Rebatcher(3), []
    for offset in (0, 4):
        chunk = _every_type_chunk(offset)
        wc = to_wire(chunk, mapping, mode="upsert", form="json", timezone=None, ctx=_Rejects(), needs_key=True)
        batches.add(wc, "every.csv")
        bodies += [encode_json(b.table) for b in batches.batches()]
    bodies += [encode_json(b.table) for b in batches.batches(final=True)]
    expected = [
        b"[" + b",".join(BODY_ROWS[(i - 1) % 4] % i for i in ids) + b"]" for ids in ((1, 2, 3), (4, 5, 6), (7, 8))
    ]
    assert bodies == expected
    assert encode_json(pa.table({"a": pa.array([], pa.string())})) == b"[]"


def _todays_float_form(arr: pa.Array, form: str) -> pa.Array:
    """Floats to numbers as route wrote them before polars wrote part of them (the reference)."""
    import pyarrow.compute as pc

    whole = pc.fill_null(pc.and_(pc.equal(pc.floor(arr), arr), pc.less(pc.abs(arr), 2.0**53)), True)
    if pc.all(whole).as_py():
        ints = arr.cast(pa.int64())
        return ints if form == "json" else ints.cast(pa.string())
    ints = pc.if_else(whole, arr, pa.scalar(None, pa.float64())).cast(pa.int64()).cast(pa.string())
    return pc.if_else(whole, ints, arr.cast(pa.string()))


@pytest.mark.parametrize("form", ["json", "csv"])
def test_float_numbers_are_written_as_before_at_every_magnitude(form):
    import numpy as np

    rng = np.random.default_rng(2024)
    n = 100_000
    values = np.concatenate(
        [
            rng.integers(0, 2**63, n, dtype=np.int64).view(np.float64),  # every exponent
            rng.uniform(1, 10, n) * 10.0 ** rng.integers(-8, 12, n),
            np.round(rng.uniform(-1e6, 1e6, n), 2),  # money
            (rng.integers(1, 2**40, n) | 1) * 2.0 ** -rng.integers(1, 40, n),  # ties between two shortest texts
            [1e-4, np.nextafter(1e-4, 0), 1e9, np.nextafter(1e9, 0), -1e-4, -1e9, -0.0, 2.0**53 - 0.5, 2.0**53],
            [5e-324, 1.7976931348623157e308, 0.1, 1e-5, 1e-6, 1e-7, 9999999999.5, 999999999.5, 0.30000000000000004],
        ]
    )
    values = values[np.isfinite(values)]
    arr = pa.array(values, mask=rng.random(len(values)) < 0.03)
    for part in (arr, arr.slice(4321, 50_000), pa.array([2.5, None, 1e-9])):
        assert convert(part, "number", form=form).values.equals(_todays_float_form(part, form))

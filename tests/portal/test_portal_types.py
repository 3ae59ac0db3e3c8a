"""Every type in §3 of the reference: what a write accepts, how a read returns it, what is refused."""

from __future__ import annotations

import json

import pytest

# (dataTypeName, value written, value read back)
ACCEPTED = [
    ("text", "plain", "plain"),
    ("text", 42, "42"),
    ("text", 1.5, "1.5"),
    ("html", "<b>x</b>", "<b>x</b>"),
    ("number", 42, "42"),
    ("number", "7.90", "7.90"),
    ("number", -0.25, "-0.25"),
    ("number", "1e3", "1000"),
    ("number", "12345678901234567890123.5", "12345678901234567890123.5"),
    ("percent", "45", "45"),
    ("money", "10000.00", "10000.00"),
    ("money", 12, "12"),
    ("double", 1.5, 1.5),
    ("double", "2.25", 2.25),
    ("double", 3, 3.0),
    ("double", "NaN", "NaN"),
    ("double", "-Infinity", "-Infinity"),
    ("checkbox", True, True),
    ("checkbox", False, False),
    ("calendar_date", "2014-10-13", "2014-10-13T00:00:00.000"),
    ("calendar_date", "2014-10-13T09:30", "2014-10-13T09:30:00.000"),
    ("calendar_date", "2014-10-13T09:30:00.123456", "2014-10-13T09:30:00.123"),
    ("calendar_date", "2016-02-29T23:59:59", "2016-02-29T23:59:59.000"),
    ("date", "2020-10-16T18:00:00Z", "2020-10-16T18:00:00.000Z"),
    ("date", "2020-10-16T10:00:00-08:00", "2020-10-16T18:00:00.000Z"),
    ("date", "2020-10-16T20:30:00+0230", "2020-10-16T18:00:00.000Z"),
    ("date", "2020-10-16T18:00:00", "2020-10-16T18:00:00.000Z"),
    ("point", {"type": "Point", "coordinates": [-72.68, 41.76]}, {"type": "Point", "coordinates": [-72.68, 41.76]}),
    ("point", "POINT (-72.68 41.76)", {"type": "Point", "coordinates": [-72.68, 41.76]}),
    ("multipoint", "MULTIPOINT ((1 2), (3 4))", {"type": "MultiPoint", "coordinates": [[1, 2], [3, 4]]}),
    (
        "line",
        {"type": "LineString", "coordinates": [[1, 2], [3, 4]]},
        {"type": "LineString", "coordinates": [[1, 2], [3, 4]]},
    ),
    (
        "multiline",
        "MULTILINESTRING ((1 2, 3 4), (5 6, 7 8))",
        {"type": "MultiLineString", "coordinates": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]},
    ),
    (
        "polygon",
        "POLYGON ((0 0, 1 0, 1 1, 0 0))",
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
    ),
    (
        "multipolygon",
        {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]},
        {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]},
    ),
    (
        "location",
        {"latitude": 47.6, "longitude": "-122.3", "human_address": {"address": "1 Main St", "city": "X"}},
        {"latitude": "47.6", "longitude": "-122.3", "human_address": '{"address":"1 Main St","city":"X"}'},
    ),
    ("url", {"url": "https://data.ct.gov", "description": "CT"}, {"url": "https://data.ct.gov", "description": "CT"}),
    ("url", "https://data.ct.gov", {"url": "https://data.ct.gov"}),
    ("photo", "file-123", "file-123"),
    ("blob", "blob-9", "blob-9"),
    (
        "document",
        {"file_id": "f-1", "filename": "a.pdf", "content_type": "application/pdf"},
        {"file_id": "f-1", "filename": "a.pdf", "content_type": "application/pdf"},
    ),
    ("email", "a@b.org", "a@b.org"),
    ("phone", "555-0100", "555-0100"),
]

REFUSED = [
    ("text", True),
    ("text", {"a": 1}),
    ("text", [1]),
    ("number", "abc"),
    ("number", True),
    ("number", {"n": 1}),
    ("number", "12,5"),
    ("money", "$5"),
    ("double", "x"),
    ("double", False),
    ("checkbox", "true"),
    ("checkbox", 1),
    ("calendar_date", "2014-10-13T09:30:00Z"),
    ("calendar_date", "10/13/2014"),
    ("calendar_date", "2014-02-30"),
    ("calendar_date", 20141013),
    ("date", "yesterday"),
    ("date", "2020-13-01T00:00:00Z"),
    ("point", {"type": "Point", "coordinates": [1]}),
    ("point", "somewhere"),
    ("point", {"type": "LineString", "coordinates": [[1, 2], [3, 4]]}),
    ("polygon", "POLYGON ((0 0, 1 x))"),
    ("line", 5),
    ("photo", 5),
    ("blob", {"id": 1}),
]

# Not refused, per §3: a value that is not one of these becomes null.
NULLED = [("location", "nowhere"), ("location", {"latitude": "north"}), ("url", 5), ("document", {"name": "x"})]


def _dataset(shared_portal, type_name):
    return shared_portal.create(
        columns=[{"fieldName": "k", "dataTypeName": "text"}, {"fieldName": "v", "dataTypeName": type_name}],
        row_identifier="k",
    )


@pytest.mark.parametrize(
    "type_name, written, read", ACCEPTED, ids=[f"{t}-{json.dumps(w)[:30]}" for t, w, _ in ACCEPTED]
)
def test_accepted_values_read_back_in_wire_format(shared_portal, type_name, written, read):
    ff = _dataset(shared_portal, type_name)
    r = shared_portal.post(f"/resource/{ff}.json", [{"k": "1", "v": written}])
    assert r.status_code == 200, r.text
    assert shared_portal.rows(ff) == [{"k": "1", "v": read}]


@pytest.mark.parametrize("type_name, written", REFUSED, ids=[f"{t}-{json.dumps(w)[:30]}" for t, w in REFUSED])
def test_wrong_types_fail_the_request_and_write_nothing(shared_portal, type_name, written):
    ff = _dataset(shared_portal, type_name)
    r = shared_portal.post(f"/resource/{ff}.json", [{"k": "ok"}, {"k": "bad", "v": written}])
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "soda.column.maltyped" and body["data"]["field"] == "v"
    assert "for field 'v'" in body["message"]
    assert shared_portal.rows(ff) == []


@pytest.mark.parametrize("type_name, written", NULLED)
def test_invalid_objects_become_null(shared_portal, type_name, written):
    ff = _dataset(shared_portal, type_name)
    assert shared_portal.post(f"/resource/{ff}.json", [{"k": "1", "v": written}]).status_code == 200
    assert shared_portal.rows(ff) == [{"k": "1"}]


def test_null_clears_every_type(shared_portal):
    for type_name, written, _read in ACCEPTED[::4]:
        ff = _dataset(shared_portal, type_name)
        shared_portal.post(f"/resource/{ff}.json", [{"k": "1", "v": written}])
        shared_portal.post(f"/resource/{ff}.json", [{"k": "1", "v": None}])
        assert shared_portal.rows(ff) == [{"k": "1"}], type_name


@pytest.mark.parametrize(
    "type_name, cell, read",
    [
        ("point", "(41.76, -72.68)", {"type": "Point", "coordinates": [-72.68, 41.76]}),
        ("point", "POINT (-72.68 41.76)", {"type": "Point", "coordinates": [-72.68, 41.76]}),
        (
            "location",
            "1 Main St (47.59815, -122.33454)",
            {
                "latitude": "47.59815",
                "longitude": "-122.33454",
                "human_address": '{"address":"1 Main St","city":"","state":"","zip":""}',
            },
        ),
        ("url", "Portal (https://data.ct.gov)", {"url": "https://data.ct.gov", "description": "Portal"}),
        ("checkbox", "TRUE", True),
        ("double", "2.5", 2.5),
        ("date", "2020-10-16T10:00:00-08:00", "2020-10-16T18:00:00.000Z"),
    ],
)
def test_csv_cells(shared_portal, type_name, cell, read):
    ff = _dataset(shared_portal, type_name)
    body = f'k,v\n1,"{cell}"\n'
    r = shared_portal.post(f"/resource/{ff}.json", body, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert shared_portal.rows(ff) == [{"k": "1", "v": read}]


def test_number_row_identifier_matches_however_the_number_is_written(shared_portal):
    ff = shared_portal.create(
        columns=[{"fieldName": "id", "dataTypeName": "number"}, {"fieldName": "x", "dataTypeName": "text"}],
        row_identifier="id",
    )
    shared_portal.post(f"/resource/{ff}.json", [{"id": 7, "x": "a"}])
    r = shared_portal.post(f"/resource/{ff}.json", [{"id": "7", "x": "b"}])
    assert r.json()["Rows Updated"] == 1
    assert shared_portal.rows(ff) == [{"id": "7", "x": "b"}]
    assert shared_portal.get(f"/resource/{ff}/7.json").json() == {"id": "7", "x": "b"}

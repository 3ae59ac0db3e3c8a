"""SODA 2.1 SoQL functions, keywords, type checks and `$q`, as dev.socrata.com documents them.

Each section names the page it follows; the data is the CT sample (test_soql_conformance.TOWNS).
"""

from __future__ import annotations

import pytest
from test_soql_conformance import DEV, TOWNS, ct_portal, refused, rows, towns  # noqa: F401

ALL = sorted([t[0] for t in TOWNS] + ["Nowhere"])


# ---- distinct: https://dev.socrata.com/docs/functions/distinct -----------------------------------


def test_distinct(ct_portal):
    """distinct: "Returns distinct set of records" (f"{DEV}/functions/distinct")."""
    got = rows(ct_portal, **{"$select": "distinct county", "$order": "county"})
    assert got == [{}, {"county": "Fairfield"}, {"county": "Hartford"}, {"county": "New Haven"}, {"county": "Tolland"}]
    got = rows(ct_portal, **{"$select": "distinct county, coastal", "$where": "county IS NOT NULL", "$order": "county"})
    assert len(got) == 5  # New Haven county has a coastal town and an inland one
    assert rows(ct_portal, **{"$select": "count(distinct county) AS n", "$order": None}) == [{"n": "4"}]


# ---- case, coalesce, greatest, least --------------------------------------------------------------


def test_case(ct_portal):
    """case(...): "different values based on the evaluation of boolean comparisons"; no true
    condition gives null (f"{DEV}/functions/case")."""
    got = rows(
        ct_portal,
        **{
            "$select": "town, case(population > 130000, 'large', population > 100000, 'medium') AS size",
            "$order": "town",
        },
    )
    assert {r["town"]: r.get("size") for r in got} == {
        "Bridgeport": "large",
        "Hartford": "medium",
        "Mansfield": None,
        "New Haven": "large",
        "Nowhere": None,
        "Stamford": "large",
        "Waterbury": "medium",
    }
    assert towns(ct_portal, "case(coastal, population, true, 0) > 140000") == ["Bridgeport"]


def test_case_checks_its_types(ct_portal):
    refused(ct_portal, "query.soql.type-mismatch", "case", **{"$select": "case(population, 'x')"})
    refused(ct_portal, "query.soql.type-mismatch", "case", **{"$select": "case(coastal, 'x', true, 5)"})
    refused(ct_portal, "query.soql.no-such-function", "case", **{"$select": "case(coastal, 'x', true)"})


def test_coalesce(ct_portal):
    """coalesce(...): "the leftmost non-null value" (f"{DEV}/functions/coalesce")."""
    got = rows(
        ct_portal, **{"$select": "town, coalesce(county, 'none') AS c", "$where": "town in ('Nowhere', 'Hartford')"}
    )
    assert got == [{"town": "Hartford", "c": "Hartford"}, {"town": "Nowhere", "c": "none"}]
    refused(ct_portal, "query.soql.type-mismatch", "coalesce", **{"$select": "coalesce(county, 5)"})


def test_greatest_and_least(ct_portal):
    """greatest(...) / least(...): the largest / smallest of their arguments, nulls left out
    (f"{DEV}/functions/greatest", f"{DEV}/functions/least")."""
    got = rows(
        ct_portal,
        **{
            "$select": "greatest(population, 130000) AS g, least(population, 130000, area) AS l",
            "$where": "town = 'Hartford'",
        },
    )
    assert got == [{"g": "130000", "l": "18"}]
    got = rows(ct_portal, **{"$select": "greatest(incorporated, '1800-01-01') AS g", "$where": "town = 'Hartford'"})
    assert got == [{"g": "1800-01-01T00:00:00.000"}]
    refused(ct_portal, "query.soql.type-mismatch", "greatest", **{"$select": "greatest(population, town)"})


# ---- subfields: https://dev.socrata.com/docs/datatypes/location, .../url ---------------------------


def test_location_and_url_subfields(ct_portal):
    """Location: `location.latitude`, `.longitude`, `.human_address` (f"{DEV}/datatypes/location");
    URL: `url.url`, `url.description` (f"{DEV}/datatypes/url")."""
    got = rows(
        ct_portal,
        **{
            "$select": "hall.latitude AS lat, hall.longitude AS lon, website.url AS u, website.description AS d",
            "$where": "town = 'Stamford'",
        },
    )
    assert got == [{"lat": "41.0534", "lon": "-73.5387", "u": "https://stamford.ct.gov", "d": "Stamford town hall"}]
    assert towns(ct_portal, "hall.latitude > 41.7") == ["Hartford", "Mansfield"]
    assert towns(ct_portal, "starts_with(website.url, 'https://new')") == ["New Haven"]
    assert towns(ct_portal, "center.longitude < -73.3") == ["Stamford"]
    refused(ct_portal, "query.soql.no-such-column", "hall.altitude", **{"$select": "hall.altitude"})


# ---- dates: https://dev.socrata.com/docs/functions/date_trunc_y, date_extract_*, date_diff_d -------


def test_date_trunc_and_extract(ct_portal):
    """date_trunc_y/ym/ymd truncate a floating timestamp; date_extract_y/m/d/hh/mm/ss/dow/woy give
    integers (f"{DEV}/functions/date_trunc_ym", f"{DEV}/functions/date_extract_dow")."""
    got = rows(
        ct_portal,
        **{
            "$select": "date_trunc_y(incorporated) AS y, date_trunc_ym(incorporated) AS ym, "
            "date_trunc_ymd(incorporated) AS ymd, date_extract_y(incorporated) AS ey, "
            "date_extract_m(incorporated) AS em, date_extract_d(incorporated) AS ed, "
            "date_extract_hh(surveyed) AS hh, date_extract_mm(surveyed) AS mm, date_extract_ss(surveyed) AS ss, "
            "date_extract_dow(incorporated) AS dow, date_extract_woy(incorporated) AS woy",
            "$where": "town = 'Hartford'",
        },
    )
    # 1784-05-29 was a Saturday (dow 6, Sunday = 0), in ISO week 22
    assert got == [
        {
            "y": "1784-01-01T00:00:00.000",
            "ym": "1784-05-01T00:00:00.000",
            "ymd": "1784-05-29T00:00:00.000",
            "ey": "1784",
            "em": "5",
            "ed": "29",
            "hh": "12",
            "mm": "0",
            "ss": "0",
            "dow": "6",
            "woy": "22",
        }
    ]
    grouped = rows(
        ct_portal,
        **{
            "$select": "date_extract_y(incorporated) AS y, count(*) AS n",
            "$group": "date_extract_y(incorporated)",
            "$where": "incorporated < '1800-01-01'",
            "$order": "y",
        },
    )
    assert grouped == [{"y": "1702", "n": "1"}, {"y": "1784", "n": "2"}]


def test_date_diff_d(ct_portal):
    """date_diff_d(a, b): whole days from b to a (f"{DEV}/functions/date_diff_d")."""
    got = rows(ct_portal, **{"$select": "date_diff_d('1785-05-29', incorporated) AS d", "$where": "town = 'Hartford'"})
    assert got == [{"d": "365"}]


def test_date_functions_refuse_text_columns(ct_portal):
    """A text column is not a date: Socrata's "Type mismatch for date_extract_y, is text"."""
    refused(ct_portal, "query.soql.type-mismatch", "date_extract_y", "text", **{"$select": "date_extract_y(town)"})
    refused(ct_portal, "query.soql.type-mismatch", **{"$select": "date_trunc_ym(population)"})


# ---- text: https://dev.socrata.com/docs/functions/upper, lower, starts_with, like ------------------


def test_text_functions(ct_portal):
    got = rows(
        ct_portal,
        **{
            "$select": "upper(town) AS u, lower(county) AS l, length(town) AS n, trim('  x  ') AS t, "
            "trim_leading('  x') AS tl, trim_trailing('x  ') AS tt, left_pad(town, 11, '*') AS lp, "
            "split_part(nickname, ' ', 2) AS sp, replace(town, 'New ', 'Old ') AS r",
            "$where": "town = 'New Haven'",
        },
    )
    assert got == [
        {
            "u": "NEW HAVEN",
            "l": "new haven",
            "n": "9",
            "t": "x",
            "tl": "x",
            "tt": "x",
            "lp": "**New Haven",
            "sp": "City",
            "r": "Old Haven",
        }
    ]


@pytest.mark.parametrize(
    "where, expected",
    [
        ("starts_with(town, 'New')", ["New Haven"]),
        ("contains(nickname, 'City')", ["Bridgeport", "New Haven", "Stamford", "Waterbury"]),
        ("town like '%ford'", ["Hartford", "Stamford"]),
        ("town not like '%ford'", ["Bridgeport", "Mansfield", "New Haven", "Nowhere", "Waterbury"]),
        ("town like 'h%'", []),  # case-sensitive, as Socrata's like
        ("caseless_eq(town, 'HARTFORD')", ["Hartford"]),
        ("caseless_starts_with(town, 'new')", ["New Haven"]),
        ("upper(landmark) = 'THE GREEN'", ["New Haven"]),
    ],
)
def test_text_predicates(ct_portal, where, expected):
    """starts_with, contains, like / not like (f"{DEV}/functions/like"), caseless_*."""
    assert towns(ct_portal, where) == expected


def test_text_functions_refuse_numbers(ct_portal):
    refused(ct_portal, "query.soql.type-mismatch", "like", **{"$where": "population like '1%'"})
    refused(ct_portal, "query.soql.type-mismatch", "upper", **{"$select": "upper(population)"})
    refused(ct_portal, "query.soql.type-mismatch", **{"$where": "starts_with(coastal, 't')"})


# ---- numbers: https://dev.socrata.com/docs/datatypes/number ----------------------------------------


def test_number_functions_and_operators(ct_portal):
    got = rows(
        ct_portal,
        **{
            "$select": "round(population / 1000, 1) AS r, abs(-3) AS a, ceil(area) AS c, floor(area) AS f, "
            "population % 1000 AS m, area * 2 AS d",
            "$where": "town = 'Stamford'",
        },
    )
    assert got == [{"r": "135.5", "a": "3", "c": 53.0, "f": 52.0, "m": "470", "d": 104.2}]
    refused(ct_portal, "query.soql.type-mismatch", **{"$select": "town + 1"})
    refused(ct_portal, "query.soql.type-mismatch", **{"$select": "abs(town)"})


# ---- aggregates: https://dev.socrata.com/docs/functions/sum, avg, min, max, count ------------------


def test_aggregates_check_their_types(ct_portal):
    """sum/avg take numbers (f"{DEV}/functions/sum"); min/max anything ordered but booleans."""
    refused(ct_portal, "query.soql.type-mismatch", "sum", "text", **{"$select": "sum(town)"})
    refused(ct_portal, "query.soql.type-mismatch", "avg", **{"$select": "avg(incorporated)"})
    refused(ct_portal, "query.soql.type-mismatch", "max", **{"$select": "max(coastal)"})
    refused(ct_portal, "query.soql.type-mismatch", "min", **{"$select": "min(center)"})
    got = rows(
        ct_portal,
        **{
            "$select": "sum(population) AS s, min(town) AS a, max(incorporated) AS m, count(hall) AS h",
            "$order": None,
        },
    )
    assert got == [{"s": str(sum(t[2] for t in TOWNS)), "a": "Bridgeport", "m": "1893-05-01T00:00:00.000", "h": "6"}]


def test_columns_beside_aggregates_must_be_grouped(ct_portal):
    """$group: every selected column that is not aggregated is grouped (f"{DEV}/queries/group")."""
    refused(ct_portal, "query.soql.column-not-in-group-bys", "town", **{"$select": "town, count(*)"})
    refused(
        ct_portal,
        "query.soql.column-not-in-group-bys",
        "town",
        **{"$select": "county, count(*)", "$group": "county", "$order": "town"},
    )
    got = rows(
        ct_portal,
        **{"$select": "county, count(*) AS n", "$group": "county", "$having": "count(*) > 1", "$order": "county"},
    )
    assert got == [{"county": "Fairfield", "n": "2"}, {"county": "New Haven", "n": "2"}]


# ---- $q: https://dev.socrata.com/docs/queries/q ------------------------------------------------------


@pytest.mark.parametrize(
    "q, expected",
    [
        ("street main", ["Mansfield"]),  # every word, in any order, in one column
        ("MAIN street", ["Mansfield"]),  # case-insensitive
        ("park", ["Bridgeport", "Hartford", "Mansfield", "Waterbury"]),  # across columns
        ("park city", ["Bridgeport", "Waterbury"]),  # 'Park City'; 'Brass City' with 'Library Park'
        ("elm green", ["New Haven"]),  # words from two columns of one row
        ("city fairfield", ["Bridgeport", "Stamford"]),
        ("mai", []),  # whole words, not parts of words
        ("street nowhere", []),
        ("", ALL),
    ],
)
def test_q_is_full_text_search(ct_portal, q, expected):
    """$q: "a full text search for a specific string" across the text columns (f"{DEV}/queries/q")."""
    assert [r["town"] for r in rows(ct_portal, **{"$select": "town", "$q": q})] == expected


def test_q_folds_case_beyond_ascii(ct_portal):
    """$q is case-insensitive for every letter, not only ASCII ones."""
    portal, _ff = ct_portal
    ff = portal.create(columns=[{"fieldName": "name", "dataTypeName": "text"}], row_identifier=None)
    assert portal.post(f"/resource/{ff}.json", [{"name": "CAFÉ ÉLAN"}, {"name": "Cafe Elan"}]).status_code == 200
    assert portal.rows(ff, **{"$q": "élan café"}) == [{"name": "CAFÉ ÉLAN"}]
    assert portal.rows(ff, **{"$q": "ELAN"}) == [{"name": "Cafe Elan"}]


# ---- casts: https://dev.socrata.com/docs/datatypes/ ("::" type conversion) -----------------------------


def test_casts(ct_portal):
    """`value::type` converts text to and from numbers, timestamps and booleans."""
    got = rows(
        ct_portal,
        **{
            "$select": "population::text AS t, '12.5'::number + 1 AS n, '1800-01-01'::floating_timestamp AS f",
            "$where": "town = 'Hartford'",
        },
    )
    assert got == [{"t": "121054", "n": "13.5", "f": "1800-01-01T00:00:00.000"}]
    assert towns(ct_portal, "split_part(nickname, ' ', 1)::text = 'Elm'") == ["New Haven"]
    assert towns(ct_portal, "population::text like '12%'") == ["Hartford"]
    refused(ct_portal, "query.compiler.malformed", "converted", **{"$where": "town::number > 1"})
    refused(ct_portal, "query.soql.type-mismatch", "::text", **{"$select": "center::text"})

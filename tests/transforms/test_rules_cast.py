"""cast: exact values and dtypes out, and every value that does not convert in the rejects file."""

from __future__ import annotations

import datetime as dt
import random
import time
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pytest
from rulekit import BOOLEAN, DATE, INTEGER, NUMBER, TEXT, apply, frame, make_ctx, rejects, values

from pipeline.basics import dtypes
from pipeline.basics.errors import OptionError, RunFailed
from pipeline.testing import bind_options, check_rule
from transforms.types import cast

NY = ZoneInfo("America/New_York")
UTC = dt.UTC
DATETIME = dtypes.DATETIME
DATETIME_NY = dtypes.datetime_dtype("America/New_York")


def run(tmp_path, spec, vals, dtype=TEXT, lines=None):
    """Cast one column `x`; returns (output column as {line: value}, its dtype, rejects)."""
    ctx = make_ctx(tmp_path)
    chunk = frame({"x": vals}, lines=lines, dtypes={"x": dtype})
    out = apply(cast, {"x": spec}, chunk, ctx)
    return dict(zip(out.index, values(out["x"]))), out["x"].dtype, rejects(ctx)


def reasons(found) -> dict:
    return {int(r["line"]): r["reason"] for r in found}


# integers -------------------------------------------------------------------------------------


def test_integers_from_text(tmp_path):
    out, dtype, bad = run(tmp_path, "integer", [" 12", "12.0", "007", "-0", "+7", None, "   ", "12.", "-45"])
    assert dtype == INTEGER
    assert out == {2: 12, 3: 12, 4: 7, 5: 0, 6: 7, 7: None, 8: None, 9: 12, 10: -45}
    assert bad == []


def test_integers_that_do_not_convert_are_rejected_with_row_column_value_and_reason(tmp_path):
    out, _, bad = run(
        tmp_path,
        "integer",
        ["1", "12.5", "12x", "1,000", "9223372036854775807", "9223372036854775808", "1e3", ""],
        lines=[10, 11, 12, 13, 14, 15, 16, 17],
    )
    assert out == {10: 1, 14: 9223372036854775807, 17: None}
    assert bad == [
        {"line": "11", "column": "x", "value": "12.5", "reason": "'12.5' is not a whole number"},
        {"line": "12", "column": "x", "value": "12x", "reason": "'12x' is not an integer"},
        {"line": "13", "column": "x", "value": "1,000", "reason": "'1,000' is not an integer"},
        {
            "line": "15",
            "column": "x",
            "value": "9223372036854775808",
            "reason": "'9223372036854775808' is out of the integer range",
        },
        {"line": "16", "column": "x", "value": "1e3", "reason": "'1e3' is not an integer"},
    ]


def test_integers_with_thousands_separators_and_currency(tmp_path):
    spec = {"type": "integer", "thousands": ",", "currency": "$"}
    out, _, bad = run(tmp_path, spec, ["1,000", "$1,234,567", "-$2,000", "1000", "1,00", "12,3456"])
    assert out == {2: 1000, 3: 1234567, 4: -2000, 5: 1000}
    assert reasons(bad) == {6: "'1,00' is not an integer", 7: "'12,3456' is not an integer"}


# numbers --------------------------------------------------------------------------------------


def test_numbers_from_text(tmp_path):
    out, dtype, bad = run(tmp_path, "number", ["1.5", " -2 ", ".5", "1e3", "06103", None])
    assert dtype == NUMBER
    assert out == {2: 1.5, 3: -2.0, 4: 0.5, 5: 1000.0, 6: 6103.0, 7: None}
    assert bad == []


def test_numbers_reject_nan_infinity_and_text(tmp_path):
    _, _, bad = run(tmp_path, "number", ["nan", "inf", "1e400", "$5", "1,5", "-"])
    assert reasons(bad) == {
        2: "'nan' is not a number",
        3: "'inf' is not a number",
        4: "'1e400' is too large for a number",
        5: "'$5' is not a number",
        6: "'1,5' is not a number",
        7: "'-' is not a number",
    }


def test_numbers_with_currency_thousands_and_a_decimal_comma(tmp_path):
    out, _, bad = run(
        tmp_path,
        {"type": "number", "thousands": ",", "currency": "$"},
        ["$1,234.50", "-$5", "$-5.25", "12 $", "1,234", "1,23.4"],
    )
    assert out == {2: 1234.5, 3: -5.0, 4: -5.25, 5: 12.0, 6: 1234.0}
    assert reasons(bad) == {7: "'1,23.4' is not a number"}
    out, _, bad = run(
        tmp_path / "eu",
        {"type": "number", "thousands": ".", "decimal": ",", "currency": "€"},
        ["1.234,5 €", "€ 2,25", "1,5", "1.5"],
    )
    assert out == {2: 1234.5, 3: 2.25, 4: 1.5}
    assert reasons(bad) == {5: "'1.5' is not a number"}


# booleans -------------------------------------------------------------------------------------


def test_booleans_read_the_usual_words_in_any_case(tmp_path):
    out, dtype, bad = run(
        tmp_path, "boolean", ["true", "FALSE", "Yes", "no", "Y", "n", "T", "f", "1", "0", None, "maybe"]
    )
    assert dtype == BOOLEAN
    assert list(out.values()) == [True, False, True, False, True, False, True, False, True, False, None]
    assert reasons(bad) == {13: "'maybe' is not a boolean (true: true, yes, y, t, 1; false: false, no, n, f, 0)"}


def test_booleans_with_own_words_including_unicode(tmp_path):
    out, _, bad = run(
        tmp_path, {"type": "boolean", "true_values": ["Sí", 1], "false_values": ["no"]}, ["SÍ", "sí", "NO", "1", "yes"]
    )
    assert out == {2: True, 3: True, 4: False, 5: True}
    assert reasons(bad) == {6: "'yes' is not a boolean (true: sí, 1; false: no)"}


# dates ----------------------------------------------------------------------------------------


def test_dates_in_iso_8601(tmp_path):
    out, dtype, bad = run(
        tmp_path,
        "date",
        [
            "2024-01-05",
            " 2020-02-29 ",
            None,
            "2024-01-05T23:30:00",
            "2024-01-05T23:30:00-05:00",
            "2021-02-29",
            "01/05/2024",
            "2024-1-5",
        ],
    )
    assert dtype == DATE
    assert out == {
        2: dt.date(2024, 1, 5),
        3: dt.date(2020, 2, 29),
        4: None,
        5: dt.date(2024, 1, 5),
        6: dt.date(2024, 1, 5),
    }
    assert reasons(bad) == {
        7: "'2021-02-29' is not a valid date: that month has no such day",
        8: "'01/05/2024' is not an ISO 8601 date (YYYY-MM-DD); give formats for other forms",
        9: "'2024-1-5' is not an ISO 8601 date (YYYY-MM-DD); give formats for other forms",
    }


def test_dates_try_the_formats_in_order_then_iso(tmp_path):
    spec = {"type": "date", "formats": ["%m/%d/%Y", "%m/%d/%y", "%d.%m.%Y"]}
    out, _, bad = run(
        tmp_path,
        spec,
        [
            "01/05/2020",
            "1/5/2020",
            "1/5/24",
            "3/10/69",
            "5.1.2020",
            "2020-01-05",
            "13/45/2020",
            "02/31/2020",
            "0999-01-01",
        ],
    )
    assert out == {
        2: dt.date(2020, 1, 5),
        3: dt.date(2020, 1, 5),
        4: dt.date(2024, 1, 5),
        5: dt.date(1969, 3, 10),
        6: dt.date(2020, 1, 5),
        7: dt.date(2020, 1, 5),
    }
    assert bad == [
        {
            "line": "8",
            "column": "x",
            "value": "13/45/2020",
            "reason": "'13/45/2020' matches none of the formats %m/%d/%Y, %m/%d/%y, %d.%m.%Y, ISO 8601",
        },
        {
            "line": "9",
            "column": "x",
            "value": "02/31/2020",
            "reason": "'02/31/2020' is not a valid date: that month has no such day",
        },
        {
            "line": "10",
            "column": "x",
            "value": "0999-01-01",
            "reason": "'0999-01-01' matches none of the formats %m/%d/%Y, %m/%d/%y, %d.%m.%Y, ISO 8601",
        },
    ]


def test_dates_with_month_names_and_compact_digits(tmp_path):
    out, _, bad = run(
        tmp_path,
        {"type": "date", "formats": ["%b %d, %Y", "%Y%m%d"]},
        ["Jan 5, 2024", "january 31, 2024", "20240105", "Feb 30, 2024", "20240431"],
    )
    assert out == {2: dt.date(2024, 1, 5), 3: dt.date(2024, 1, 31), 4: dt.date(2024, 1, 5)}
    assert reasons(bad) == {
        5: "'Feb 30, 2024' is not a valid date: that month has no such day",
        6: "'20240431' is not a valid date: that month has no such day",
    }


def test_integers_become_dates_only_with_formats(tmp_path):
    out, _, bad = run(tmp_path, {"type": "date", "formats": ["%Y%m%d"]}, [20240105, None, 20240230], dtype=INTEGER)
    assert out == {2: dt.date(2024, 1, 5), 3: None}
    assert reasons(bad) == {4: "'20240230' is not a valid date: that month has no such day"}
    with pytest.raises(RunFailed) as err:
        run(tmp_path / "2", "date", [20240105], dtype=INTEGER)
    assert str(err.value) == (
        "cast: column 'x' is integer and cannot be cast to date; to read integers "
        'like 20240115 as dates give formats: ["%Y%m%d"]'
    )


# datetimes ------------------------------------------------------------------------------------


def test_floating_datetimes_and_offsets_without_a_timezone(tmp_path):
    out, dtype, bad = run(
        tmp_path,
        "datetime",
        [
            "2024-07-01T12:00:00",
            "2024-07-01 12:00",
            "2024-07-01",
            "2024-07-01T12:00:00.1234567",
            "2024-07-01T12:00:00Z",
            "7/1/2024",
        ],
    )
    assert dtype == DATETIME
    assert out == {
        2: pd.Timestamp("2024-07-01 12:00"),
        3: pd.Timestamp("2024-07-01 12:00"),
        4: pd.Timestamp("2024-07-01"),
        5: pd.Timestamp("2024-07-01 12:00:00.123456"),
    }
    assert reasons(bad) == {
        6: "'2024-07-01T12:00:00Z' has a UTC offset but the column has no timezone; set one "
        "(e.g. timezone: UTC) to accept times with offsets",
        7: "'7/1/2024' is not an ISO 8601 datetime (YYYY-MM-DDTHH:MM:SS); give formats for other forms",
    }


def test_datetimes_with_a_format_and_a_timezone(tmp_path):
    spec = {"type": "datetime", "formats": ["%m/%d/%Y %I:%M %p"], "timezone": "America/New_York"}
    out, dtype, bad = run(
        tmp_path,
        spec,
        [
            "7/1/2024 1:30 PM",
            "01/05/2024 12:00 AM",
            "2024-07-01T12:00:00",
            "2024-07-01T12:00:00Z",
            "2024-07-01T12:00:00+02:00",
            None,
            "13/01/2024 1:00 PM",
            "7/1/2024 13:00 PM",
        ],
    )
    assert dtype == DATETIME_NY
    assert out == {
        2: dt.datetime(2024, 7, 1, 13, 30, tzinfo=NY),
        3: dt.datetime(2024, 1, 5, 0, 0, tzinfo=NY),
        4: dt.datetime(2024, 7, 1, 12, 0, tzinfo=NY),
        5: dt.datetime(2024, 7, 1, 12, 0, tzinfo=UTC),
        6: dt.datetime(2024, 7, 1, 10, 0, tzinfo=UTC),
        7: None,
    }
    tried = "matches none of the formats %m/%d/%Y %I:%M %p, ISO 8601"
    assert reasons(bad) == {8: f"'13/01/2024 1:00 PM' {tried}", 9: f"'7/1/2024 13:00 PM' {tried}"}


def test_a_format_with_an_offset_keeps_the_instant_and_checks_the_day_as_written(tmp_path):
    spec = {"type": "datetime", "formats": ["%m/%d/%Y %H:%M %z"], "timezone": "UTC"}
    out, dtype, bad = run(
        tmp_path, spec, ["01/02/2024 23:00 -0500", "02/30/2024 10:00 +0100", "03/01/2024 00:30 +01:00"]
    )
    assert str(dtype) == "timestamp[us, tz=UTC][pyarrow]"
    assert out == {2: dt.datetime(2024, 1, 3, 4, 0, tzinfo=UTC), 4: dt.datetime(2024, 2, 29, 23, 30, tzinfo=UTC)}
    assert reasons(bad) == {3: "'02/30/2024 10:00 +0100' is not a valid date: that month has no such day"}


def test_local_times_skipped_by_daylight_saving_are_rejected(tmp_path):
    spec = {"type": "datetime", "timezone": "America/New_York"}
    out, _, bad = run(tmp_path, spec, ["2024-03-10T01:59:00", "2024-03-10T02:30:00", "2024-03-10T03:00:00"])
    assert out == {2: dt.datetime(2024, 3, 10, 1, 59, tzinfo=NY), 4: dt.datetime(2024, 3, 10, 3, 0, tzinfo=NY)}
    assert bad == [
        {
            "line": "3",
            "column": "x",
            "value": "2024-03-10T02:30:00",
            "reason": "'2024-03-10T02:30:00' does not exist in America/New_York (clocks skip that "
            "hour at the daylight-saving change)",
        }
    ]


@pytest.mark.parametrize("ambiguous, expected_utc_hour", [("earliest", 5), ("latest", 6)])
def test_repeated_local_times_take_the_chosen_occurrence(tmp_path, ambiguous, expected_utc_hour):
    spec = {"type": "datetime", "timezone": "America/New_York", "ambiguous": ambiguous}
    out, _, bad = run(tmp_path, spec, ["2024-11-03T01:30:00"])
    assert out[2].astimezone(UTC) == dt.datetime(2024, 11, 3, expected_utc_hour, 30, tzinfo=UTC)
    assert bad == []


def test_repeated_local_times_can_be_rejected(tmp_path):
    spec = {"type": "datetime", "timezone": "America/New_York", "ambiguous": "reject"}
    out, _, bad = run(tmp_path, spec, ["2024-11-03T01:30:00", "2024-11-03T00:30:00", "2024-03-10T02:30:00"])
    assert out == {3: dt.datetime(2024, 11, 3, 0, 30, tzinfo=NY)}
    assert reasons(bad) == {
        2: "'2024-11-03T01:30:00' happens twice in America/New_York (clocks go back at the daylight-saving "
        "change); set ambiguous: earliest or latest to choose",
        4: "'2024-03-10T02:30:00' does not exist in America/New_York (clocks skip that hour at the "
        "daylight-saving change)",
    }


# typed columns --------------------------------------------------------------------------------


def test_typed_columns_to_text(tmp_path):
    assert run(tmp_path / "a", "text", [6103, None, -5], INTEGER)[0] == {2: "6103", 3: None, 4: "-5"}
    assert run(tmp_path / "b", "text", [True, False], BOOLEAN)[0] == {2: "true", 3: "false"}
    assert run(tmp_path / "c", "text", [1.5, 100000.0], NUMBER)[0] == {2: "1.5", 3: "100000"}
    assert run(tmp_path / "d", "text", [dt.date(2024, 1, 5), None], DATE)[0] == {2: "2024-01-05", 3: None}
    out, dtype, _ = run(
        tmp_path / "e", "text", [dt.datetime(2024, 1, 5, 10), dt.datetime(2024, 1, 5, 10, 0, 0, 500000)], DATETIME
    )
    assert out == {2: "2024-01-05T10:00:00", 3: "2024-01-05T10:00:00.5"} and dtype == TEXT
    out, _, _ = run(tmp_path / "f", "text", [dt.datetime(2024, 1, 5, 15, tzinfo=UTC)], DATETIME_NY)
    assert out == {2: "2024-01-05T10:00:00-05:00"}


def test_numbers_to_integers_only_when_whole(tmp_path):
    out, dtype, bad = run(tmp_path, "integer", [12.0, 12.5, None, -3.0, 1e19], NUMBER)
    assert dtype == INTEGER
    assert out == {2: 12, 4: None, 5: -3}
    assert reasons(bad) == {3: "'12.5' is not a whole number", 6: "'1e+19' is out of the integer range"}


def test_integers_and_booleans_between_each_other(tmp_path):
    out, _, bad = run(tmp_path / "a", "boolean", [1, 0, 2, None], INTEGER)
    assert out == {2: True, 3: False, 5: None}
    assert reasons(bad) == {4: "'2' is not a boolean (only 1 and 0 are)"}
    assert run(tmp_path / "b", "integer", [True, False], BOOLEAN)[0] == {2: 1, 3: 0}
    assert run(tmp_path / "c", "number", [3, None], INTEGER)[0] == {2: 3.0, 3: None}


def test_dates_and_datetimes_between_each_other(tmp_path):
    out, dtype, _ = run(tmp_path / "a", "date", [dt.datetime(2024, 1, 6, 3, 0, tzinfo=UTC)], DATETIME_NY)
    assert out == {2: dt.date(2024, 1, 5)} and dtype == DATE  # the local date in New York
    out, dtype, _ = run(
        tmp_path / "b", {"type": "datetime", "timezone": "America/New_York"}, [dt.date(2024, 1, 5)], DATE
    )
    assert out == {2: dt.datetime(2024, 1, 5, tzinfo=NY)} and dtype == DATETIME_NY
    out, dtype, _ = run(tmp_path / "c", "datetime", [dt.datetime(2024, 1, 5, 15, tzinfo=UTC)], DATETIME_NY)
    assert out == {2: pd.Timestamp("2024-01-05 10:00")} and dtype == DATETIME
    out, dtype, _ = run(
        tmp_path / "d", {"type": "datetime", "timezone": "UTC"}, [dt.datetime(2024, 1, 5, 15, tzinfo=UTC)], DATETIME_NY
    )
    assert out == {2: dt.datetime(2024, 1, 5, 15, tzinfo=UTC)} and str(dtype) == "timestamp[us, tz=UTC][pyarrow]"


def test_a_date_column_cannot_become_a_number(tmp_path):
    with pytest.raises(RunFailed, match="^cast: column 'x' is date and cannot be cast to number$"):
        run(tmp_path, "number", [dt.date(2024, 1, 5)], DATE)


# rows, chunks and dtypes ----------------------------------------------------------------------


def test_a_row_is_rejected_once_for_its_first_failing_column(tmp_path):
    ctx = make_ctx(tmp_path)
    chunk = frame({"a": ["1", "x", "3", "4"], "b": ["2024-01-01", "bad", "bad", "2024-01-04"], "zip": ["06103"] * 4})
    out = apply(cast, {"a": "integer", "b": "date"}, chunk, ctx)
    assert list(out.index) == [2, 5]
    assert values(out["a"]) == [1, 4] and values(out["zip"]) == ["06103", "06103"]
    assert [(r["line"], r["column"]) for r in rejects(ctx)] == [("3", "a"), ("4", "b")]
    assert ctx.rejected == 2
    assert values(chunk["a"]) == ["1", "x", "3", "4"]  # the input is untouched


def test_the_rejects_file_keeps_the_whole_row_and_the_source(tmp_path):
    import csv

    ctx = make_ctx(tmp_path)
    apply(cast, {"n": "integer"}, frame({"n": ["x1"], "town": ["Hartford"]}, lines=[41], source="pay.csv"), ctx)
    ctx.run.rejects.close()
    with open(ctx.run.rejects.path, newline="", encoding="utf-8") as f:
        (row,) = list(csv.DictReader(f))
    assert row["source"] == "pay.csv" and row["line"] == "41" and row["row"] == '{"n":"x1","town":"Hartford"}'


@pytest.mark.parametrize(
    "spec, dtype",
    [
        ("integer", INTEGER),
        ("number", NUMBER),
        ("boolean", BOOLEAN),
        ("date", DATE),
        ("datetime", DATETIME),
        ("text", TEXT),
        ({"type": "datetime", "timezone": "America/New_York"}, DATETIME_NY),
    ],
)
def test_dtypes_do_not_depend_on_the_chunk(tmp_path, spec, dtype):
    ctx = make_ctx(tmp_path)
    all_null = frame({"x": [None, None]})
    untyped_null = pd.DataFrame({"x": pd.Series([None, None], dtype=pd.ArrowDtype(pa.null()))}, index=[2, 3])
    for chunk in (all_null, all_null.iloc[0:0], untyped_null):
        out = apply(cast, {"x": spec}, chunk, ctx)
        assert out["x"].dtype == dtype
        assert values(out["x"]) == [None] * len(chunk)


def test_cast_keeps_the_rule_contract():
    sample = frame(
        {
            "id": ["1", "2", "x", "4"],
            "day": ["2024-01-01", None, "2024-01-03", "2024-02-30"],
            "at": ["1/2/2024 1:00 PM", "3/10/2024 2:30 AM", None, "7/4/2024 9:15 AM"],
        }
    )
    result = check_rule(
        cast,
        {
            "id": "integer",
            "day": "date",
            "at": {"type": "datetime", "formats": ["%m/%d/%Y %I:%M %p"], "timezone": "America/New_York"},
        },
        sample,
    )
    assert list(result.output.index) == [2] and result.rejected == 3


def test_object_and_numpy_columns_are_cast_as_well(tmp_path):
    index = pd.Index([2, 3, 4])
    chunk = pd.DataFrame(
        {"a": pd.Series(["1", None, "3"], dtype=object, index=index), "b": pd.Series([1.0, 2.5, 3.0], index=index)}
    )
    ctx = make_ctx(tmp_path)
    out = apply(cast, {"a": "integer", "b": "integer"}, chunk, ctx)
    assert values(out["a"]) == [1, 3] and out["b"].dtype == INTEGER
    assert reasons(rejects(ctx)) == {3: "'2.5' is not a whole number"}


# options checked when the route is planned ----------------------------------------------------


@pytest.mark.parametrize(
    "options, message, path",
    [
        (
            {"x": "interger"},
            "'interger' is not one of ['text', 'integer', 'number', 'boolean', 'date', 'datetime']",
            ("x",),
        ),
        (
            {"x": {"type": "datetime", "timezone": "America/New_Yrok"}},
            "unknown time zone 'America/New_Yrok'; did you mean 'America/New_York'? (use an IANA name such as "
            "America/New_York, or UTC)",
            ("x", "timezone"),
        ),
        (
            {"x": {"type": "date", "formats": ["%m/%d/%Y", "%j/%Y"]}},
            "format '%j/%Y': %j is not supported (supported: %Y %y %m %d %e %H %I %M %S %p %b %B %h %a %A %z "
            "%D %T %R %F, %%)",
            ("x", "formats", 1),
        ),
        (
            {"x": {"type": "date", "formats": ["hello"]}},
            "format 'hello' has no date or time directives such as %Y, %m, %d",
            ("x", "formats", 0),
        ),
        (
            {"x": {"type": "integer", "timezone": "UTC"}},
            "'timezone' applies to datetime columns only",
            ("x", "timezone"),
        ),
        (
            {"x": {"type": "date", "thousands": ","}},
            "'thousands' applies to integer and number columns only",
            ("x", "thousands"),
        ),
        (
            {"x": {"type": "datetime", "formats": ["%Y-%m-%d %H:%M %z"]}},
            "format '%Y-%m-%d %H:%M %z' reads a UTC offset (%z): give the column a timezone (e.g. timezone: UTC) "
            "to say how to show those times",
            ("x", "formats", 0),
        ),
        (
            {"x": {"type": "boolean", "true_values": [True]}},
            "true here is a YAML boolean (YAML reads yes/no/on/off/true/false as booleans); write the word in "
            'quotes, e.g. "yes"',
            ("x", "true_values", 0),
        ),
        (
            {"x": {"type": "boolean", "true_values": ["y"], "false_values": ["Y"]}},
            "'y' is in both true_values and false_values",
            ("x",),
        ),
        (
            {"x": {"type": "number", "thousands": ".", "decimal": "."}},
            'thousands and decimal are both \'.\'; set decimal too (e.g. thousands: ".", decimal: ",")',
            ("x", "thousands"),
        ),
    ],
)
def test_bad_options_are_option_errors_with_their_path(tmp_path, options, message, path):
    with pytest.raises(OptionError) as err:
        bind_options(cast, options, make_ctx(tmp_path))
    assert str(err.value) == message
    assert err.value.path == path


def test_unknown_type_in_the_mapping_form_suggests_the_nearest(tmp_path):
    from transforms.types import bind

    with pytest.raises(OptionError) as err:
        bind({"x": {"type": "interger"}})
    assert str(err.value) == (
        "unknown type 'interger'; did you mean 'integer'? (types: text, integer, number, boolean, date, datetime)"
    )
    assert err.value.path == ("x", "type")


def test_a_missing_column_fails_the_run_naming_the_nearest(tmp_path):
    with pytest.raises(RunFailed, match=r"^cast: no column 'Gross' in the data; did you mean 'gross'\?"):
        apply(cast, {"Gross": "number"}, frame({"gross": ["1"]}), make_ctx(tmp_path))


# speed ----------------------------------------------------------------------------------------


def test_casting_four_columns_of_a_full_chunk_is_vectorised(tmp_path):
    rng = random.Random(3)
    n = 50_000
    chunk = frame(
        {
            "id": [str(rng.randint(0, 10**7)) for _ in range(n)],
            "amount": [f"{rng.random() * 1e5:.2f}" for _ in range(n)],
            "day": [f"{rng.randint(1990, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" for _ in range(n)],
            "at": [
                f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/{rng.randint(1990, 2024)} {rng.randint(1, 12)}:"
                f"{rng.randint(0, 59):02d} {rng.choice('AP')}M"
                for _ in range(n)
            ],
        }
    )
    ctx = make_ctx(tmp_path)
    plan = bind_options(
        cast,
        {
            "id": "integer",
            "amount": "number",
            "day": "date",
            "at": {"type": "datetime", "formats": ["%m/%d/%Y %I:%M %p"]},
        },
        ctx,
    )
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        out = cast(chunk, plan, ctx)
        best = min(best, time.perf_counter() - start)
    assert len(out) == n and ctx.rejected == 0
    # Measured about 14 ms here; a per-row Python loop would take ten times as long.
    assert best < 0.25, f"cast took {best * 1000:.0f} ms for 4 columns of {n} rows"


def test_the_cast_rule_knows_the_route_types_without_pandas():
    from pipeline.basics.dtypes import ROUTE_TYPES
    from transforms import types

    assert types.ROUTE_TYPES == ROUTE_TYPES  # spelt twice so that binding a cast loads no pandas

"""trim, upper, lower, title, fill and replace: exact values, untouched dtypes, clear failures."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from rulekit import BOOLEAN, DATE, INTEGER, NUMBER, TEXT, apply, frame, make_ctx, rejects, values

from pipeline.basics import dtypes
from pipeline.basics.errors import OptionError, RunFailed
from pipeline.testing import bind_options, check_rule
from transforms.text import lower, title, trim, upper
from transforms.values import fill, replace

NY = ZoneInfo("America/New_York")


@pytest.fixture
def chunk():
    return frame(
        {
            "name": [
                "  o'brien ",
                "DON'T STOP",
                "3RD  STREET",
                "jean-luc PICARD",
                " \u00a0\t",
                None,
                "ÉCOLE élise",
                "mcdonald's 21ST",
                "it’s 2ND",
            ],
            "code": ["06103", " ab ", "x", "y", "z", None, "é", "ß", "q"],
            "n": [1, 2, 3, 4, 5, 6, 7, 8, 9],
        },
        dtypes={"n": INTEGER},
        source="towns.csv",
    )


# trim -----------------------------------------------------------------------------------------


def test_trim_removes_unicode_whitespace_and_blank_values_become_null(chunk, tmp_path):
    out = apply(trim, ["name", "code"], chunk, make_ctx(tmp_path))
    assert values(out["name"]) == [
        "o'brien",
        "DON'T STOP",
        "3RD  STREET",
        "jean-luc PICARD",
        None,
        None,
        "ÉCOLE élise",
        "mcdonald's 21ST",
        "it’s 2ND",
    ]
    assert values(out["code"]) == ["06103", "ab", "x", "y", "z", None, "é", "ß", "q"]
    assert out["name"].dtype == TEXT and list(out.index) == list(chunk.index)
    assert out.attrs["source"] == "towns.csv"
    assert values(chunk["name"])[0] == "  o'brien "  # the input is untouched


def test_trim_can_collapse_inner_whitespace_and_keep_empty_values(chunk, tmp_path):
    out = apply(trim, {"columns": "name", "collapse": True, "keep_empty": True}, chunk, make_ctx(tmp_path))
    assert values(out["name"])[2:6] == ["3RD STREET", "jean-luc PICARD", "", None]
    out = apply(
        trim, {"columns": ["t"], "collapse": True}, frame({"t": ["a\u00a0\u00a0b \t\n c\u2003"]}), make_ctx(tmp_path)
    )
    assert values(out["t"]) == ["a b c"]


def test_trim_all_changes_every_text_column_and_leaves_the_others(chunk, tmp_path):
    for spelling in ("all", "*", {"columns": "all"}):
        out = apply(trim, spelling, chunk, make_ctx(tmp_path))
        assert values(out["code"])[1] == "ab" and values(out["name"])[0] == "o'brien"
        assert out["n"].dtype == INTEGER and values(out["n"]) == list(range(1, 10))


def test_trim_of_a_list_holding_all_means_the_column_named_all(tmp_path):
    out = apply(trim, ["all"], frame({"all": [" a "], "b": [" b "]}), make_ctx(tmp_path))
    assert values(out["all"]) == ["a"] and values(out["b"]) == [" b "]


# upper, lower, title --------------------------------------------------------------------------


def test_upper_and_lower_map_each_character(chunk, tmp_path):
    up = apply(upper, ["code"], chunk, make_ctx(tmp_path))
    assert values(up["code"]) == ["06103", " AB ", "X", "Y", "Z", None, "É", "ẞ", "Q"]
    low = apply(lower, ["name"], chunk, make_ctx(tmp_path))
    assert values(low["name"])[6] == "école élise" and values(low["name"])[1] == "don't stop"


def test_title_case_handles_unicode_apostrophes_hyphens_and_ordinals(chunk, tmp_path):
    out = apply(title, ["name"], chunk, make_ctx(tmp_path))
    assert values(out["name"]) == [
        "  O'Brien ",
        "Don't Stop",
        "3rd  Street",
        "Jean-Luc Picard",
        " \u00a0\t",
        None,
        "École Élise",
        "Mcdonald's 21st",
        "It’s 2nd",
    ]


def test_title_case_of_contractions_and_names(tmp_path):
    out = apply(
        title,
        "t",
        frame({"t": ["THEY'RE WE'VE I'LL I'M SHE'D", "D'ANGELO O'NEIL", "APT 4B", "1ST2ND"]}),
        make_ctx(tmp_path),
    )
    assert values(out["t"]) == ["They're We've I'll I'm She'd", "D'Angelo O'Neil", "Apt 4B", "1st2nd"]


def test_text_rules_refuse_a_named_column_that_is_not_text(chunk, tmp_path):
    with pytest.raises(RunFailed) as err:
        apply(upper, ["name", "n"], chunk, make_ctx(tmp_path))
    assert str(err.value) == (
        "upper: column 'n' is integer, not text; upper changes text columns only "
        "(cast it to text first if that is what you mean)"
    )


def test_text_rules_name_the_nearest_column_when_one_is_missing(chunk, tmp_path):
    with pytest.raises(RunFailed) as err:
        apply(title, ["Name"], chunk, make_ctx(tmp_path))
    assert str(err.value) == "title: no column 'Name' in the data; did you mean 'name'? (columns: name, code, n)"


def test_text_rule_options_are_checked(tmp_path):
    with pytest.raises(OptionError, match="Additional properties"):
        bind_options(upper, {"columns": ["a"], "collapse": True}, make_ctx(tmp_path))
    with pytest.raises(OptionError, match=r"\[\] is not valid"):
        bind_options(trim, {"columns": []}, make_ctx(tmp_path))


@pytest.mark.parametrize("rule_fn, options", [(trim, "all"), (upper, ["code"]), (lower, "name"), (title, ["name"])])
def test_text_rules_keep_the_rule_contract(rule_fn, options, chunk):
    assert len(check_rule(rule_fn, options, chunk).output) == len(chunk)


def test_text_rules_on_an_empty_and_an_all_null_chunk(tmp_path):
    ctx = make_ctx(tmp_path)
    empty = frame({"a": []})
    assert apply(title, ["a"], empty, ctx)["a"].dtype == TEXT
    nulls = frame({"a": [None, None]})
    out = apply(trim, ["a"], nulls, ctx)
    assert out["a"].dtype == TEXT and values(out["a"]) == [None, None]


# fill -----------------------------------------------------------------------------------------


@pytest.fixture
def typed():
    return frame(
        {
            "s": ["x", None, "N/A"],
            "i": [1, None, -1],
            "f": [None, 2.5, None],
            "d": [None, dt.date(2020, 1, 1), None],
            "b": [None, True, None],
            "t": [None, None, dt.datetime(2024, 1, 1, 5, tzinfo=dt.UTC)],
        },
        dtypes={"i": INTEGER, "f": NUMBER, "d": DATE, "b": BOOLEAN, "t": dtypes.datetime_dtype("America/New_York")},
    )


def test_fill_puts_a_default_of_the_column_type_where_values_are_null(typed, tmp_path):
    out = apply(
        fill,
        {"s": "none", "i": 0, "f": 1, "d": dt.date(2099, 12, 31), "b": "no", "t": "2024-03-01T10:00:00"},
        typed,
        make_ctx(tmp_path),
    )
    assert values(out["s"]) == ["x", "none", "N/A"]
    assert values(out["i"]) == [1, 0, -1]
    assert values(out["f"]) == [1.0, 2.5, 1.0]
    assert values(out["d"]) == [dt.date(2099, 12, 31), dt.date(2020, 1, 1), dt.date(2099, 12, 31)]
    assert values(out["b"]) == [False, True, False]
    assert values(out["t"]) == [dt.datetime(2024, 3, 1, 10, tzinfo=NY)] * 2 + [dt.datetime(2024, 1, 1, tzinfo=NY)]
    assert list(out.dtypes) == list(typed.dtypes)
    assert values(typed["s"]) == ["x", None, "N/A"]


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"s": 6103},
            "fill: the default 6103 for text column 's' is not text; write it in quotes in the route "
            "(YAML reads 06103 as a number and yes as true)",
        ),
        (
            {"s": True},
            "fill: the default true for text column 's' is not text; write it in quotes in the route "
            "(YAML reads 06103 as a number and yes as true)",
        ),
        ({"i": "abc"}, "fill: the default 'abc' for integer column 'i' is not an integer"),
        ({"i": 1.5}, "fill: the default 1.5 for integer column 'i' is not an integer"),
        (
            {"d": "2020-13-01"},
            "fill: the default '2020-13-01' for date column 'd' is not a date (write it as YYYY-MM-DD)",
        ),
        ({"b": "maybe"}, "fill: the default 'maybe' for boolean column 'b' is not true or false"),
    ],
)
def test_fill_with_a_default_of_another_type_fails_saying_how_to_write_it(typed, tmp_path, options, message):
    with pytest.raises(RunFailed) as err:
        apply(fill, options, typed, make_ctx(tmp_path))
    assert str(err.value) == message


def test_fill_of_a_missing_column_and_a_null_default(typed, tmp_path):
    with pytest.raises(RunFailed, match=r"^fill: no column 'S' in the data; did you mean 's'\?"):
        apply(fill, {"S": "x"}, typed, make_ctx(tmp_path))
    with pytest.raises(OptionError) as err:
        bind_options(fill, {"s": None}, make_ctx(tmp_path))
    assert str(err.value) == "the default for 's' must be one value (text, a number, true/false or a date), not null"
    with pytest.raises(OptionError) as err:
        bind_options(fill, {"s": [1]}, make_ctx(tmp_path))
    assert err.value.path == ("s",) and str(err.value).endswith("not a list or mapping")


# replace --------------------------------------------------------------------------------------


def test_replace_maps_exact_values_and_can_map_to_null(tmp_path):
    chunk = frame(
        {"town": ["Hartfrod", "hartfrod", "W Hartford", "N/A", None, "Hartford "], "salary": [1, -1, 3, -1, None, 5]},
        dtypes={"salary": INTEGER},
    )
    out = apply(
        replace,
        {"town": {"Hartfrod": "Hartford", "W Hartford": "West Hartford", "N/A": None}, "salary": {-1: None}},
        chunk,
        make_ctx(tmp_path),
    )
    assert values(out["town"]) == ["Hartford", "hartfrod", "West Hartford", None, None, "Hartford "]
    assert values(out["salary"]) == [1, None, 3, None, None, 5]
    assert out["salary"].dtype == INTEGER and out["town"].dtype == TEXT


def test_replace_of_null_fills_only_the_nulls_that_were_there(tmp_path):
    chunk = frame({"s": ["x", None, "N/A"]})
    out = apply(replace, {"s": {"N/A": None, None: "unknown", "x": "N/A"}}, chunk, make_ctx(tmp_path))
    assert values(out["s"]) == ["N/A", "unknown", None]  # no chains: each value is replaced once


def test_replace_works_on_dates_and_booleans(typed, tmp_path):
    out = apply(replace, {"d": {"2020-01-01": "2021-01-01"}, "b": {True: False}}, typed, make_ctx(tmp_path))
    assert values(out["d"]) == [None, dt.date(2021, 1, 1), None]
    assert values(out["b"]) == [None, False, None]


def test_replace_with_an_unquoted_number_for_a_text_column_fails(tmp_path):
    with pytest.raises(RunFailed) as err:
        apply(replace, {"zip": {6103: "06103"}}, frame({"zip": ["6103"]}), make_ctx(tmp_path))
    assert str(err.value) == (
        "replace: the value 6103 for text column 'zip' is not text; write it in quotes "
        "in the route (YAML reads 06103 as a number and yes as true)"
    )


def test_replace_options_are_checked(tmp_path):
    with pytest.raises(OptionError, match="'x' is not of type 'object'"):
        bind_options(replace, {"s": "x"}, make_ctx(tmp_path))
    with pytest.raises(OptionError, match="should be non-empty"):
        bind_options(replace, {"s": {}}, make_ctx(tmp_path))


@pytest.mark.parametrize("rule_fn, options", [(fill, {"s": "none", "i": 0}), (replace, {"s": {"N/A": None}})])
def test_value_rules_keep_the_rule_contract(rule_fn, options, typed):
    result = check_rule(rule_fn, options, typed)
    assert len(result.output) == 3 and result.rejected == 0


def test_value_rules_on_an_empty_chunk(typed, tmp_path):
    ctx = make_ctx(tmp_path)
    out = apply(fill, {"i": 0}, typed.iloc[0:0], ctx)
    assert out["i"].dtype == INTEGER and len(out) == 0
    assert rejects(ctx) == []
    all_null = pd.DataFrame({"x": pd.Series([None, None], dtype=TEXT)}, index=[2, 3])
    assert values(apply(replace, {"x": {None: "-"}}, all_null, ctx)["x"]) == ["-", "-"]

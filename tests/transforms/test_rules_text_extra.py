"""Text rules on awkward values: nulls, empty results, unicode, numbers where text was expected."""

import pytest
from rulekit import INTEGER, TEXT, apply, frame, make_ctx, rejects, values

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.testing import check_rule
from transforms.text_extra import concat, normalize_space, pad, regex_extract, regex_replace, split, truncate


@pytest.fixture
def ctx(tmp_path):
    return make_ctx(tmp_path)


def test_regex_replace_strips_non_digits_and_empty_results_become_null(ctx):
    chunk = frame({"phone": ["(860) 555-0100", None, "n/a", "☎ 203 555 0199"]})
    out = apply(regex_replace, {"columns": ["phone"], "pattern": "[^0-9]+", "replacement": ""}, chunk, ctx)
    assert values(out["phone"]) == ["8605550100", None, None, "2035550199"]
    assert out.index.tolist() == [2, 3, 4, 5]
    assert out["phone"].dtype == TEXT
    assert values(chunk["phone"])[0] == "(860) 555-0100"  # input untouched


def test_regex_replace_groups_case_and_numbers(ctx):
    chunk = frame({"name": ["Smith, John", "DOE, jane", None], "n": [7, None, 12]}, dtypes={"n": INTEGER})
    out = apply(regex_replace, {"columns": "name", "pattern": r"^(\w+), (\w+)$", "replacement": r"\2 \1"}, chunk, ctx)
    assert values(out["name"]) == ["John Smith", "jane DOE", None]
    out = apply(regex_replace, {"columns": ["n"], "pattern": "^1", "replacement": "one-"}, chunk, ctx)
    assert values(out["n"]) == ["7", None, "one-2"] and out["n"].dtype == TEXT
    out = apply(
        regex_replace, {"columns": "name", "pattern": "doe", "replacement": "X", "ignore_case": True}, chunk, ctx
    )
    assert values(out["name"]) == ["Smith, John", "X, jane", None]


@pytest.mark.parametrize(
    "options, path, message",
    [
        ({"columns": "a", "pattern": "(unclosed"}, ("pattern",), "invalid regular expression '(unclosed': missing )"),
        ({"columns": "a", "pattern": "(a)", "replacement": r"\g<1>"}, ("replacement",), r"refer to groups as \1"),
        ({"columns": "a", "pattern": "(a)", "replacement": r"\2"}, ("replacement",), "does not fit the pattern"),
    ],
)
def test_regex_replace_bad_options(ctx, options, path, message):
    with pytest.raises(OptionError) as err:
        apply(regex_replace, options, frame({"a": ["x"]}), ctx)
    assert err.value.path == path and message in str(err.value)


def test_regex_extract_named_groups_and_unmatched_null(ctx):
    chunk = frame({"permit": ["2021-0042", "B-7", None, "1999-1", "２０２１-3"]})
    out = apply(regex_extract, {"column": "permit", "pattern": r"^(?P<year>\d{4})-(?P<seq>\d+)$"}, chunk, ctx)
    assert list(out.columns) == ["permit", "year", "seq"]
    assert values(out["year"]) == ["2021", None, None, "1999", None]
    assert values(out["seq"]) == ["0042", None, None, "1", None]
    assert rejects(ctx) == []


def test_regex_extract_into_unnamed_groups_and_reject(ctx):
    chunk = frame({"where": ["Hartford, CT", "[x] (y)", None, "Zürich, ZH"]})
    out = apply(
        regex_extract,
        {"column": "where", "pattern": r"^([^,\[(]+), ([A-Z]{2})$", "into": ["city", "state"], "unmatched": "reject"},
        chunk,
        ctx,
    )
    assert out.index.tolist() == [2, 4, 5]
    assert values(out["city"]) == ["Hartford", None, "Zürich"]
    assert values(out["state"]) == ["CT", None, "ZH"]
    assert rejects(ctx) == [
        {"line": "3", "column": "where", "value": "[x] (y)", "reason": "does not match '^([^,\\\\[(]+), ([A-Z]{2})$'"}
    ]


def test_regex_extract_optional_group_that_did_not_take_part_is_null(ctx):
    out = apply(
        regex_extract, {"column": "v", "pattern": r"(?P<a>\d+)(?:\.(?P<b>\d+))?"}, frame({"v": ["12.5", "7"]}), ctx
    )
    assert values(out["a"]) == ["12", "7"] and values(out["b"]) == ["5", None]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"column": "v", "pattern": "abc"}, "the pattern has no groups"),
        ({"column": "v", "pattern": "(a)(b)"}, "name every group"),
        ({"column": "v", "pattern": "(a)", "into": ["x", "y"]}, "`into` names 2 columns but the pattern has 1 groups"),
    ],
)
def test_regex_extract_bad_options(ctx, options, message):
    with pytest.raises(OptionError, match=message):
        apply(regex_extract, options, frame({"v": ["a"]}), ctx)


def test_split_last_column_takes_the_rest_and_missing_parts_are_null(ctx):
    chunk = frame({"name": ["Doe, Jane, Jr.", "Prince", None, ", X", "李, 小龍"]})
    out = apply(split, {"column": "name", "separator": ",", "into": ["last", "rest"], "trim": True}, chunk, ctx)
    assert values(out["last"]) == ["Doe", "Prince", None, None, "李"]
    assert values(out["rest"]) == ["Jane, Jr.", None, None, "X", "小龍"]


def test_split_by_pattern_into_three(ctx):
    chunk = frame({"d": ["2024/01/31", "2024-2-1", "2024"]})
    out = apply(split, {"column": "d", "pattern": "[/-]", "into": ["y", "m", "d"]}, chunk, ctx)
    assert [values(out[c]) for c in ("y", "m", "d")] == [["2024", "2024", "2024"], ["01", "2", None], ["31", "1", None]]


def test_split_rejects_both_separator_and_pattern(ctx):
    with pytest.raises(OptionError, match="either `separator`"):
        apply(split, {"column": "d", "pattern": "-", "separator": "-", "into": ["a"]}, frame({"d": ["x"]}), ctx)


def test_concat_skips_nulls_with_their_separator(ctx):
    chunk = frame(
        {
            "street": ["1 Main St", None, None, "2 Elm"],
            "city": ["Hartford", "Avon", None, None],
            "zip": ["06103", None, None, 6001],
        },
        dtypes={"zip": "object"},
    )
    out = apply(concat, {"columns": ["street", "city", "zip"], "separator": ", ", "into": "address"}, chunk, ctx)
    assert values(out["address"]) == ["1 Main St, Hartford, 06103", "Avon", None, "2 Elm, 6001"]
    out = apply(concat, {"columns": ["street", "city"], "separator": "/", "into": "a", "skip_nulls": False}, chunk, ctx)
    assert values(out["a"]) == ["1 Main St/Hartford", None, None, None]


def test_pad_restores_leading_zeros_of_numbers_and_text(ctx):
    chunk = frame({"zip": [6103, None, 123456, 6], "code": ["7", "ab", "日本", None]}, dtypes={"zip": INTEGER})
    out = apply(pad, {"columns": ["zip"], "width": 5}, chunk, ctx)
    assert values(out["zip"]) == ["06103", None, "123456", "00006"] and out["zip"].dtype == TEXT
    out = apply(pad, {"columns": "code", "width": 3, "fill": "*", "side": "right"}, chunk, ctx)
    assert values(out["code"]) == ["7**", "ab*", "日本*", None]
    out = apply(pad, {"columns": "code", "width": 4, "fill": "-", "side": "both"}, chunk, ctx)
    assert values(out["code"]) == ["-7--", "-ab-", "-日本-", None]


def test_normalize_space_collapses_unicode_spaces_and_blank_becomes_null(ctx):
    chunk = frame({"v": ["  a \t b\n\nc ", "x\u00a0\u00a0y", "\u3000", None, "e\u0301 \u2003 f"]})
    out = apply(normalize_space, ["v"], chunk, ctx)
    assert values(out["v"]) == ["a b c", "x y", None, None, "e\u0301 f"]
    out = apply(normalize_space, {"columns": "v", "form": "NFC"}, chunk, ctx)
    assert values(out["v"])[4] == "é f"


def test_truncate_counts_characters_not_bytes(ctx):
    chunk = frame({"r": ["short", "exactly10!", "much longer text", "ÄÖÜäöüßéèê_", None]})
    out = apply(truncate, {"columns": "r", "length": 10, "ellipsis": "…"}, chunk, ctx)
    assert values(out["r"]) == ["short", "exactly10!", "much long…", "ÄÖÜäöüßéè…", None]
    out = apply(truncate, {"columns": ["r"], "length": 3}, chunk, ctx)
    assert values(out["r"]) == ["sho", "exa", "muc", "ÄÖÜ", None]
    with pytest.raises(OptionError, match="shorter than `length`"):
        apply(truncate, {"columns": "r", "length": 1, "ellipsis": "…"}, chunk, ctx)


def test_missing_column_names_the_nearest(ctx):
    with pytest.raises(RunFailed, match=r"pad: no column 'zp' \(did you mean 'zip'\?\)"):
        apply(pad, {"columns": "zp", "width": 5}, frame({"zip": ["1"]}), ctx)


@pytest.mark.parametrize(
    "rule, options",
    [
        (regex_replace, {"columns": ["a", "n"], "pattern": r"\d", "replacement": "#"}),
        (regex_extract, {"column": "a", "pattern": r"(?P<w>\w+) (?P<d>\d)", "unmatched": "reject"}),
        (split, {"column": "a", "separator": " ", "into": ["p", "q"]}),
        (concat, {"columns": ["a", "n"], "into": "c", "separator": "-"}),
        (pad, {"columns": ["n"], "width": 4}),
        (normalize_space, "a"),
        (truncate, {"columns": "a", "length": 2, "ellipsis": "."}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_text_rules_keep_the_contract(rule, options):
    sample = frame({"a": ["x 1", None, "é  2", "", "zz 9", "日本"], "n": [1, None, 3, 1, 2, 2]}, dtypes={"n": INTEGER})
    check_rule(rule, options, sample)

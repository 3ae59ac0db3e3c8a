"""Validation rules: exactly which rows are rejected, with which column, value and reason."""

import json

import numpy as np
import pandas as pd
import pytest
from rulekit import DATE, INTEGER, NUMBER, TEXT, apply, frame, make_ctx, rejects

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.testing import bind_options, check_rule
from transforms.validate import one_of, pattern, require, schema, unique
from transforms.validate import range as range_rule


@pytest.fixture
def ctx(tmp_path):
    return make_ctx(tmp_path)


def test_require_rejects_null_empty_and_blank_text(ctx):
    chunk = frame({"id": ["1", None, "", " \t", "ü"], "n": [1, 2, None, 4, 5]}, dtypes={"n": INTEGER})
    out = apply(require, ["id", "n"], chunk, ctx)
    assert out.index.tolist() == [2, 6]
    assert [(r["line"], r["column"], r["reason"]) for r in rejects(ctx)] == [
        ("3", "id", "a value is required"),
        ("4", "id", "a value is required"),
        ("5", "id", "a value is required"),
    ]


def test_unique_names_the_first_line_across_chunks(ctx):
    chunk = frame({"permit": ["A1", "B2", None, "A1", "b2", None, "A1"], "yr": ["1", "1", "1", "2", "1", "1", "1"]})
    out = apply(unique, ["permit"], [chunk.iloc[:2], chunk.iloc[2:5], chunk.iloc[5:]], ctx)
    assert out.index.tolist() == [2, 3, 4, 6]
    assert rejects(ctx) == [
        {"line": "5", "column": "permit", "value": "A1", "reason": "duplicate of line 2"},
        {"line": "7", "column": "permit", "value": "", "reason": "duplicate of line 4"},
        {"line": "8", "column": "permit", "value": "A1", "reason": "duplicate of line 2"},
    ]


def test_unique_on_two_columns_reports_the_key(tmp_path):
    ctx = make_ctx(tmp_path)
    chunk = frame({"permit": ["A1", "A1", "A1"], "yr": ["1", "2", "1"]})
    assert apply(unique, {"columns": ["permit", "yr"]}, [chunk], ctx).index.tolist() == [2, 3]
    assert rejects(ctx) == [{"line": "4", "column": "permit, yr", "value": "A1 | 1", "reason": "duplicate of line 2"}]


def test_unique_300k_agrees_with_pandas(tmp_path):
    n, rng = 300_000, np.random.default_rng(5)
    df = pd.DataFrame(
        {"id": pd.array(rng.integers(0, 200_000, n), dtype=INTEGER), "v": pd.array(rng.random(n), dtype=NUMBER)},
        index=pd.RangeIndex(2, n + 2),
    )
    ctx = make_ctx(tmp_path, chunk_rows=10_000)
    out = apply(unique, ["id"], [df.iloc[i : i + 10_000] for i in range(0, n, 10_000)], ctx)
    pd.testing.assert_frame_equal(out, df[~df["id"].duplicated()])
    assert ctx.rejected == int(df["id"].duplicated().sum())
    first = df.reset_index().groupby("id")["index"].transform("first").to_numpy()
    dup = df["id"].duplicated().to_numpy()
    reasons = [r["reason"] for r in rejects(ctx)]
    assert reasons == [f"duplicate of line {line}" for line in first[dup]]


def test_pattern_whole_value_by_default(ctx):
    chunk = frame({"zip": ["06103", "6103", "06103-1234", None, "06103x", "٠٦١٠٣"]})
    out = apply(pattern, {"columns": "zip", "pattern": r"\d{5}(-\d{4})?"}, chunk, ctx)
    assert out.index.tolist() == [2, 4, 5]
    assert [(r["line"], r["value"]) for r in rejects(ctx)] == [("3", "6103"), ("6", "06103x"), ("7", "٠٦١٠٣")]
    assert rejects(ctx)[0]["reason"] == "does not match the pattern '\\\\d{5}(-\\\\d{4})?'"


def test_pattern_anywhere_and_ignore_case(ctx):
    chunk = frame({"r": ["Short SALE", "estate", None]})
    out = apply(pattern, {"columns": ["r"], "pattern": "sale", "full": False, "ignore_case": True}, chunk, ctx)
    assert out.index.tolist() == [2, 4]


def test_pattern_bad_regex_is_an_option_error(ctx):
    with pytest.raises(OptionError, match="invalid regular expression '\\(x': missing \\)") as err:
        bind_options(pattern, {"columns": "a", "pattern": "(x"}, ctx)
    assert err.value.path == ("pattern",)


def test_range_on_text_numbers(ctx):
    chunk = frame({"amt": ["5", "-1", "abc", "1e3", None, " 100 ", "100.01"]})
    out = apply(range_rule, {"column": "amt", "min": 0, "max": 100}, chunk, ctx)
    assert out.index.tolist() == [2, 6, 7]
    assert [(r["line"], r["reason"]) for r in rejects(ctx)] == [
        ("4", "is not a number"),
        ("3", "below the minimum 0"),
        ("5", "above the maximum 100"),
        ("8", "above the maximum 100"),
    ]


def test_range_exclusive_on_numbers_and_dates(ctx):
    chunk = frame({"n": [0, 1, 10, None], "d": ["2020-01-01", "2019-12-31", None, "2021-01-01"]}, dtypes={"n": INTEGER})
    chunk["d"] = chunk["d"].astype(DATE)
    assert apply(range_rule, {"column": "n", "min": 0, "max": 10, "exclusive": True}, chunk, ctx).index.tolist() == [
        3,
        5,
    ]
    out = apply(range_rule, {"column": "d", "min": "2020-01-01", "max": "2020-12-31"}, chunk, ctx)
    assert out.index.tolist() == [2, 4]
    assert rejects(ctx)[-2:] == [
        {"line": "3", "column": "d", "value": "2019-12-31", "reason": "below the minimum 2020-01-01"},
        {"line": "5", "column": "d", "value": "2021-01-01", "reason": "above the maximum 2020-12-31"},
    ]


def test_range_option_errors(ctx):
    with pytest.raises(OptionError, match="give `min`, `max` or both"):
        bind_options(range_rule, {"column": "n"}, ctx)
    with pytest.raises(OptionError, match="both be numbers or both be text"):
        bind_options(range_rule, {"column": "n", "min": 1, "max": "2020-01-01"}, ctx)
    chunk = frame({"d": ["2020-01-01"]})
    chunk["d"] = chunk["d"].astype(DATE)
    with pytest.raises(RunFailed, match="range: 'soon' is not a date for column 'd'"):
        apply(range_rule, {"column": "d", "max": "soon"}, chunk, ctx)


def test_one_of_compares_as_text(ctx):
    chunk = frame(
        {"t": ["Residential", "residential", None, "Condo", "Vacant Land"], "n": [1, 2, 3, 4, 5]}, dtypes={"n": INTEGER}
    )
    out = apply(one_of, {"column": "t", "values": ["Residential", "Vacant Land"]}, chunk, ctx)
    assert out.index.tolist() == [2, 4, 6]
    assert rejects(ctx)[0] == {
        "line": "3",
        "column": "t",
        "value": "residential",
        "reason": "is not one of 'Residential', 'Vacant Land'",
    }
    assert apply(
        one_of, {"column": "t", "values": ["RESIDENTIAL"], "ignore_case": True}, chunk, ctx
    ).index.tolist() == [2, 3, 4]
    assert apply(one_of, {"column": "n", "values": [1, 2, "3"]}, chunk, ctx).index.tolist() == [2, 3, 4]


SCHEMA = {
    "type": "object",
    "required": ["id"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": "^[A-Z]-\\d$"},
        "amt": {"type": "integer", "minimum": 0},
        "d": {"type": "string", "format": "date"},
        "extra": {"type": "string", "maxLength": 3},
    },
}


def schema_chunk():
    return frame(
        {
            "id": ["A-1", "B-2", None, "C3", "D-4", "E-5"],
            "amt": [5, -1, 3, None, 2, 1],
            "d": ["2020-01-01", None, "2020-13-01", "2020-02-02", "2020-03-03", "2020-02-30"],
            "extra": [None, None, None, None, "long", "ok"],
        },
        dtypes={"amt": INTEGER},
    )


EXPECTED_SCHEMA_REJECTS = [
    ("3", "amt", "amt: -1 is less than the minimum of 0"),
    ("4", "id", "'id' is a required property"),
    ("5", "id", "id: 'C3' does not match '^[A-Z]-\\\\d$'"),
    ("6", "extra", "extra: 'long' is too long"),
    ("7", "d", "d: '2020-02-30' is not a 'date'"),
]


@pytest.mark.parametrize("extra", [{}, {"allOf": [{"type": "object"}]}], ids=["per-column", "per-row"])
def test_schema_rejects_with_jsonschema_messages(ctx, extra):
    out = apply(schema, {**SCHEMA, **extra}, schema_chunk(), ctx)
    assert out.index.tolist() == [2]
    got = sorted((r["line"], r["column"], r["reason"]) for r in rejects(ctx))
    assert got == EXPECTED_SCHEMA_REJECTS


def test_schema_from_a_file_and_closed_schema(ctx, tmp_path):
    (tmp_path / "rows.schema.json").write_text(
        json.dumps({"type": "object", "properties": {"id": {}}, "additionalProperties": False})
    )
    out = apply(schema, "rows.schema.json", frame({"id": ["1", "2"], "x": [None, "y"]}), ctx)
    assert out.index.tolist() == [2]
    assert rejects(ctx)[0]["reason"] == "Additional properties are not allowed ('x' was unexpected)"


@pytest.mark.parametrize(
    "options, message",
    [
        ("missing.json", "schema file not found: "),
        ({"type": "object", "properties": {"a": {"type": "strin"}}}, "not a valid JSON Schema at properties/a/type"),
        ({"schema": {"minimum": "zero"}}, "not a valid JSON Schema at minimum: 'zero' is not of type 'number'"),
    ],
)
def test_schema_bad_schemas_are_option_errors(ctx, options, message):
    with pytest.raises(OptionError) as err:
        bind_options(schema, options, ctx)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "rule, options",
    [
        (require, ["a"]),
        (unique, ["a"]),
        (pattern, {"columns": "a", "pattern": "x.*"}),
        (range_rule, {"column": "n", "min": 2}),
        (one_of, {"column": "a", "values": ["x1"]}),
        (schema, {"type": "object", "properties": {"n": {"maximum": 3}}}),
        (schema, {"type": "object", "properties": {"n": {"maximum": 3}}, "not": {"required": ["zz"]}}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_validate_rules_keep_the_contract(rule, options):
    sample = frame({"a": ["x1", None, "é", "x1", "", "q"], "n": [1, None, 3, 1, 5, 2]}, dtypes={"n": INTEGER})
    check_rule(rule, options, sample)


def test_text_dtype_stays(ctx):
    out = apply(require, ["a"], frame({"a": ["x"]}), ctx)
    assert out["a"].dtype == TEXT

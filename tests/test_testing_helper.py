"""pipeline.testing.check_rule: passes rules that keep the contract and names what others break."""

import pandas as pd
import pytest
from rulekit import frame, values

from pipeline.basics.dtypes import TEXT
from pipeline.basics.plugins import rule
from pipeline.testing import check_rule

SAMPLE = frame({"town": ["hartford", None, "NEW HAVEN", "Ansonia"], "n": ["1", "2", "3.5", "4"]})
OPTIONS = {
    "type": "object",
    "properties": {"column": {"type": "string"}},
    "required": ["column"],
    "additionalProperties": False,
}


@rule(OPTIONS)
def shout(chunk, options, ctx):
    """Upper-case a column."""
    out = chunk.copy()
    out[options["column"]] = chunk[options["column"]].str.upper()
    return out


@rule(OPTIONS)
def shout_in_place(chunk, options, ctx):
    chunk[options["column"]] = chunk[options["column"]].str.upper()
    return chunk


@rule(OPTIONS)
def guess_numbers(chunk, options, ctx):
    return chunk.assign(**{options["column"]: pd.to_numeric(chunk[options["column"]])})


@rule(OPTIONS)
def smart_numbers(chunk, options, ctx):
    column = chunk[options["column"]]
    integral = len(chunk) > 0 and not column.str.contains(".", regex=False).fillna(False).any()
    return chunk.assign(**{options["column"]: column.astype("int64[pyarrow]" if integral else "double[pyarrow]")})


@rule(OPTIONS)
def renumber(chunk, options, ctx):
    return chunk.reset_index(drop=True)


@rule(OPTIONS)
def reject_but_keep(chunk, options, ctx):
    ctx.reject(chunk[chunk[options["column"]].isna()], "missing", column=options["column"])
    return chunk


@rule(OPTIONS)
def number_rows(chunk, options, ctx):
    return chunk.assign(position=pd.Series(range(len(chunk)), index=chunk.index, dtype="int64"))


@rule(OPTIONS, scope="stream")
def gather(chunks, options, ctx):
    yield pd.concat(list(chunks))


@rule(OPTIONS, scope="stream")
def whole_frame(chunks, options, ctx):
    return pd.concat(list(chunks))


@rule(OPTIONS, scope="stream")
def passthrough(chunks, options, ctx):
    """A stream rule that keeps the contract."""
    for chunk in chunks:
        yield chunk[chunk[options["column"]].notna()]


def plain_function(chunk, options, ctx):
    return chunk


def test_a_good_rule_passes_and_returns_its_output():
    result = check_rule(shout, {"column": "town"}, SAMPLE)
    assert values(result.output["town"]) == ["HARTFORD", None, "NEW HAVEN", "ANSONIA"]
    assert result.output["town"].dtype == TEXT and result.rejected == 0
    assert len(check_rule(passthrough, {"column": "town"}, SAMPLE).output) == 3


@pytest.mark.parametrize(
    "rule_fn, options, message",
    [
        (
            shout_in_place,
            {"column": "town"},
            "shout_in_place changed its input chunk (a normal chunk): rules must "
            "return a new frame and leave the input as it was",
        ),
        (
            guess_numbers,
            {"column": "n"},
            "guess_numbers changed dtypes between chunks: 'n': double[pyarrow] for a "
            "normal chunk, int64[pyarrow] for an empty chunk (every chunk must have the "
            "same dtypes, whatever its values)",
        ),
        (
            smart_numbers,
            {"column": "n"},
            "smart_numbers changed dtypes between chunks: 'n': double[pyarrow] for one "
            "chunk, int64[pyarrow] for output 1 of two chunks in a row",
        ),
        (
            renumber,
            {"column": "town"},
            "renumber lost the index for a normal chunk: its output has index values [0, 1]",
        ),
        (
            reject_but_keep,
            {"column": "town"},
            "reject_but_keep rejected rows [3] for a normal chunk but still "
            "returned them: drop the rows you pass to ctx.reject",
        ),
        (number_rows, {"column": "town"}, "number_rows gives different rows when the same input arrives in two chunks"),
        (
            gather,
            {"column": "town"},
            "gather yielded a chunk of 4 rows for two chunks in a row; stream rules yield at "
            "most ctx.run.chunk_rows (2)",
        ),
        (
            whole_frame,
            {"column": "town"},
            "whole_frame is a stream rule and must return an iterator of DataFrames, not DataFrame",
        ),
        (plain_function, {}, "plain_function is not marked with @rule(...) from pipeline.api"),
        (shout, {"colum": "town"}, "shout: options rejected: 'column' is a required property"),
        (shout, {"column": 5}, "shout: options rejected at column: 5 is not of type 'string'"),
    ],
)
def test_broken_contracts_are_named(rule_fn, options, message):
    with pytest.raises(AssertionError) as err:
        check_rule(rule_fn, options, SAMPLE)
    assert message in str(err.value)


def test_a_broken_schema_and_a_tiny_sample_are_refused():
    @rule({"type": "object", "properties": {"x": {"type": "strng"}}})
    def odd(chunk, options, ctx):
        return chunk

    with pytest.raises(AssertionError, match="odd: its options schema is not valid JSON Schema"):
        check_rule(odd, {}, SAMPLE)
    with pytest.raises(AssertionError, match="needs a sample DataFrame of at least 2 rows"):
        check_rule(shout, {"column": "town"}, SAMPLE.iloc[:1])

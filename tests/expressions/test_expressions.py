"""The expression language: parsing (positions, refusals), null semantics, types and functions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.basics.dtypes import BOOLEAN, DATE, DATETIME, INTEGER, NUMBER, TEXT, datetime_dtype
from pipeline.basics.errors import RouteError
from pipeline.expressions import FUNCTIONS, ExpressionError, parse


def chunk(lines=None, **columns) -> pd.DataFrame:
    """A chunk of Arrow-backed columns given as (values, dtype) or values (TEXT); index = source lines."""
    n = (
        len(
            next(iter(columns.values()))[0]
            if isinstance(next(iter(columns.values())), tuple)
            else next(iter(columns.values()))
        )
        if columns
        else 0
    )
    index = pd.Index(lines if lines is not None else range(2, n + 2), dtype="int64")
    data = {}
    for name, spec in columns.items():
        values, dtype = spec if isinstance(spec, tuple) else (spec, TEXT)
        data[name] = pd.Series(values, dtype=dtype, index=index)
    return pd.DataFrame(data, index=index)


def values(series: pd.Series) -> list:
    return [None if v is pd.NA or v is None else v for v in series.astype(object).tolist()]


def ev(text: str, frame: pd.DataFrame | None = None, **columns) -> list:
    frame = frame if frame is not None else chunk(**columns)
    return values(parse(text).evaluate(frame))


def parse_error(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    return info.value


def eval_error(text: str, frame: pd.DataFrame) -> ExpressionError:
    expr = parse(text)
    with pytest.raises(ExpressionError) as info:
        expr.evaluate(frame)
    return info.value


# -- parsing ---------------------------------------------------------------------------------------


def test_columns_lists_every_name_read_including_backticked_ones():
    expr = parse("gross >= 0 and `Pay Date` is not null or upper(town) in ['A']")
    assert expr.columns == frozenset({"gross", "Pay Date", "town"})
    assert parse("1 + 2").columns == frozenset()


def test_error_carries_message_and_zero_based_position_and_shows_it_one_based():
    err = parse_error("gross >= uper(town)")
    assert err.position == 9
    assert err.message == "unknown function 'uper'; did you mean 'upper'?"
    assert str(err) == "at column 10: unknown function 'uper'; did you mean 'upper'?"
    assert isinstance(err, RouteError)


def test_unknown_function_without_near_name_lists_the_functions():
    err = parse_error("open('/etc/passwd')")
    assert err.position == 0
    assert err.message.startswith("unknown function 'open'; the functions are: abs, ceil, coalesce, concat,")


@pytest.mark.parametrize(
    "text, position, fragment",
    [
        ("__class__", 0, "names starting with '__' are not allowed ('__class__')"),
        ("x.__class__", 1, "'.' is not allowed: expressions have no attribute access"),
        ("town.upper()", 4, "'.' is not allowed"),
        ("1.real", 1, "'.' is not allowed"),
        ("(1).__class__", 3, "'.' is not allowed"),
        ("__import__('os')", 0, "names starting with '__' are not allowed"),
        ("import os", 0, "'import' is not allowed here: expressions cannot import anything"),
        ("lambda: 1", 0, "'lambda' is not allowed here"),
        ("None", 0, "'None' is not allowed here: write null"),
        ("exec('x')", 0, "unknown function 'exec'"),
        ("eval('1')", 0, "unknown function 'eval'"),
        ("getattr(x, 'y')", 0, "unknown function 'getattr'"),
        ("x[0]", 1, "found '[' after a complete expression"),
        ("a if b else c", 2, "'a if b else c' is written if(b, a, c) here"),
        ("a; b", 1, "unexpected character ';'"),
        ("{'a': 1}", 0, "unexpected character '{'"),
    ],
)
def test_python_is_refused_at_parse_time(text, position, fragment):
    err = parse_error(text)
    assert fragment in err.message
    assert err.position == position


def test_dunder_name_in_backticks_is_only_a_column_name():
    expr = parse("`__class__` == 1")
    assert expr.columns == {"__class__"}
    err = eval_error("`__class__` == 1", chunk(a=["1"]))
    assert err.message == "unknown column '__class__'"


@pytest.mark.parametrize(
    "text, position, message",
    [
        ("", 0, "the expression is empty"),
        ("   ", 0, "the expression is empty"),
        ("(a", 2, "expected ')' to close the '(' at column 1 but found the end of the expression"),
        ("a b", 2, "found 'b' after a complete expression; is an operator (and, or, ==, +) or a comma missing?"),
        (
            "'a' 'b'",
            4,
            "found the text 'b' after a complete expression; is an operator (and, or, ==, +) or a comma missing?",
        ),
        ("a +", 3, "expected a value (a column, a literal or a function call) but found the end of the expression"),
        ("1 < 2 < 3", 6, "comparisons cannot be chained: write 'a < b and b < c', or use parentheses"),
        ("a = 1", 2, "'=' is not an operator here: use '==' to compare values"),
        ("a && b", 2, "'&&' is not an operator here: use 'and' to combine conditions"),
        ("a || b", 2, "'||' is not an operator here: use 'or' to combine conditions (and concat() to join text)"),
        ("!a", 0, "'!' is not an operator here: use 'not' to negate a condition"),
        ("a <> 1", 2, "'<>' is not an operator here: use '!=' for 'not equal'"),
        ("a ** 2", 2, "'**' is not an operator here: there is no power operator"),
        ("x in 1", 5, "expected a list like [1, 2] after 'in' but found '1'"),
        (
            "x in [y]",
            6,
            "the items of an 'in' list must be literals (numbers, 'text', true, false, null); "
            "compare with == and 'or' for anything else",
        ),
        ("x in [1, 'a']", 5, "the items of an 'in' list must all be numbers, all text or all true/false"),
        ("x is 3", 5, "expected 'null' after 'is' but found '3'; compare values with == or !="),
        ("'abc", 0, "text starting here is not closed: add the closing '"),
        ("`abc", 0, "column name starting here is not closed: add the closing `"),
        ("``", 0, "empty column name ``"),
        ("[1, 2]", 0, "a list [...] is only allowed after 'in' or 'not in'"),
        ("a and", 5, "expected a value (a column, a literal or a function call) but found the end of the expression"),
        ("upper(a,)", 8, "expected a value (a column, a literal or a function call) but found ')'"),
        (
            "and",
            0,
            "expected a value but found the keyword 'and'; a column with this name must be written in backticks: `and`",
        ),
        ("1_000", 0, "'1_' is not a number; a column whose name starts with a digit must be written in backticks"),
        ("'a\\q'", 2, "unknown escape '\\q' in text; write '\\\\' for a backslash"),
        ("x @ 2", 2, "unexpected character '@'"),
    ],
)
def test_syntax_errors_say_what_and_where(text, position, message):
    err = parse_error(text)
    assert err.message == message
    assert err.position == position


@pytest.mark.parametrize(
    "text, position, message",
    [
        ("upper()", 0, "upper() takes 1 argument, not 0: upper(text)"),
        ("upper(a, b)", 0, "upper() takes 1 argument, not 2: upper(text)"),
        ("if(a, b)", 0, "if() takes 3 arguments, not 2: if(condition, a, b)"),
        ("concat()", 0, "concat() takes at least 1 argument, not 0: concat(a, b, ...)"),
        ("round(x, 1, 2)", 0, "round() takes 1 to 2 arguments, not 3: round(number, digits)"),
        (
            "x > 1 and round(x, y) > 1",
            19,
            "the second argument of round() must be a whole number written in the expression: round(number, digits)",
        ),
        (
            "round(x, 1.5)",
            9,
            "the second argument of round() must be a whole number written in the expression: round(number, digits)",
        ),
        ("contains(a, b)", 12, "the second argument of contains() must be text in quotes: contains(text, 'part')"),
        (
            "matches(zip, '(')",
            13,
            "the second argument of matches() is not a valid regular expression (RE2 syntax): missing ): (",
        ),
        ("substr(a, 0)", 10, "the second argument of substr() must be at least 1"),
        ("substr(a, 1, -1)", 13, "the third argument of substr() must be 0 or more"),
        ("replace(a, '', 'x')", 11, "the second argument of replace() must not be empty"),
        ("today(1)", 0, "today() takes 0 arguments, not 1: today()"),
    ],
)
def test_function_arguments_are_checked_at_parse_time(text, position, message):
    err = parse_error(text)
    assert err.message == message
    assert err.position == position


def test_keywords_are_case_insensitive_and_functions_too():
    frame = chunk(a=(["1", None], TEXT))
    assert ev("a IS NOT NULL AND TRUE", frame) == [True, False]
    assert ev("Upper(a) Is Null Or NULL", frame) == [None, True]


def test_condition_mode_refuses_what_cannot_be_true_or_false():
    with pytest.raises(ExpressionError) as info:
        parse("amount + 1", condition=True)
    assert info.value.message == (
        "this must be a condition (true or false for each row), but it gives values; compare it, e.g. `... > 0`"
    )
    with pytest.raises(ExpressionError, match="but it gives text"):
        parse("upper(town)", condition=True)
    for ok in ("flag", "a > 1", "if(a > 1, b, false)", "coalesce(flag, false)", "not flag", "null"):
        parse(ok, condition=True)


def test_string_literals_quote_styles_and_escapes():
    frame = chunk(a=["x"])
    assert ev("'it''s'", frame) == ["it's"]
    assert ev('"say ""hi"""', frame) == ['say "hi"']
    assert ev(r"'tab\there\\ \'q\''", frame) == ["tab\there\\ 'q'"]
    assert ev("'Åsa – 日本'", frame) == ["Åsa – 日本"]


def test_number_literals():
    frame = chunk(a=["x"])
    assert ev("1e3", frame) == [1000.0]
    assert ev(".5 + 1", frame) == [1.5]
    assert ev("-2 * -3", frame) == [6]
    assert ev("10 - 2 - 3", frame) == [5]  # left-associative
    assert ev("2 + 3 * 4", frame) == [14]  # precedence
    assert ev("(2 + 3) * 4", frame) == [20]
    assert ev("99999999999999999999 > 1", frame) == [True]  # too big for an integer: a decimal


def test_unicode_and_backticked_column_names():
    frame = chunk(**{"Pay Date": ["2020-07-01"], "año": ["5"], "a`b": ["q"], "Café": ["x"]})
    assert ev("year(`Pay Date`)", frame) == [2020]
    assert ev("año + 1", frame) == [6.0]
    assert ev("`a``b`", frame) == ["q"]
    assert ev("Café == 'x'", frame) == [True]


# -- evaluation: shape ---------------------------------------------------------------------------


def test_result_is_arrow_backed_and_aligned_with_the_chunk_index():
    frame = chunk(lines=[10, 20, 30], a=(["1", "2", "3"], TEXT))
    result = parse("a").evaluate(frame)
    assert list(result.index) == [10, 20, 30]
    assert isinstance(result.dtype, pd.ArrowDtype)


@pytest.mark.parametrize(
    "text, dtype, value",
    [
        ("'portal'", TEXT, "portal"),
        ("2024", INTEGER, 2024),
        ("1.5", NUMBER, 1.5),
        ("true", BOOLEAN, True),
        ("null", TEXT, None),
        ("today()", DATE, dt.date.today),  # called when the test runs: collection may be before midnight
    ],
)
def test_literal_results_fill_the_whole_chunk(text, dtype, value):
    frame = chunk(lines=[5, 6, 7], a=["x", "y", "z"])
    result = parse(text).evaluate(frame)
    assert result.dtype == dtype
    assert values(result) == [value() if callable(value) else value] * 3
    assert list(result.index) == [5, 6, 7]


def test_empty_chunks_keep_sensible_dtypes():
    empty = chunk(amount=([], TEXT), d=([], DATE), n=([], INTEGER))
    cases = {
        "'x'": TEXT,
        "amount * 2": NUMBER,
        "year(d)": INTEGER,
        "n + 1": INTEGER,
        "amount > 1": BOOLEAN,
        "concat(amount, n)": TEXT,
        "d + 1": DATE,
        "null": TEXT,
    }
    for text, dtype in cases.items():
        result = parse(text).evaluate(empty)
        assert len(result) == 0 and result.dtype == dtype, text
    assert parse("amount > 1").mask(empty).tolist() == []


def test_unknown_column_names_the_nearest_one_and_where_it_was_written():
    frame = chunk(amount=["1"], town=["x"])
    err = eval_error("town == 'x' and amout > 0", frame)
    assert err.message == "unknown column 'amout'; did you mean 'amount'?"
    assert err.position == 16
    assert eval_error("Town == 'x'", frame).message == "unknown column 'Town'; did you mean 'town'?"
    assert eval_error("zzz", frame).message == "unknown column 'zzz'"


def test_numpy_and_object_columns_are_accepted():
    frame = pd.DataFrame({"i": np.array([1, 2, 3]), "f": [1.5, np.nan, 3.0], "s": ["a", None, "c"]}, index=[2, 3, 4])
    assert ev("i * 2", frame) == [2, 4, 6]
    assert ev("f is null", frame) == [False, True, False]
    assert ev("concat(s, i)", frame) == ["a1", "2", "c3"]


def test_a_subexpression_written_twice_gives_the_same_values():
    frame = chunk(d=(["2021-08-01", "2021-02-01", None], TEXT))
    assert ev("if(month(d) >= 7, year(d) + 1, year(d))", frame) == [2022, 2021, None]


# -- null semantics ------------------------------------------------------------------------------


def test_arithmetic_and_comparison_with_null_give_null():
    frame = chunk(a=([1, None], INTEGER))
    assert ev("a + 1", frame) == [2, None]
    assert ev("a + null", frame) == [None, None]
    assert ev("a > 0", frame) == [True, None]
    assert ev("a == null", frame) == [None, None]
    assert ev("a != null", frame) == [None, None]


def test_and_or_not_use_three_valued_logic():
    t, f, n = True, False, None
    frame = chunk(p=([t, t, t, f, f, f, n, n, n], BOOLEAN), q=([t, f, n, t, f, n, t, f, n], BOOLEAN))
    assert ev("p and q", frame) == [t, f, n, f, f, f, n, f, n]
    assert ev("p or q", frame) == [t, t, t, t, f, n, t, n, n]
    assert ev("not p", frame) == [f, f, f, t, t, t, n, n, n]


def test_if_with_null_condition_gives_the_else_value():
    frame = chunk(c=([True, False, None], BOOLEAN))
    assert ev("if(c, 'yes', 'no')", frame) == ["yes", "no", "no"]
    assert ev("if(c, 1, null)", frame) == [1, None, None]


def test_is_null_and_is_not_null():
    frame = chunk(a=(["x", None, ""], TEXT), n=([1.0, None, float("nan")], NUMBER))
    assert ev("a is null", frame) == [False, True, False]
    assert ev("a is not null", frame) == [True, False, True]
    assert ev("n is null", frame) == [False, True, True]


def test_mask_is_true_only_where_the_condition_is_true():
    frame = chunk(a=([5, -1, None], INTEGER))
    assert parse("a >= 0").mask(frame).tolist() == [True, False, False]
    assert parse("null").mask(frame).tolist() == [False, False, False]
    with pytest.raises(ExpressionError, match="must be a condition .* but it gives a number"):
        parse("a").mask(frame)


# -- in ------------------------------------------------------------------------------------------


def test_in_and_not_in():
    frame = chunk(town=(["Hartford", "Avon", None], TEXT), n=([1, 4, None], INTEGER))
    assert ev("town in ['Hartford', 'New Haven']", frame) == [True, False, None]
    assert ev("town not in ['Hartford', 'New Haven']", frame) == [False, True, None]
    assert ev("n in [1, 2, 3]", frame) == [True, False, None]
    assert ev("n in [1.0, 2.5]", frame) == [True, False, None]
    assert ev("n in [-1, 4,]", frame) == [False, True, None]


def test_in_with_null_in_the_list_follows_sql():
    frame = chunk(n=([1, 4, None], INTEGER))
    assert ev("n in [1, null]", frame) == [True, None, None]
    assert ev("n not in [1, null]", frame) == [False, None, None]
    assert ev("n in [null]", frame) == [None, None, None]


def test_in_converts_between_text_numbers_and_dates():
    frame = chunk(code=(["01", "2", None], TEXT), d=([dt.date(2020, 1, 1), dt.date(2021, 1, 1), None], DATE))
    assert ev("code in [1, 3]", frame) == [True, False, None]
    assert ev("d in ['2020-01-01']", frame) == [True, False, None]
    assert ev("'a' in ['a', 'b']", frame) == [True, True, True]


# -- types: text, numbers, dates -----------------------------------------------------------------


def test_text_compared_with_a_number_compares_numerically():
    frame = chunk(amount=(["10", " 9.5 ", None, ""], TEXT))
    assert ev("amount > 9", frame) == [True, True, None, None]
    assert ev("amount == 10", frame) == [True, False, None, None]
    assert ev("amount > '9'", frame) == [False, False, None, False]  # text with text: as text


def test_text_that_is_not_a_number_fails_naming_the_value_and_its_line():
    frame = chunk(lines=[7, 8, 9], amount=(["10", "1,234", "n/a"], TEXT))
    err = eval_error("amount >= 0", frame)
    assert err.message == (
        "column 'amount' holds '1,234' (line 8), which is not a number; convert the column "
        "with `cast` first (its rejects keep such rows), or compare it with text ('0')"
    )
    assert err.position == 0
    err = eval_error("amount + 1", frame)
    assert err.message.endswith("; to join text, use concat(a, b)")
    err = eval_error("n > 'abc'", chunk(n=([1], INTEGER)))
    assert err.message == "the text 'abc' is not a number, so it cannot be compared with or used as one"
    assert err.position == 4


def test_text_numbers_are_always_decimals_so_chunks_agree_on_the_type():
    assert parse("a * 2").evaluate(chunk(a=["1", "2"])).dtype == NUMBER
    assert parse("a * 2").evaluate(chunk(a=["1.5", "2"])).dtype == NUMBER


def test_mismatched_types_are_errors_that_name_both_sides():
    frame = chunk(flag=([True], BOOLEAN), n=([1], INTEGER), t=(["x"], TEXT))
    assert eval_error("flag == 1", frame).message == "cannot compare column 'flag' (true/false) with 1 (a number)"
    assert eval_error("t and flag", frame).message.startswith("column 't' is text, not true/false")
    assert eval_error("if(flag, t, n)", frame).message == (
        "if() mixes a number and text; use to_text() or to_number() so that all its values have one type"
    )
    assert eval_error("-flag", frame).message == "column 'flag' is true/false, not a number"


def test_arithmetic():
    frame = chunk(a=([7, -7, 5, None], INTEGER), b=([2, 2, 0, 1], INTEGER), x=([1.5, 2.0, 3.0, 4.0], NUMBER))
    assert ev("a + b", frame) == [9, -5, 5, None]
    assert ev("a - b * 2", frame) == [3, -11, 5, None]
    assert ev("a / b", frame) == [3.5, -3.5, None, None]  # true division; / 0 is null
    assert ev("a % b", frame) == [1, -1, None, None]  # sign of the dividend; % 0 is null
    assert ev("a + x", frame) == [8.5, -5.0, 8.0, None]
    assert ev("-a", frame) == [-7, 7, -5, None]
    assert parse("a + b").evaluate(frame).dtype == INTEGER
    assert parse("a / b").evaluate(frame).dtype == NUMBER


def test_integer_overflow_is_an_error_not_a_wrong_number():
    err = eval_error("a * 9223372036854775807", chunk(a=([2], INTEGER)))
    assert err.message.startswith("cannot compute 'a * 9223372036854775807': overflow")


def test_dates_compare_with_iso_text_and_do_day_arithmetic():
    d = ([dt.date(2020, 6, 30), dt.date(2020, 7, 1), None], DATE)
    frame = chunk(d=d, e=([dt.date(2020, 6, 1)] * 3, DATE))
    assert ev("d >= '2020-07-01'", frame) == [False, True, None]
    assert ev("d + 1", frame) == [dt.date(2020, 7, 1), dt.date(2020, 7, 2), None]
    assert ev("d - 30", frame) == [dt.date(2020, 5, 31), dt.date(2020, 6, 1), None]
    assert ev("d - e", frame) == [29, 30, None]
    assert ev("d - '2020-06-29'", frame) == [1, 2, None]
    assert ev("7 + e", frame)[0] == dt.date(2020, 6, 8)
    assert eval_error("d * 2", frame).message.startswith("cannot use '*' with a date and a number")


def test_datetimes_compare_with_text_and_subtract_to_days():
    ts = [dt.datetime(2020, 1, 1, 12), dt.datetime(2020, 1, 3, 0), None]
    frame = chunk(t=(ts, DATETIME), d=([dt.date(2020, 1, 2)] * 3, DATE))
    assert ev("t > '2020-01-02T00:00:00'", frame) == [False, True, None]
    assert ev("t > d", frame) == [False, True, None]
    assert ev("t - to_datetime('2020-01-01')", frame) == [0.5, 2.0, None]
    assert ev("t + 1", frame)[0] == dt.datetime(2020, 1, 2, 12)
    assert ev("t + 0.5", frame)[1] == dt.datetime(2020, 1, 3, 12)


def test_timezone_aware_columns_use_local_time():
    ny = datetime_dtype("America/New_York")
    # 02:00 UTC on Jan 1 is 21:00 on Dec 31 in New York
    stamps = pd.Series(pd.to_datetime(["2020-01-01 02:00:00"]).tz_localize("UTC")).astype(ny)
    frame = pd.DataFrame({"t": stamps.values}, index=[2]).astype({"t": ny})
    assert ev("day(t)", frame) == [31]
    assert ev("hour(t)", frame) == [21]
    assert ev("to_text(t)", frame) == ["2019-12-31T21:00:00"]
    assert ev("t > '2019-12-31 20:00'", frame) == [True]


# -- functions -----------------------------------------------------------------------------------


def test_text_functions():
    frame = chunk(s=(["  Héllo wörld ", None], TEXT))
    assert ev("upper(s)", frame) == ["  HÉLLO WÖRLD ", None]
    assert ev("lower(s)", frame) == ["  héllo wörld ", None]
    assert ev("title(trim(s))", frame) == ["Héllo Wörld", None]
    assert ev("trim(s)", frame) == ["Héllo wörld", None]
    assert ev("ltrim(s)", frame) == ["Héllo wörld ", None]
    assert ev("rtrim(s)", frame) == ["  Héllo wörld", None]
    assert ev("length(s)", frame) == [14, None]
    assert ev("length('日本')", frame) == [2, 2]
    assert ev("upper(12)", frame) == ["12", "12"]


def test_concat_writes_values_as_text_and_null_as_empty():
    frame = chunk(
        a=(["x", None], TEXT),
        n=([1, None], INTEGER),
        f=([2.5, 3.0], NUMBER),
        d=([dt.date(2020, 1, 2), None], DATE),
        b=([True, None], BOOLEAN),
    )
    assert ev("concat(a, '-', n, '-', f, '-', d, '-', b)", frame) == ["x-1-2.5-2020-01-02-true", "--3--"]
    assert ev("concat(a)", frame) == ["x", ""]


def test_coalesce_and_nullif():
    frame = chunk(a=([None, 2, None], INTEGER), b=([1.5, 9.0, None], NUMBER), t=(["", "x", None], TEXT))
    assert ev("coalesce(a, b, 0)", frame) == [1.5, 2.0, 0.0]
    assert ev("coalesce(a, 0)", frame) == [0, 2, 0]
    assert ev("coalesce(t, 'none')", frame) == ["", "x", "none"]
    assert ev("nullif(t, '')", frame) == [None, "x", None]
    assert ev("coalesce(nullif(t, ''), 'none')", frame) == ["none", "x", "none"]
    assert eval_error("coalesce(t, 0)", frame).message.startswith("coalesce() mixes a number and text")


def test_if():
    frame = chunk(n=([5, -3, None], INTEGER))
    assert ev("if(n > 0, 'credit', 'debit')", frame) == ["credit", "debit", "debit"]
    assert ev("if(n > 0, n, 0.5)", frame) == [5.0, 0.5, 0.5]
    assert ev("if(n > 0, null, null)", frame) == [None, None, None]
    err = eval_error("if(n, 1, 2)", frame)
    assert err.message.startswith("column 'n' is a number, not true/false")


def test_date_parts_on_dates_datetimes_and_iso_text():
    frame = chunk(
        d=([dt.date(2021, 8, 15), None], DATE),
        t=([dt.datetime(2021, 2, 3, 4, 5, 6), None], DATETIME),
        s=(["2019-11-30", "2019-11-30T23:59:59Z"], TEXT),
        z=(["2019-11-30T23:59:59Z", "2019-11-30T10:30:00+02:00"], TEXT),
    )
    assert ev("year(d)", frame) == [2021, None]
    assert ev("month(d)", frame) == [8, None]
    assert ev("day(d)", frame) == [15, None]
    assert ev("quarter(d)", frame) == [3, None]
    assert ev("weekday(d)", frame) == [7, None]  # a Sunday
    assert ev("year(t) * 100 + month(t)", frame) == [202102, None]
    assert ev("hour(t) * 100 + minute(t)", frame) == [405, None]
    assert ev("day(s)", frame) == [30, 30]  # the date as written, not moved to another zone
    assert ev("hour(z)", frame) == [23, 8]  # a time with an offset is read in UTC
    assert ev("minute(z)", frame) == [59, 30]


def test_date_of_text_that_is_not_a_date_fails_naming_the_value():
    frame = chunk(lines=[4, 5], s=(["2020-01-01", "01/02/2020"], TEXT))
    assert eval_error("year(s)", frame).message == (
        "column 's' holds '01/02/2020' (line 5), which is not a date (expected YYYY-MM-DD); "
        "convert the column with `cast` and its `formats` first"
    )
    bad_day = chunk(lines=[4, 5], s=(["2020-01-01T10:00", "2020-02-30T10:00"], TEXT))
    assert "holds '2020-02-30' (line 5)" in eval_error("year(s)", bad_day).message


def test_number_functions():
    frame = chunk(x=([2.5, -2.5, 1.234, None], NUMBER), n=([15, -25, 7, None], INTEGER))
    assert ev("round(x)", frame) == [3.0, -3.0, 1.0, None]  # half away from zero
    assert ev("round(x, 2)", frame) == [2.5, -2.5, 1.23, None]
    assert ev("round(n, -1)", frame) == [20, -30, 10, None]
    assert ev("abs(n)", frame) == [15, 25, 7, None]
    assert ev("floor(x)", frame) == [2.0, -3.0, 1.0, None]
    assert ev("ceil(x)", frame) == [3.0, -2.0, 2.0, None]
    assert ev("round('2.25', 1)", frame)[0] == 2.3


def test_matching_functions():
    frame = chunk(s=(["Acme Inc", "inc. ltd", None], TEXT), z=(["06103", "6103", "06103-1234"], TEXT))
    assert ev("contains(s, 'Inc')", frame) == [True, False, None]
    assert ev("contains(lower(s), 'inc')", frame) == [True, True, None]
    assert ev("startswith(s, 'Acme')", frame) == [True, False, None]
    assert ev("endswith(s, 'ltd')", frame) == [False, True, None]
    assert ev("matches(z, '^\\\\d{5}$')", frame) == [True, False, False]
    assert ev("matches(z, '^[0-9]{5}(-[0-9]{4})?$')", frame) == [True, False, True]


def test_substr_and_replace():
    frame = chunk(s=(["Hartford", "日本語テキスト", None], TEXT))
    assert ev("substr(s, 2, 3)", frame) == ["art", "本語テ", None]
    assert ev("substr(s, 5)", frame) == ["ford", "キスト", None]
    assert ev("replace(s, 'r', 'R')", frame) == ["HaRtfoRd", "日本語テキスト", None]


def test_conversions():
    frame = chunk(
        s=(["12.5", " 3 ", None], TEXT),
        n=([1, 2, None], INTEGER),
        t=(["2020-01-02", "2020-01-02T03:04:05", None], TEXT),
    )
    assert ev("to_number(s) * 2", frame) == [25.0, 6.0, None]
    assert ev("to_text(n)", frame) == ["1", "2", None]
    assert ev("to_date(t)", frame) == [dt.date(2020, 1, 2), dt.date(2020, 1, 2), None]
    assert ev("to_datetime(t)", frame) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-02 03:04:05"), None]
    assert ev("to_text(to_datetime(t))", frame) == ["2020-01-02T00:00:00", "2020-01-02T03:04:05", None]


def test_today_is_fixed_when_the_expression_is_parsed():
    frame = chunk(d=([dt.date.today() - dt.timedelta(days=3), dt.date(2000, 1, 1)], DATE))
    assert ev("d >= today() - 7", frame) == [True, False]


def test_the_function_list_holds_at_least_the_documented_functions():
    required = {
        "upper",
        "lower",
        "trim",
        "length",
        "concat",
        "coalesce",
        "year",
        "month",
        "day",
        "round",
        "abs",
        "contains",
        "startswith",
        "endswith",
        "matches",
        "if",
    }
    assert required <= set(FUNCTIONS)
    for name, fn in FUNCTIONS.items():
        assert fn.signature.startswith(name + "("), name


# -- edge cases ----------------------------------------------------------------------------------


def test_expression_error_can_be_built_with_or_without_a_position():
    assert str(ExpressionError("bad", 4)) == "at column 5: bad"
    err = ExpressionError("bad")
    assert str(err) == "bad" and err.position is None and err.message == "bad"


def test_null_compared_with_null_is_null_and_empty_lists():
    frame = chunk(n=([1, None], INTEGER))
    assert ev("null == null", frame) == [None, None]
    assert ev("n in []", frame) == [False, False]
    assert ev("n not in []", frame) == [True, True]


def test_an_in_list_of_text_meeting_a_number_column_must_hold_numbers():
    frame = chunk(n=([1, 2], INTEGER))
    assert ev("n in ['1', ' 3']", frame) == [True, False]
    err = eval_error("n in ['1', 'b']", frame)
    assert err.message == (
        "the list ['1', 'b'] holds 'b', which is not a number, but column 'n' is a "
        "number: write the list as numbers, like [1, 2]"
    )
    assert err.position == 11


def test_a_text_literal_that_is_not_a_date_is_named():
    frame = chunk(d=([dt.date(2020, 1, 1)], DATE))
    err = eval_error("d == '2020-02-30'", frame)
    assert err.message == "the text '2020-02-30' is not a date (expected YYYY-MM-DD)"
    assert err.position == 5


def test_absurdly_deep_nesting_is_an_error_not_a_crash():
    for text in ("(" * 5000 + "1" + ")" * 5000, "-" * 5000 + "1", " + ".join(["a"] * 5000)):
        assert parse_error(text).message == ("the expression is nested too deeply; split it into several derive steps")


def test_parsing_and_evaluating_never_use_pythons_eval(monkeypatch):
    import builtins

    def refuse(*args, **kwargs):
        raise AssertionError("eval/exec/compile was called")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, refuse)
    frame = chunk(a=(["1", "2"], TEXT))
    expr = parse("if(to_number(a) > 1, concat('big ', a), upper('small'))")
    assert values(expr.evaluate(frame)) == ["SMALL", "big 2"]


def test_the_markdown_reference_lists_every_function():
    from pipeline.expressions.reference import markdown

    text = markdown()
    for fn in FUNCTIONS.values():
        assert f"| `{fn.signature}` | {fn.doc} |" in text


def test_every_function_has_a_kernel_and_parsing_needs_no_arrow():
    import subprocess
    import sys

    from pipeline.expressions.kernels import KERNELS

    assert set(KERNELS) == set(FUNCTIONS) - {"today"}  # today() becomes a literal when parsed
    code = (
        "import sys\nfrom pipeline.expressions import parse\n"
        "parse('if(month(d) >= 7, year(d) + 1, round(to_number(x), 2)) > 0 and t in [1, 2]', condition=True)\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr

"""The fixed list of functions an expression may call, and what each needs from its arguments.

Nothing outside this table can be called. Each entry says how many arguments it takes, which
of them must be literals (patterns, digits: pyarrow.compute takes them as options, once per
column), what it returns (for checks at parse time) and how it computes, with pyarrow.compute
over the whole column. Arguments are checked when the expression is parsed, so a route with
`round(x, digits)` or `matches(zip, '(')` is refused before it runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.expressions import coerce
from pipeline.expressions.errors import ExpressionError
from pipeline.expressions.nodes import Call, Literal, Node

ORDINAL = {0: "first", 1: "second", 2: "third"}


@dataclass(frozen=True)
class Function:
    signature: str  # as shown in messages and docs: "round(x, digits)"
    returns: str  # "text", "integer", "number", "boolean", "date", "datetime", "any"
    impl: Callable | None
    min_args: int = 1
    max_args: int | None = 1  # None: any number
    literal: dict = field(default_factory=dict)  # argument index -> "text", "integer" or "regex"
    doc: str = ""


def _text_fn(kernel):
    def impl(ev, call, args):
        return kernel(coerce.to_text(args[0], ev.subject(call.args[0])))

    return impl


def _length(ev, call, args):
    return pc.utf8_length(coerce.to_text(args[0], ev.subject(call.args[0]))).cast(pa.int64())


def _concat(ev, call, args):
    texts = [coerce.to_text(a, ev.subject(n)) for a, n in zip(args, call.args)]
    return pc.binary_join_element_wise(*texts, "", null_handling="replace", null_replacement="")


def _coalesce(ev, call, args):
    values = coerce.common(list(args), [ev.subject(n) for n in call.args], "coalesce()")
    return values[0] if len(values) == 1 else pc.coalesce(*values)


def _nullif(ev, call, args):
    a, b = coerce.comparable(args[0], ev.subject(call.args[0]), args[1], ev.subject(call.args[1]))
    same = pc.fill_null(pc.equal(a, b), False)
    return pc.if_else(same, pa.scalar(None, args[0].type), args[0])


def _if(ev, call, args):
    cond = pc.fill_null(coerce.to_boolean(args[0], ev.subject(call.args[0])), False)
    a, b = coerce.common([args[1], args[2]], [ev.subject(n) for n in call.args[1:]], "if()")
    if coerce.category(a) == "null" and coerce.category(b) == "null":
        return a
    return pc.if_else(cond, a, b)


def _date_part(kernel):
    def impl(ev, call, args):
        value = args[0]
        if coerce.category(value) != "datetime":
            value = coerce.to_date(value, ev.subject(call.args[0]))
        return kernel(value).cast(pa.int64())

    return impl


def _time_part(kernel):
    def impl(ev, call, args):
        value = args[0]
        tz = value.type.tz if coerce.category(value) == "datetime" else None
        return kernel(coerce.to_datetime(value, ev.subject(call.args[0]), tz)).cast(pa.int64())

    return impl


def _weekday(value):
    return pc.day_of_week(value, count_from_zero=False, week_start=1)


def _number_fn(kernel):
    def impl(ev, call, args):
        return kernel(coerce.to_number(args[0], ev.subject(call.args[0])))

    return impl


def _round(ev, call, args):
    digits = call.args[1].value if len(call.args) > 1 else 0
    value = coerce.to_number(args[0], ev.subject(call.args[0]))
    return pc.round(value, ndigits=digits, round_mode="half_towards_infinity")


def _match(kernel):
    def impl(ev, call, args):
        return kernel(coerce.to_text(args[0], ev.subject(call.args[0])), call.args[1].value)

    return impl


def _substr(ev, call, args):
    start = call.args[1].value - 1
    stop = start + call.args[2].value if len(call.args) > 2 else None
    return pc.utf8_slice_codeunits(coerce.to_text(args[0], ev.subject(call.args[0])), start, stop)


def _replace(ev, call, args):
    text = coerce.to_text(args[0], ev.subject(call.args[0]))
    return pc.replace_substring(text, pattern=call.args[1].value, replacement=call.args[2].value)


def _to_datetime(ev, call, args):
    value = args[0]
    tz = value.type.tz if coerce.category(value) == "datetime" else None
    return coerce.to_datetime(value, ev.subject(call.args[0]), tz)


def _convert(fn):
    return lambda ev, call, args: fn(args[0], ev.subject(call.args[0]))


FUNCTIONS: dict[str, Function] = {
    "upper": Function("upper(text)", "text", _text_fn(pc.utf8_upper), doc="text in capitals"),
    "lower": Function("lower(text)", "text", _text_fn(pc.utf8_lower), doc="text in small letters"),
    "title": Function("title(text)", "text", _text_fn(pc.utf8_title), doc="Each Word Capitalised"),
    "trim": Function("trim(text)", "text", _text_fn(pc.utf8_trim_whitespace), doc="without spaces at either end"),
    "ltrim": Function("ltrim(text)", "text", _text_fn(pc.utf8_ltrim_whitespace), doc="without leading spaces"),
    "rtrim": Function("rtrim(text)", "text", _text_fn(pc.utf8_rtrim_whitespace), doc="without trailing spaces"),
    "length": Function("length(text)", "integer", _length, doc="number of characters"),
    "concat": Function("concat(a, b, ...)", "text", _concat, 1, None, doc="values joined as text; null counts as ''"),
    "substr": Function(
        "substr(text, start, length)",
        "text",
        _substr,
        2,
        3,
        {1: "integer", 2: "integer"},
        doc="part of the text; start counts from 1; without length, to the end",
    ),
    "replace": Function(
        "replace(text, 'old', 'new')",
        "text",
        _replace,
        3,
        3,
        {1: "text", 2: "text"},
        doc="every 'old' replaced by 'new'",
    ),
    "contains": Function(
        "contains(text, 'part')",
        "boolean",
        _match(lambda t, p: pc.match_substring(t, p)),
        2,
        2,
        {1: "text"},
        doc="whether the text holds 'part'",
    ),
    "startswith": Function(
        "startswith(text, 'start')",
        "boolean",
        _match(lambda t, p: pc.starts_with(t, p)),
        2,
        2,
        {1: "text"},
        doc="whether the text starts with 'start'",
    ),
    "endswith": Function(
        "endswith(text, 'end')",
        "boolean",
        _match(lambda t, p: pc.ends_with(t, p)),
        2,
        2,
        {1: "text"},
        doc="whether the text ends with 'end'",
    ),
    "matches": Function(
        "matches(text, 'regex')",
        "boolean",
        _match(lambda t, p: pc.match_substring_regex(t, p)),
        2,
        2,
        {1: "regex"},
        doc="whether the regular expression (RE2) matches anywhere; anchor with ^ and $",
    ),
    "coalesce": Function("coalesce(a, b, ...)", "any", _coalesce, 1, None, doc="the first value that is not null"),
    "nullif": Function("nullif(a, b)", "any", _nullif, 2, 2, doc="null where a equals b, else a"),
    "if": Function("if(condition, a, b)", "any", _if, 3, 3, doc="a where the condition is true, else b"),
    "year": Function("year(date)", "integer", _date_part(pc.year), doc="the year"),
    "quarter": Function("quarter(date)", "integer", _date_part(pc.quarter), doc="1 to 4"),
    "month": Function("month(date)", "integer", _date_part(pc.month), doc="1 to 12"),
    "day": Function("day(date)", "integer", _date_part(pc.day), doc="day of the month"),
    "weekday": Function("weekday(date)", "integer", _date_part(_weekday), doc="1 (Monday) to 7 (Sunday)"),
    "hour": Function("hour(datetime)", "integer", _time_part(pc.hour), doc="0 to 23"),
    "minute": Function("minute(datetime)", "integer", _time_part(pc.minute), doc="0 to 59"),
    "round": Function(
        "round(number, digits)",
        "number",
        _round,
        1,
        2,
        {1: "integer"},
        doc="rounded half away from zero; digits defaults to 0 and may be negative",
    ),
    "abs": Function("abs(number)", "number", _number_fn(pc.abs_checked), doc="the number without its sign"),
    "floor": Function("floor(number)", "number", _number_fn(pc.floor), doc="rounded down"),
    "ceil": Function("ceil(number)", "number", _number_fn(pc.ceil), doc="rounded up"),
    "to_number": Function(
        "to_number(value)",
        "number",
        _convert(coerce.to_number),
        doc="text read as a number (an error names a value that is not one)",
    ),
    "to_text": Function("to_text(value)", "text", _convert(coerce.to_text), doc="the value written as text"),
    "to_date": Function(
        "to_date(value)", "date", _convert(coerce.to_date), doc="ISO text (YYYY-MM-DD...) or a date and time, as a date"
    ),
    "to_datetime": Function("to_datetime(value)", "datetime", _to_datetime, doc="ISO text as a date and time"),
    "today": Function(
        "today()", "date", None, 0, 0, doc="the date the route was planned (one value for the whole run)"
    ),
}


def check_call(call: Call) -> Node:
    """Check a call's arguments against the table (count, literals, regex syntax)."""
    fn = FUNCTIONS[call.name]
    n = len(call.args)
    if n < fn.min_args or (fn.max_args is not None and n > fn.max_args):
        if fn.max_args is None:
            wanted = f"at least {fn.min_args} argument{'s' if fn.min_args != 1 else ''}"
        elif fn.min_args == fn.max_args:
            wanted = f"{fn.min_args} argument{'s' if fn.min_args != 1 else ''}"
        else:
            wanted = f"{fn.min_args} to {fn.max_args} arguments"
        raise ExpressionError(f"{call.name}() takes {wanted}, not {n}: {fn.signature}", call.pos)
    for index, need in fn.literal.items():
        if index >= n:
            continue
        arg = call.args[index]
        _check_literal(call, fn, index, arg, need)
    if call.name == "today":
        return Literal(call.pos, call.end, dt.date.today(), "date")
    return call


def _check_literal(call: Call, fn: Function, index: int, arg: Node, need: str) -> None:
    which = f"the {ORDINAL.get(index, f'#{index + 1}')} argument of {call.name}()"
    if need == "integer":
        if not (isinstance(arg, Literal) and arg.kind == "integer"):
            raise ExpressionError(f"{which} must be a whole number written in the expression: {fn.signature}", arg.pos)
        if call.name == "substr" and (arg.value < 1 if index == 1 else arg.value < 0):
            raise ExpressionError(f"{which} must be {'at least 1' if index == 1 else '0 or more'}", arg.pos)
        return
    if not (isinstance(arg, Literal) and arg.kind == "text"):
        raise ExpressionError(f"{which} must be text in quotes: {fn.signature}", arg.pos)
    if call.name == "replace" and index == 1 and arg.value == "":
        raise ExpressionError(f"{which} must not be empty", arg.pos)
    if need == "regex":
        try:
            pc.match_substring_regex(pa.array([""]), pattern=arg.value)
        except pa.ArrowInvalid as exc:
            reason = str(exc).replace("Invalid regular expression: ", "")
            raise ExpressionError(
                f"{which} is not a valid regular expression (RE2 syntax): {reason}", arg.pos
            ) from None

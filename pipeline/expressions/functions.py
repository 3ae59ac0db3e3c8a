"""The fixed list of functions an expression may call, and what each needs from its arguments.

Nothing outside this table can be called. Each entry says how many arguments it takes, which
of them must be literals (patterns, digits: pyarrow.compute takes them as options, once per
column) and what it returns (for checks at parse time); how each computes is in kernels.py, so
that parsing needs no Arrow. Arguments are checked when the expression is parsed, so a route with
`round(x, digits)` or `matches(zip, '(')` is refused before it runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pipeline.expressions.errors import ExpressionError
from pipeline.expressions.nodes import Call, Literal, Node

ORDINAL = {0: "first", 1: "second", 2: "third"}


@dataclass(frozen=True)
class Function:
    signature: str  # as shown in messages and docs: "round(x, digits)"
    returns: str  # "text", "integer", "number", "boolean", "date", "datetime", "any"
    min_args: int = 1
    max_args: int | None = 1  # None: any number
    literal: dict = field(default_factory=dict)  # argument index -> "text", "integer" or "regex"
    doc: str = ""


FUNCTIONS: dict[str, Function] = {
    "upper": Function("upper(text)", "text", doc="text in capitals"),
    "lower": Function("lower(text)", "text", doc="text in small letters"),
    "title": Function("title(text)", "text", doc="Each Word Capitalised"),
    "trim": Function("trim(text)", "text", doc="without spaces at either end"),
    "ltrim": Function("ltrim(text)", "text", doc="without leading spaces"),
    "rtrim": Function("rtrim(text)", "text", doc="without trailing spaces"),
    "length": Function("length(text)", "integer", doc="number of characters"),
    "concat": Function("concat(a, b, ...)", "text", 1, None, doc="values joined as text; null counts as ''"),
    "substr": Function(
        "substr(text, start, length)",
        "text",
        2,
        3,
        {1: "integer", 2: "integer"},
        doc="part of the text; start counts from 1; without length, to the end",
    ),
    "replace": Function(
        "replace(text, 'old', 'new')",
        "text",
        3,
        3,
        {1: "text", 2: "text"},
        doc="every 'old' replaced by 'new'",
    ),
    "contains": Function(
        "contains(text, 'part')",
        "boolean",
        2,
        2,
        {1: "text"},
        doc="whether the text holds 'part'",
    ),
    "startswith": Function(
        "startswith(text, 'start')",
        "boolean",
        2,
        2,
        {1: "text"},
        doc="whether the text starts with 'start'",
    ),
    "endswith": Function(
        "endswith(text, 'end')",
        "boolean",
        2,
        2,
        {1: "text"},
        doc="whether the text ends with 'end'",
    ),
    "matches": Function(
        "matches(text, 'regex')",
        "boolean",
        2,
        2,
        {1: "regex"},
        doc="whether the regular expression (RE2) matches anywhere; anchor with ^ and $",
    ),
    "coalesce": Function("coalesce(a, b, ...)", "any", 1, None, doc="the first value that is not null"),
    "nullif": Function("nullif(a, b)", "any", 2, 2, doc="null where a equals b, else a"),
    "if": Function("if(condition, a, b)", "any", 3, 3, doc="a where the condition is true, else b"),
    "year": Function("year(date)", "integer", doc="the year"),
    "quarter": Function("quarter(date)", "integer", doc="1 to 4"),
    "month": Function("month(date)", "integer", doc="1 to 12"),
    "day": Function("day(date)", "integer", doc="day of the month"),
    "weekday": Function("weekday(date)", "integer", doc="1 (Monday) to 7 (Sunday)"),
    "hour": Function("hour(datetime)", "integer", doc="0 to 23"),
    "minute": Function("minute(datetime)", "integer", doc="0 to 59"),
    "round": Function(
        "round(number, digits)",
        "number",
        1,
        2,
        {1: "integer"},
        doc="rounded half away from zero; digits defaults to 0 and may be negative",
    ),
    "abs": Function("abs(number)", "number", doc="the number without its sign"),
    "floor": Function("floor(number)", "number", doc="rounded down"),
    "ceil": Function("ceil(number)", "number", doc="rounded up"),
    "to_number": Function(
        "to_number(value)",
        "number",
        doc="text read as a number (an error names a value that is not one)",
    ),
    "to_text": Function("to_text(value)", "text", doc="the value written as text"),
    "to_date": Function("to_date(value)", "date", doc="ISO text (YYYY-MM-DD...) or a date and time, as a date"),
    "to_datetime": Function("to_datetime(value)", "datetime", doc="ISO text as a date and time"),
    "today": Function("today()", "date", 0, 0, doc="the date the route was planned (one value for the whole run)"),
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
        import pyarrow as pa  # only a route with matches() pays for Arrow to check its pattern (RE2)
        import pyarrow.compute as pc

        try:
            pc.match_substring_regex(pa.array([""]), pattern=arg.value)
        except pa.ArrowInvalid as exc:
            reason = str(exc).replace("Invalid regular expression: ", "")
            raise ExpressionError(
                f"{which} is not a valid regular expression (RE2 syntax): {reason}", arg.pos
            ) from None

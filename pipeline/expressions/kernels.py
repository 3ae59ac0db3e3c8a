"""How each function of functions.FUNCTIONS computes, with pyarrow.compute over the whole column.

Kept apart from the table so that parsing an expression (`route validate`) needs no Arrow: this
module is imported by the evaluator, with the first chunk. `today()` has no kernel: the parser
replaces it with a literal.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.expressions import coerce


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


# name -> kernel(evaluator, call, argument values), one per entry of functions.FUNCTIONS but today
KERNELS: dict[str, Callable] = {
    "upper": _text_fn(pc.utf8_upper),
    "lower": _text_fn(pc.utf8_lower),
    "title": _text_fn(pc.utf8_title),
    "trim": _text_fn(pc.utf8_trim_whitespace),
    "ltrim": _text_fn(pc.utf8_ltrim_whitespace),
    "rtrim": _text_fn(pc.utf8_rtrim_whitespace),
    "length": _length,
    "concat": _concat,
    "substr": _substr,
    "replace": _replace,
    "contains": _match(lambda t, p: pc.match_substring(t, p)),
    "startswith": _match(lambda t, p: pc.starts_with(t, p)),
    "endswith": _match(lambda t, p: pc.ends_with(t, p)),
    "matches": _match(lambda t, p: pc.match_substring_regex(t, p)),
    "coalesce": _coalesce,
    "nullif": _nullif,
    "if": _if,
    "year": _date_part(pc.year),
    "quarter": _date_part(pc.quarter),
    "month": _date_part(pc.month),
    "day": _date_part(pc.day),
    "weekday": _date_part(_weekday),
    "hour": _time_part(pc.hour),
    "minute": _time_part(pc.minute),
    "round": _round,
    "abs": _number_fn(pc.abs_checked),
    "floor": _number_fn(pc.floor),
    "ceil": _number_fn(pc.ceil),
    "to_number": _convert(coerce.to_number),
    "to_text": _convert(coerce.to_text),
    "to_date": _convert(coerce.to_date),
    "to_datetime": _to_datetime,
}

"""Value rules: fill (defaults for nulls) and replace (a mapping of exact values).

Both keep every column's type: a literal in the route is converted to the column's type when the
first chunk shows what that is, and a literal that does not fit fails the run. Text columns take
quoted text only, because YAML turns 06103 into the number 3139, yes into true and 1.10 into 1.1
before we see them: quoting is the only way to say what was meant.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.plugins import rule
from transforms import column_use
from transforms.columns import require

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

# pandas and Arrow are imported by the functions that touch a chunk: binding fill and replace,
# which `route validate` does, needs neither.

_TRUE = {"true", "yes", "y", "t", "1"}
_FALSE = {"false", "no", "n", "f", "0"}
_INTEGER = re.compile(r"[+-]?\d+")
_NOUN = {
    "text": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "date": "a date",
    "datetime": "a datetime",
}


@dataclass(frozen=True)
class Defaults:
    values: dict[str, object]


@dataclass(frozen=True)
class Replacements:
    mappings: dict[str, dict]


def _show(value) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    return "true" if value is True else "false" if value is False else str(value)


def literal(value, data_type: pa.DataType, column: str, rule_name: str, what: str) -> pa.Scalar:
    """`value` from the route as a scalar of `data_type`; a RunFailed saying how to write it if not."""
    import pandas as pd
    import pyarrow as pa

    from pipeline.basics import dtypes

    kind = dtypes.route_type_of(pd.ArrowDtype(data_type))

    def refuse(hint: str = "") -> RunFailed:
        return RunFailed(
            f"{rule_name}: {what} {_show(value)} for {kind} column '{column}' is not {_NOUN.get(kind, kind)}{hint}"
        )

    if value is None:
        return pa.scalar(None, data_type)
    try:
        if kind == "text":
            if not isinstance(value, str):
                raise refuse("; write it in quotes in the route (YAML reads 06103 as a number and yes as true)")
            converted = value
        elif kind == "integer":
            if isinstance(value, bool):
                raise refuse()
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
                value = int(value.strip())
            if not isinstance(value, int):
                raise refuse()
            converted = value
        elif kind == "number":
            if isinstance(value, bool):
                raise refuse()
            converted = float(value)
        elif kind == "boolean":
            text = str(value).strip().lower() if isinstance(value, (str, int)) else value
            if isinstance(value, bool):
                converted = value
            elif text in _TRUE or text in _FALSE:
                converted = text in _TRUE
            else:
                raise refuse()
        elif kind == "date":
            if isinstance(value, dt.datetime) or not isinstance(value, (dt.date, str)):
                raise refuse(" (write it as YYYY-MM-DD)")
            converted = value if isinstance(value, dt.date) else dt.date.fromisoformat(value.strip())
        elif kind == "datetime":
            if isinstance(value, str):
                value = dt.datetime.fromisoformat(value.strip())
            elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                value = dt.datetime.combine(value, dt.time())
            if not isinstance(value, dt.datetime):
                raise refuse(" (write it as YYYY-MM-DDTHH:MM:SS)")
            converted = _instant(value, data_type) if data_type.tz else value
            if value.tzinfo is not None and not data_type.tz:
                raise refuse(": the column has no time zone, so the value must not have a UTC offset")
        else:
            return pa.scalar(value).cast(data_type)
        return pa.scalar(converted, data_type)
    except (ValueError, TypeError, OverflowError, pa.ArrowException):
        raise refuse(" (write it as YYYY-MM-DD)" if kind == "date" else "") from None


def _instant(value: dt.datetime, data_type: pa.TimestampType) -> dt.datetime:
    """A naive value in a zoned column is local time there; an aware one keeps its instant."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if value.tzinfo is None:
        local = pc.assume_timezone(
            pa.array([value], pa.timestamp("us")), timezone=data_type.tz, ambiguous="earliest", nonexistent="raise"
        )
        return local[0].as_py()
    return value


def _bind_fill(options, ctx=None) -> Defaults:
    if isinstance(options, Defaults):
        return options
    if not isinstance(options, dict) or not options:
        raise OptionError("expected a mapping of columns to default values, e.g. {status: unknown}")
    for column, value in options.items():
        if value is None or isinstance(value, (dict, list)):
            raise OptionError(
                f"the default for '{column}' must be one value (text, a number, true/false "
                f"or a date), not {'null' if value is None else 'a list or mapping'}",
                path=(column,),
            )
    return Defaults({str(k): v for k, v in options.items()})


# Values are left to bind, which says what is wrong in words (YAML dates are not JSON types).
_LITERAL = {"description": "one value of the column's type: text, a number, true/false, a date"}


@rule(
    {"type": "object", "minProperties": 1, "additionalProperties": _LITERAL},
    bind=_bind_fill,
    columns=column_use.keys_are_columns,
)
def fill(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Put a default where a column is null, so a target that requires a value gets one.

    The default is a literal of the column's type: quoted text for text columns, a number for
    numeric ones, true/false, a date as YYYY-MM-DD, a datetime as YYYY-MM-DDTHH:MM:SS.

    ```yaml
    - fill: {department: "UNASSIGNED", overtime: 0, active: true, end_date: 2099-12-31}
    ```
    """
    import pyarrow.compute as pc

    from pipeline.basics import dtypes

    plan = _bind_fill(options, ctx)
    require(chunk, plan.values, "fill")
    out = chunk.copy(deep=False)
    for column, value in plan.values.items():
        data = _data(chunk[column])
        default = literal(value, data.type, column, "fill", "the default")
        out[column] = dtypes.series(pc.fill_null(data, default), chunk[column])
    return out


def _bind_replace(options, ctx=None) -> Replacements:
    if isinstance(options, Replacements):
        return options
    if not isinstance(options, dict) or not options:
        raise OptionError("expected a mapping of columns to {old: new} mappings")
    for column, mapping in options.items():
        if not isinstance(mapping, dict) or not mapping:
            raise OptionError(
                f"expected a mapping of old values to new ones for '{column}', e.g. {{N/A: null, Hartfrod: Hartford}}",
                path=(column,),
            )
        for old, new in mapping.items():
            if isinstance(new, (dict, list)):
                raise OptionError(
                    f"the new value for {_show(old)} must be one value or null, not a list or mapping",
                    path=(column, old),
                )
    return Replacements({str(k): dict(v) for k, v in options.items()})


@rule(
    {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": {"type": "object", "minProperties": 1, "additionalProperties": _LITERAL},
    },
    bind=_bind_replace,
    columns=column_use.keys_are_columns,
)
def replace(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Replace whole values by others: fix known misspellings, map codes, turn placeholders to null.

    Matching is exact (case and spaces count; `trim` first). A new value of null (`~` or `null`)
    makes the value null; an old value of null replaces nulls, as `fill` does. Old and new values
    are literals of the column's type, and the column keeps its type.

    ```yaml
    - replace:
        town: {Hartfrod: Hartford, "W Hartford": West Hartford}
        salary: {-1: null}
        status: {"N/A": null, "?": null}
    ```
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.basics import dtypes

    plan = _bind_replace(options, ctx)
    require(chunk, plan.mappings, "replace")
    out = chunk.copy(deep=False)
    for column, mapping in plan.mappings.items():
        data = _data(chunk[column])
        olds, news, fill_value = [], [], None
        for old, new in mapping.items():
            new_value = literal(new, data.type, column, "replace", "the new value")
            if old is None:
                fill_value = new_value
                continue
            olds.append(literal(old, data.type, column, "replace", "the value"))
            news.append(new_value)
        result = data
        if olds:
            keys = pa.array([s.as_py() for s in olds], data.type)
            idx = pc.index_in(data, value_set=keys)
            result = pc.if_else(pc.is_null(idx), data, pc.take(pa.array([s.as_py() for s in news], data.type), idx))
        if fill_value is not None and fill_value.is_valid:  # the nulls that were there, not new ones
            result = pc.if_else(pc.is_null(data), fill_value, result)
        out[column] = dtypes.series(result, chunk[column])
    return out


def _data(column: pd.Series):
    """A column's Arrow data, with columns of untyped nulls read as text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.basics import dtypes

    data = dtypes.contiguous(dtypes.arrow(column))
    if pa.types.is_null(data.type):
        data = pc.cast(data, pa.string())
    return data

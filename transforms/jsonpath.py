"""Pulling values out of a column that holds JSON documents, with JMESPath expressions.

Parsing JSON and evaluating JMESPath are Python work, so they are done once per distinct document
in the chunk (orjson to parse, expressions compiled once at plan time) and the results are mapped
back onto the rows with pc.index_in: repeated documents cost nothing, unique ones about 30,000 a
second (small documents, three expressions, on the 2-core bench machine).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import jmespath as jmespath_lib
import orjson
from jmespath.exceptions import JMESPathError, ParseError

from pipeline.basics.errors import OptionError
from pipeline.basics.plugins import rule
from transforms import column_use
from transforms._frames import arrow_series, mask_of, need_columns, text_of, with_columns

if TYPE_CHECKING:
    import pandas as pd

# pandas, Arrow and numpy are imported by the functions that touch a chunk, so that binding these
# rules (`route validate`) loads none of them.

NAME = {"type": "string", "minLength": 1}
TYPES = ("text", "json", "integer", "number", "boolean")  # what an extracted value may be read as


class _NotConvertible(ValueError):
    pass


def _convert(value, kind: str):
    """A JMESPath result as a value of the output type (None stays None)."""
    if value is None:
        return None
    if kind == "json":
        return orjson.dumps(value).decode()
    if kind == "text":
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        raise _NotConvertible("is not a boolean")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _NotConvertible(f"is not a{'n integer' if kind == 'integer' else ' number'}")
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError:
        raise _NotConvertible(f"is not a{'n integer' if kind == 'integer' else ' number'}") from None
    if kind == "number":
        return float(number)
    if isinstance(number, float) and not (math.isfinite(number) and number.is_integer()):
        raise _NotConvertible("is not an integer")
    return int(number)


def _bind(options, ctx):
    compiled = {}
    for name, spec in options["extract"].items():
        expression, kind = (spec, "text") if isinstance(spec, str) else (spec["expression"], spec.get("type", "text"))
        try:
            compiled[name] = (jmespath_lib.compile(expression), kind, expression)
        except ParseError as exc:
            raise OptionError(
                f"invalid JMESPath expression {expression!r}: {exc.msg} at position {exc.lex_position}",
                ("extract", name),
            ) from None
    return {**options, "compiled": compiled, "invalid": options.get("invalid", "reject") or "null"}


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["column", "extract"],
        "properties": {
            "column": NAME,
            "extract": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["expression"],
                            "properties": {
                                "expression": {"type": "string", "minLength": 1},
                                "type": {"enum": list(TYPES)},
                            },
                        },
                    ]
                },
            },
            "invalid": {"enum": ["reject", "null", None]},
        },
    },  # YAML reads a bare null as None
    bind=_bind,
    columns=column_use.jmespath,
)
def jmespath(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Extract values from a column holding JSON: each entry of `extract` names a new column and
    gives a JMESPath expression (and optionally its `type`: text (default; numbers, objects and
    lists as JSON text), json (every value as JSON text), integer, number, boolean). A result that
    does not convert to its type rejects the row, as does a value that is not JSON unless
    `invalid: null`. An expression that finds nothing gives null.

    Example:

        - jmespath:
            column: payload
            extract:
              inspector: inspection.inspector.name
              violations: {expression: "length(inspection.violations)", type: integer}
              codes: "inspection.violations[*].code"
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    column = options["column"]
    need_columns(chunk, [column], "jmespath")
    text = text_of(chunk[column])
    distinct = pc.unique(text.drop_null()) if len(chunk) else pa.array([], pa.string())
    documents = distinct.to_pylist()
    compiled = options["compiled"]
    results = {name: [None] * len(documents) for name in compiled}
    failures: list[str | None] = [None] * len(documents)
    for k, document in enumerate(documents):
        try:
            data = orjson.loads(document)
        except orjson.JSONDecodeError as exc:
            failures[k] = (
                f"is not valid JSON (line {exc.lineno}, column {exc.colno})" if options["invalid"] == "reject" else None
            )
            continue
        for name, (expression, kind, written) in compiled.items():
            try:
                results[name][k] = _convert(expression.search(data), kind)
            except JMESPathError as exc:
                failures[k] = failures[k] or f"{written!r} failed: {exc}"
            except _NotConvertible as exc:
                failures[k] = failures[k] or f"the result of {written!r} {exc}"
    where = pc.index_in(text, value_set=distinct)
    if any(failures):
        failed = pa.array([f is not None for f in failures], pa.bool_())
        reasons = pa.array(failures, pa.string())
        bad = mask_of(pc.take(failed, where))
        if bad.any():
            reason = pd.Series(pc.take(reasons, where).to_pylist(), index=chunk.index)
            ctx.reject(chunk[bad], reason[bad], column=column)
            chunk, where = chunk[~bad], pc.filter(where, pa.array(~bad))
    arrow_types = {"integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}  # text and json: string
    added = {}
    for name, (_, kind, _) in compiled.items():
        values = pa.array(results[name], type=arrow_types.get(kind, pa.string()))
        added[name] = arrow_series(pc.take(values, where), chunk.index, name)
    return with_columns(chunk, added)

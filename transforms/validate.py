"""Validation rules: rows that break a rule are rejected with the reason, the column and the value,
and the others go on. Nulls pass every check except `require` (a missing value is `require`'s
business), so that each problem is reported once, by the rule that names it.

require, pattern, range and one_of are single pyarrow.compute expressions over the column; unique
remembers 24 bytes per distinct key across the stream (transforms._keys); schema validates with
jsonschema, once per distinct value of each column when the schema allows it (see `schema`).
"""

# Longer than 400 lines because it holds the six validation rules, which share their reject
# handling.

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pipeline.basics.columnflow import uses
from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.plugins import rule
from transforms._frames import as_list, mask_of, need_columns, quote_list, text_of, to_arrow
from transforms._keys import SeenKeys, first_positions, key_hashes

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

# pandas, Arrow and numpy are imported by the functions that touch a chunk, so that binding these
# rules (`route validate`) loads none of them.

NAME = {"type": "string", "minLength": 1}
NAMES = {"oneOf": [NAME, {"type": "array", "items": NAME, "minItems": 1, "uniqueItems": True}]}


def reject_where(chunk: pd.DataFrame, bad: np.ndarray, reason, column: str | None, ctx, value=None) -> pd.DataFrame:
    """Reject the rows where `bad` holds (reason may be a Series over the chunk); return the rest."""
    import pandas as pd

    if not bad.any():
        return chunk
    rows = chunk[bad]
    if isinstance(reason, pd.Series):
        reason = reason[bad]
    if isinstance(value, pd.Series):
        value = value[bad]
    ctx.reject(rows, reason, column=column, value=value)
    return chunk[~bad]


@rule(
    {"type": "object", "additionalProperties": False, "required": ["columns"], "properties": {"columns": NAMES}},
    shorthand="columns",
    columns=uses(reads=["columns"]),
)
def require(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Reject rows where any of `columns` is missing: null, or text that is empty or only spaces.

    Example:

        - require: [parcel_id, sale_date]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = as_list(options["columns"])
    need_columns(chunk, columns, "require")
    for name in columns:
        data = to_arrow(chunk[name])
        missing = pc.is_null(data)
        if pa.types.is_string(data.type) or pa.types.is_large_string(data.type):
            missing = pc.or_kleene(missing, pc.equal(pc.utf8_trim_whitespace(data), ""))
        chunk = reject_where(chunk, mask_of(missing), "a value is required", name, ctx)
    return chunk


@rule(
    {"type": "object", "additionalProperties": False, "required": ["columns"], "properties": {"columns": NAMES}},
    scope="stream",
    shorthand="columns",
    columns=uses(reads=["columns"]),
)
def unique(chunks, options, ctx):
    """Reject every row whose key (the `columns` together) already appeared earlier in the stream,
    naming the line where it first appeared; the first occurrence goes on. Memory: 24 bytes per
    distinct key, whatever the number of rows.

    Example:

        - unique: [permit_number]
    """
    import numpy as np
    import pandas as pd

    columns = as_list(options["columns"])
    seen, label, yielded, last = SeenKeys(payload=True), ", ".join(columns), False, None
    for chunk in chunks:
        need_columns(chunk, columns, "unique")
        last = chunk
        h1, h2 = key_hashes(chunk, columns)
        n = len(chunk)
        lines = (
            chunk.index.to_numpy()
            if pd.api.types.is_integer_dtype(chunk.index.dtype)
            else np.full(n, -1, dtype=np.int64)
        )
        first = first_positions(h1, h2)
        found, earlier = seen.lookup(h1, h2)
        new = (first == np.arange(n)) & ~found
        seen.add(h1[new], h2[new], lines[new])
        bad = ~new
        if bad.any():
            first_line = np.where(found, earlier, lines[first])
            reason = pd.Series(
                np.where(first_line >= 0, "duplicate of line " + first_line.astype(str), "duplicate of an earlier row"),
                index=chunk.index,
            )
            value = _key_text(chunk, columns)
            chunk = reject_where(chunk, bad, reason, label, ctx, value=value)
        if len(chunk):
            yielded = True
            yield chunk
    if last is not None and not yielded:
        yield last.iloc[0:0]


def _key_text(chunk: pd.DataFrame, columns: list[str]) -> pd.Series:
    """The key of each row as text, for the rejects file (parts joined with " | ")."""
    import pandas as pd
    import pyarrow.compute as pc

    parts = [pc.fill_null(text_of(chunk[c]), "") for c in columns]
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, " | ")
    return pd.Series(pd.arrays.ArrowExtensionArray(joined), index=chunk.index)


def _bind_pattern(options, ctx):
    import pyarrow as pa
    import pyarrow.compute as pc

    pattern = options["pattern"]
    full = f"^(?:{pattern})$" if options.get("full", True) else pattern
    full = ("(?i)" if options.get("ignore_case") else "") + full
    try:
        pc.match_substring_regex(pa.array(["x"]), full)
    except pa.ArrowInvalid as exc:
        raise OptionError(
            f"invalid regular expression {pattern!r}: {str(exc).replace('Invalid regular expression: ', '')}",
            ("pattern",),
        ) from None
    return {**options, "columns": as_list(options["columns"]), "regex": full}


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["columns", "pattern"],
        "properties": {
            "columns": NAMES,
            "pattern": {"type": "string", "minLength": 1},
            "full": {"type": "boolean"},
            "ignore_case": {"type": "boolean"},
        },
    },
    bind=_bind_pattern,
    columns=uses(reads=["columns"]),
)
def pattern(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Reject rows whose value does not match a regular expression (RE2 syntax). The whole value
    must match unless `full: false`, which looks for the pattern anywhere in it.

    Example:

        - pattern: {columns: [zip], pattern: '\\d{5}(-\\d{4})?'}
    """
    import pyarrow.compute as pc

    need_columns(chunk, options["columns"], "pattern")
    for name in options["columns"]:
        text = text_of(chunk[name])
        bad = mask_of(pc.invert(pc.match_substring_regex(text, options["regex"])))
        chunk = reject_where(chunk, bad, f"does not match the pattern {options['pattern']!r}", name, ctx)
    return chunk


def _bind_range(options, ctx):
    if "min" not in options and "max" not in options:
        raise OptionError("give `min`, `max` or both", ())
    kinds = {type(options[k]) in (int, float) for k in ("min", "max") if k in options}
    if len(kinds) > 1:
        raise OptionError("`min` and `max` must both be numbers or both be text (dates)", ("max",))
    return options


def _bound(value, data_type: pa.DataType, column: str):
    import pyarrow as pa

    if isinstance(value, (int, float)):
        return pa.scalar(float(value))
    try:
        if pa.types.is_date(data_type):
            return pa.scalar(dt.date.fromisoformat(value), type=data_type)
        if pa.types.is_timestamp(data_type):
            return pa.scalar(dt.datetime.fromisoformat(value)).cast(data_type)
    except ValueError:
        raise RunFailed(f"range: {value!r} is not a date for column {column!r} (use ISO 8601: 2024-01-31)") from None
    return pa.scalar(str(value))


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["column"],
        "properties": {
            "column": NAME,
            "min": {"type": ["number", "string"]},
            "max": {"type": ["number", "string"]},
            "exclusive": {"type": "boolean"},
        },
    },
    bind=_bind_range,
    columns=uses(reads=["column"]),
)
def range(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:  # noqa: A001 - the rule's name
    """Reject rows whose value lies outside `min`..`max` (inclusive, or not with `exclusive: true`).
    Number bounds compare numerically (text holding numbers is read as numbers, and text that is not
    a number is rejected); date bounds (ISO text) compare with date and datetime columns, and with
    text as text.

    Example:

        - range: {column: sale_amount, min: 0, max: 100000000}
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    column = options["column"]
    need_columns(chunk, [column], "range")
    data = to_arrow(chunk[column])
    numeric = any(isinstance(options.get(k), (int, float)) for k in ("min", "max"))
    if numeric and not (
        pa.types.is_integer(data.type) or pa.types.is_floating(data.type) or pa.types.is_decimal(data.type)
    ):
        text = pc.utf8_trim_whitespace(text_of(chunk[column]))
        ok = pc.match_substring_regex(text, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
        data = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), pa.float64())
        not_number = mask_of(pc.and_kleene(pc.invert(ok), pc.is_valid(text)))
        if not_number.any():
            chunk = reject_where(chunk, not_number, "is not a number", column, ctx)
            data = pc.filter(data, pa.array(~not_number))
    elif numeric:
        data = pc.cast(data, pa.float64(), safe=False)  # integers beyond 2**53 compare as the nearest float
    exclusive = options.get("exclusive", False)
    for key, op, word in (
        ("min", pc.less_equal if exclusive else pc.less, "below the minimum"),
        ("max", pc.greater_equal if exclusive else pc.greater, "above the maximum"),
    ):
        if key not in options:
            continue
        bad = mask_of(op(data, _bound(options[key], data.type, column)))
        if bad.any():
            chunk = reject_where(
                chunk, bad, f"{word} {options[key]}" + (" (exclusive)" if exclusive else ""), column, ctx
            )
            data = pc.filter(data, pa.array(~bad))
    return chunk


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["column", "values"],
        "properties": {"column": NAME, "values": {"type": "array", "minItems": 1}, "ignore_case": {"type": "boolean"}},
    },
    columns=uses(reads=["column"]),
)
def one_of(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Reject rows whose value is not one of `values` (compared as text, or case-insensitively with
    `ignore_case: true`).

    Example:

        - one_of: {column: property_type, values: [Residential, Commercial, Vacant Land]}
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    column = options["column"]
    need_columns(chunk, [column], "one_of")
    allowed = [
        v if isinstance(v, str) else ("true" if v is True else "false" if v is False else str(v))
        for v in options["values"]
        if v is not None
    ]
    text = text_of(chunk[column])
    if options.get("ignore_case"):
        text, allowed = pc.utf8_lower(text), [v.lower() for v in allowed]
    bad = mask_of(pc.and_kleene(pc.invert(pc.is_in(text, value_set=pa.array(allowed, pa.string()))), pc.is_valid(text)))
    return reject_where(chunk, bad, f"is not one of {quote_list(options['values'])}", column, ctx)


# --- schema ---------------------------------------------------------------------------------

# Top-level keywords that constrain one property at a time: with only these, a row is valid when
# each of its values is, so each distinct value of a column is validated once.
_PER_COLUMN = {
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "examples",
    "default",
    "type",
    "properties",
    "required",
    "additionalProperties",
}


def _bind_schema(options, ctx):
    import json

    import jsonschema

    # `schema: file.json`, `schema: {schema: {...}}`, or the JSON Schema itself as the options.
    schema = options["schema"] if set(options) == {"schema"} else options
    if isinstance(schema, str):
        path = ctx.resolve_path(schema)
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise OptionError(f"schema file not found: {path}", ("schema",)) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise OptionError(f"{path} is not JSON: {exc}", ("schema",)) from None
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise OptionError(
            f"not a valid JSON Schema{' at ' + where if where else ''}: {exc.message}", ("schema",)
        ) from None
    checker = cls.FORMAT_CHECKER
    per_column = (
        isinstance(schema, dict)
        and set(schema) <= _PER_COLUMN
        and schema.get("type", "object") == "object"
        and isinstance(schema.get("additionalProperties", True), bool)
        and "$ref" not in json.dumps(schema)
    )
    columns = (
        {name: cls(sub, format_checker=checker) for name, sub in schema.get("properties", {}).items()}
        if per_column
        else {}
    )
    return {
        "validator": cls(schema, format_checker=checker),
        "per_column": per_column,
        "columns": columns,
        "required": list(schema.get("required", [])) if per_column else [],
        "closed": per_column and schema.get("additionalProperties") is False,
    }


def _json_ready(data: pa.ChunkedArray | pa.Array):
    """Arrow data as the values JSON would hold: dates and times as ISO text, decimals as floats."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_date(data.type):
        return pc.cast(data, pa.string())
    if pa.types.is_timestamp(data.type):
        return pc.strftime(data, "%Y-%m-%dT%H:%M:%S")
    if pa.types.is_decimal(data.type):
        return pc.cast(data, pa.float64())
    return data


def _message(error) -> str:
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


@rule(
    {"type": "object", "minProperties": 1, "properties": {"schema": {"type": ["object", "string"]}}},
    shorthand="schema",
    bind=_bind_schema,
    columns=uses(),
)
def schema(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Reject rows that do not satisfy a JSON Schema (written inline as the rule's options, or the
    path of a .json file), with jsonschema's message as the reason; `format` is checked. A row is the object of its non-null
    values, dates as ISO text. Cost: when the schema only uses `properties`, `required`, `type` and
    `additionalProperties` at the top, each distinct value of each column is validated once (fast
    for codes and categories; 200,000 rows a second even when every value differs); any other
    top-level keyword (allOf, if/then, dependentRequired, $ref...) validates every row in Python,
    about 20,000 rows a second.

    Example:

        - schema:
            type: object
            required: [parcel_id]
            properties:
              parcel_id: {type: string, pattern: "^[0-9]{3}-[0-9]{4}$"}
              sale_amount: {type: number, minimum: 0}
    """
    if options["per_column"]:
        return _schema_columns(chunk, options, ctx)
    return _schema_rows(chunk, options, ctx)


def _schema_columns(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    for name in options["required"]:
        missing = chunk[name].isna().to_numpy() if name in chunk.columns else np.ones(len(chunk), bool)
        chunk = reject_where(chunk, missing, f"{name!r} is a required property", name, ctx)
    for name, validator in options["columns"].items():
        if name not in chunk.columns or not len(chunk):
            continue
        data = _json_ready(to_arrow(chunk[name]))
        distinct = pc.unique(data.drop_null())
        bad_values, messages = [], []
        for value in distinct.to_pylist():
            error = _best(validator, value)
            if error is not None:
                bad_values.append(value)
                messages.append(f"{name}: {_message(error)}")
        if not bad_values:
            continue
        where = pc.index_in(data, value_set=pa.array(bad_values, type=distinct.type))
        bad = mask_of(pc.is_valid(where))
        reason = pd.Series(pc.take(pa.array(messages), pc.fill_null(where, 0)).to_pylist(), index=chunk.index)
        chunk = reject_where(chunk, bad, reason, name, ctx)
    if options["closed"]:
        for name in [c for c in chunk.columns if c not in options["columns"]]:
            extra = chunk[name].notna().to_numpy()
            chunk = reject_where(
                chunk, extra, f"Additional properties are not allowed ({name!r} was unexpected)", name, ctx
            )
    return chunk


def _best(validator, instance):
    import jsonschema

    return jsonschema.exceptions.best_match(validator.iter_errors(instance))


def _schema_rows(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    import pandas as pd

    if not len(chunk):
        return chunk
    names = [str(c) for c in chunk.columns]
    columns = [_json_ready(to_arrow(chunk[c])).to_pylist() for c in chunk.columns]
    validator = options["validator"]
    columns_hit, reasons = [], []
    for values in zip(*columns):
        row = {k: v for k, v in zip(names, values) if v is not None}
        error = _best(validator, row)
        if error is None:
            columns_hit.append(None)
            reasons.append(None)
            continue
        path = list(error.absolute_path)
        if not path and error.validator == "required":
            path = [p for p in error.validator_value if p not in row][:1]
        columns_hit.append(str(path[0]) if path else "")
        reasons.append(_message(error))
    hit = pd.Series(columns_hit, index=chunk.index, dtype=object)
    reason = pd.Series(reasons, index=chunk.index, dtype=object)
    for column in pd.unique(hit.dropna()):
        bad = (hit == column).to_numpy()
        chunk = reject_where(chunk, bad, reason, column or None, ctx)
        hit, reason = hit[~bad], reason[~bad]
    return chunk

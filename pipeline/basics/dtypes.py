"""The column types of the canonical table, as Arrow-backed pandas dtypes.

Every chunk between stages uses these dtypes, so that rules can hand columns to pyarrow.compute
without copies and deliveries serialise them the same way whatever the source. Text read from
files is TEXT until a `cast` (or a typed source) says otherwise: types are never guessed.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

TEXT = pd.ArrowDtype(pa.string())
INTEGER = pd.ArrowDtype(pa.int64())
NUMBER = pd.ArrowDtype(pa.float64())
BOOLEAN = pd.ArrowDtype(pa.bool_())
DATE = pd.ArrowDtype(pa.date32())
DATETIME = pd.ArrowDtype(pa.timestamp("us"))

ROUTE_TYPES = ("text", "integer", "number", "boolean", "date", "datetime")

BY_NAME = {"text": TEXT, "integer": INTEGER, "number": NUMBER, "boolean": BOOLEAN, "date": DATE, "datetime": DATETIME}


def datetime_dtype(timezone: str | None = None) -> pd.ArrowDtype:
    """A timestamp column; with a time zone it is a fixed instant, without it a floating one."""
    return pd.ArrowDtype(pa.timestamp("us", tz=timezone)) if timezone else DATETIME


def arrow(series: pd.Series) -> pa.ChunkedArray | pa.Array:
    """The Arrow data behind a column (zero-copy for Arrow-backed columns)."""
    if isinstance(series.dtype, pd.ArrowDtype):
        return series.array._pa_array  # noqa: SLF001 - the documented way to reach it without a copy
    return pa.array(series, from_pandas=True)


def contiguous(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One Arrow array: a lone chunk as it is (Arrow's combine_chunks copies even one chunk, and a
    pandas column always holds a ChunkedArray), several joined."""
    if isinstance(values, pa.ChunkedArray):
        return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    return values


def series(data: pa.Array | pa.ChunkedArray, like: pd.Series, name=None) -> pd.Series:
    """Wrap Arrow data as an Arrow-backed Series with `like`'s index."""
    return pd.Series(pd.arrays.ArrowExtensionArray(data), index=like.index, name=like.name if name is None else name)


def frame_from_arrow(table: pa.Table | pa.RecordBatch, index=None) -> pd.DataFrame:
    """An Arrow table as a DataFrame of Arrow-backed columns (no copies, no type guessing)."""
    df = table.to_pandas(types_mapper=pd.ArrowDtype, split_blocks=True, self_destruct=False)
    if index is not None:
        df.index = index
    return df


def arrow_type_name(t: pa.DataType) -> str:
    """The route type name of an Arrow type: text, integer, number, boolean, date, datetime."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "datetime"
    return str(t)


def route_type_of(dtype) -> str:
    """The route type name (text, integer, ...) of a pandas dtype, for messages and schemas."""
    if isinstance(dtype, pd.ArrowDtype):
        return arrow_type_name(dtype.pyarrow_dtype)
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_string_dtype(dtype) or dtype == object:
        return "text"
    return str(dtype)

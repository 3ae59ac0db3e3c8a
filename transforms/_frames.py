"""Helpers the rule modules share: finding columns, a text view of any column, bounded output.

Rules get chunks whose columns are normally Arrow-backed (pipeline.basics.dtypes), but a plugin upstream
may hand over numpy or object columns; these helpers accept both so that every rule behaves the
same on canonical and on odd input, without per-row Python for the canonical case.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from pipeline.basics.errors import RunFailed

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

# Each helper that touches a chunk imports pandas, Arrow or numpy itself, so that a rule module can
# use the light ones (as_list, need_columns, quote_list) while its options are bound, which
# `route validate` does without loading any of them.


def as_list(value) -> list:
    """An option that may be one name or a list of names, as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def need_columns(chunk: pd.DataFrame, names: Iterable[str], rule: str) -> None:
    """Fail with a message naming every column the rows lack, and the nearest existing names."""
    have = [str(c) for c in chunk.columns]
    missing = [n for n in names if n not in chunk.columns]
    if not missing:
        return
    hints = []
    for name in missing:
        near = difflib.get_close_matches(name, have, n=1)
        hints.append(f"'{name}'" + (f" (did you mean '{near[0]}'?)" if near else ""))
    raise RunFailed(f"{rule}: no column {', '.join(hints)} in the rows; the columns are: {', '.join(have) or '(none)'}")


def to_arrow(series: pd.Series) -> pa.ChunkedArray | pa.Array:
    """The column as Arrow data; object columns that mix types become their text form."""
    import pandas as pd
    import pyarrow as pa

    from pipeline.basics.dtypes import arrow

    if isinstance(series.dtype, pd.ArrowDtype):
        return arrow(series)
    try:
        return pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return pa.array(series.map(str, na_action="ignore"), type=pa.string(), from_pandas=True)


def text_of(series: pd.Series) -> pa.ChunkedArray | pa.Array:
    """The column as Arrow strings: text stays as it is, numbers and dates become their text form."""
    import pyarrow as pa
    import pyarrow.compute as pc

    data = to_arrow(series)
    if pa.types.is_string(data.type):
        return data
    if pa.types.is_large_string(data.type) or pa.types.is_null(data.type):
        return pc.cast(data, pa.string())
    try:
        return pc.cast(data, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array(series.map(str, na_action="ignore"), type=pa.string(), from_pandas=True)


def text_series(data, like: pd.Series, name=None) -> pd.Series:
    """Arrow strings as a TEXT column with `like`'s index."""
    import pandas as pd
    import pyarrow as pa

    from pipeline.basics.dtypes import TEXT

    if isinstance(data, pa.ChunkedArray) and data.num_chunks == 0:
        data = pa.array([], type=pa.string())
    out = pd.Series(pd.arrays.ArrowExtensionArray(data), index=like.index, name=like.name if name is None else name)
    return out if out.dtype == TEXT else out.astype(TEXT)


def arrow_series(data, index: pd.Index, name) -> pd.Series:
    """Any Arrow data as an Arrow-backed column with the given index."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(data, pa.ChunkedArray) and data.num_chunks == 0:
        data = pa.array([], type=data.type)
    return pd.Series(pd.arrays.ArrowExtensionArray(data), index=index, name=name)


def with_columns(chunk: pd.DataFrame, columns: dict) -> pd.DataFrame:
    """A new frame: `chunk` with `columns` replaced or appended (in the order given); input untouched."""
    out = chunk.copy(deep=False)
    for name, values in columns.items():
        out[name] = values
    out.attrs = dict(chunk.attrs)
    return out


def mask_of(data) -> pd.api.extensions.ExtensionArray:
    """An Arrow boolean result as a numpy bool array, null counted as False."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    filled = pc.fill_null(data, False)
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks() if filled.num_chunks else pa.array([], type=pa.bool_())
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool)


def bounded(frames: Iterable[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    """The same rows in frames of at most `rows` rows (bigger frames are sliced, none merged)."""
    rows = max(1, int(rows))
    for frame in frames:
        if len(frame) <= rows:
            yield frame
            continue
        for start in range(0, len(frame), rows):
            part = frame.iloc[start : start + rows]
            part.attrs = dict(frame.attrs)
            yield part


def chunk_rows(ctx) -> int:
    """The run's chunk size (what stream rules must not exceed)."""
    return max(1, int(ctx.run.chunk_rows))


def drop_rows(chunk: pd.DataFrame, bad) -> pd.DataFrame:
    """`chunk` without the rows where the numpy mask `bad` is True (attrs kept)."""
    if not bad.any():
        return chunk
    out = chunk[~bad]
    out.attrs = dict(chunk.attrs)
    return out


def quote_list(values: Sequence, limit: int = 8) -> str:
    """'a', 'b', 'c' (and N more) for messages."""
    shown = ", ".join(repr(v) for v in list(values)[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")

"""Arrow tables ready for text formats: ISO 8601 date-times, the same in every file delivery."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def to_arrow(chunk: pd.DataFrame) -> pa.Table:
    """A chunk as an Arrow table (zero-copy for the canonical Arrow-backed dtypes)."""
    return pa.Table.from_pandas(chunk, preserve_index=False)


def iso_timestamps(table: pa.Table) -> pa.Table:
    """Timestamps as ISO 8601 text (`2024-01-02T03:04:05.120000`, `...-05:00` when zoned).

    Arrow's own text form puts a space between date and time, which spreadsheets accept but
    ISO 8601 and Socrata's floating timestamps do not.
    """
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            text = pc.replace_substring(pc.cast(table.column(i), pa.string()), " ", "T", max_replacements=1)
            if field.type.tz:
                text = pc.replace_substring_regex(text, r"([+-]\d\d)(\d\d)$", r"\1:\2")
            table = table.set_column(i, field.name, text)
    return table

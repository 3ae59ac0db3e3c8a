"""The rejects file: every row a step refused, with why, so nothing is lost silently.

Rows are written as they are rejected to `<state>/rejects/<route>-<run id>.csv`, one line each:
the stage, the step, the target, the column, the offending value, the reason, the source file and
line (the chunk's index is the source line), and the whole row as JSON. The file is created on the
first reject only.

A run that writes nothing (a dry run, a preview) opens its sink inside `rejects_not_written()`:
the rows are then counted, and the first few are kept with why, for the summary to show, but no
file is written. (The executor builds the sink; the context tells it, so the engine needs no say.)
Every sink keeps those first few, so what a person is shown reads the same either way.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:  # imported where used: `route --help` must not wait for pandas
    import pandas as pd

FIELDS = ["stage", "step", "target", "column", "value", "reason", "source", "line", "row"]
FIRST = 5  # rejected rows a sink keeps in memory, to be shown where no file is written
_WRITTEN: ContextVar[bool] = ContextVar("route_rejects_written", default=True)


@contextmanager
def rejects_not_written() -> Iterator[None]:
    """Sinks made inside count rejected rows and keep the first few, and write no file."""
    token = _WRITTEN.set(False)
    try:
        yield
    finally:
        _WRITTEN.reset(token)


def _text(value) -> str:
    import pandas as pd

    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


class RejectSink:
    """Appends rejected rows to one CSV file; safe to call from several threads.

    `first` holds the first FIRST rejected rows (every field but the row itself); `to_file` is
    False for a sink made inside `rejects_not_written()`, which writes nothing."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.to_file = _WRITTEN.get()
        self.first: list[dict[str, str]] = []
        self.count = 0
        self._lock = threading.Lock()
        self._file = None
        self._writer = None

    def write(
        self,
        rows: pd.DataFrame,
        *,
        stage: str,
        step: str,
        target: str | None,
        reason,
        column: str | None = None,
        value=None,
        source: str | None = None,
    ) -> int:
        """Record `rows` (a frame whose index is the source line). `reason` and `value` may be
        a single value or a Series aligned with `rows`; `value` defaults to rows[column]."""
        n = len(rows)
        if n == 0:
            return 0
        reasons = _per_row(reason, rows)
        if value is None and column is not None and column in rows.columns:
            value = rows[column]
        values = _per_row(value, rows)
        lines = [_line(i) for i in rows.index]

        def fields(k: int) -> list[str]:  # every field of row k but the row itself
            return [
                stage,
                step,
                target or "",
                column or "",
                _text(values[k]),
                _text(reasons[k]),
                source or "",
                lines[k],
            ]

        records = _row_json(rows) if self.to_file else []
        with self._lock:
            for k in range(min(n, FIRST - len(self.first))):
                self.first.append(dict(zip(FIELDS, fields(k))))
            self.count += n
            if not self.to_file:
                return n
            if self._writer is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "w", newline="", encoding="utf-8")
                self._writer = csv.writer(self._file)
                self._writer.writerow(FIELDS)
            for k in range(n):
                self._writer.writerow([*fields(k), records[k]])
            self._file.flush()
        return n

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    @property
    def written(self) -> bool:
        """Is there a rejects file to point at?"""
        return self.count > 0 and self.to_file


def _per_row(value, rows: pd.DataFrame) -> list:
    import pandas as pd

    if isinstance(value, pd.Series):
        return value.reindex(rows.index).tolist() if not value.index.equals(rows.index) else value.tolist()
    return [value] * len(rows)


def _line(index_value) -> str:
    return "" if index_value is None else str(index_value)


def _row_json(rows: pd.DataFrame) -> list[str]:
    """Each row as a JSON object (dates ISO), encoded for the whole frame at once."""
    import polars as pl
    import pyarrow as pa

    from pipeline.basics.textformat import iso_timestamps

    try:
        frame = rows.copy(deep=False)
        frame.columns = [str(c) for c in frame.columns]
        table = iso_timestamps(pa.Table.from_pandas(frame, preserve_index=False))
        buf = io.BytesIO()
        pl.from_arrow(table, rechunk=False).write_ndjson(buf)
        lines = buf.getvalue().decode("utf-8").splitlines()
        if len(lines) == len(rows):
            return lines
    except Exception:  # mixed object columns a plugin produced: fall back to one row at a time
        pass
    columns = [str(c) for c in rows.columns]
    data = [rows[c].astype(object).where(rows[c].notna(), None).tolist() for c in rows.columns]
    out = []
    for values in zip(*data) if data else [()] * len(rows):
        obj = {
            k: (v if isinstance(v, (str, int, float, bool)) else str(v))
            for k, v in zip(columns, values)
            if v is not None
        }
        out.append(orjson.dumps(obj).decode())
    return out

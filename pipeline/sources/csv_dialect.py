"""How a CSV file writes its fields (delimiter, quote, escape, comment, null values): one setting
for the head reader and for both record readers (csv_readers), kept apart from those so that
planning a route, which reads only the header, needs no Arrow."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from pipeline.basics.errors import RunFailed
from pipeline.sources.csv_stream import SENTINEL


@dataclass(frozen=True)
class Dialect:
    """How fields are written: the same settings for pyarrow and for Python's csv module."""

    delimiter: str = ","
    quote: str | None = '"'
    escape: str | None = None
    comment: str | None = None
    null_values: tuple[str, ...] = ()

    def python(self) -> dict:
        quoting = {"quotechar": self.quote} if self.quote else {"quoting": csv.QUOTE_NONE}
        return dict(
            delimiter=self.delimiter,
            escapechar=self.escape,
            doublequote=True,
            skipinitialspace=False,
            strict=False,
            **quoting,
        )

    def fields(self, text: str) -> list[str]:
        """The fields of one record's raw text (for rejected rows and headers)."""
        return next(csv.reader(io.StringIO(text, newline=""), **self.python()), [])

    def trailer(self, ncols: int) -> bytes:
        return (self.delimiter.join([SENTINEL] * ncols) + "\n").encode("utf-8")


def unterminated(shown: str, line: int) -> RunFailed:
    return RunFailed(
        f"{shown}: the record starting on line {line} opens a quoted field that is never "
        "closed, so the rest of the file would be read into it; look for a stray quote "
        "character there (or set quote: false if the file does not quote its fields)"
    )

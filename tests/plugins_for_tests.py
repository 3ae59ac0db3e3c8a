"""Real components used by the executor tests (referenced by dotted path from test routes)."""

from __future__ import annotations

import pandas as pd

from pipeline.dtypes import TEXT
from pipeline.errors import RunFailed
from pipeline.plugins import delivery, rule
from pipeline.deliveries.base import Delivery, DeliveryResult


@rule({"type": "object", "properties": {"at_line": {"type": "integer"}}, "additionalProperties": False})
def explode(chunk, options, ctx):
    """Fails with an unexpected error when it meets the given source line (a bug in a plugin)."""
    if options.get("at_line") in chunk.index:
        raise ZeroDivisionError("division by zero")
    return chunk


@rule({"type": "object", "additionalProperties": False}, scope="stream")
def count_chunks(chunks, options, ctx):
    """A stream rule: adds a column numbering the chunks it saw, proving it got the stream."""
    for n, chunk in enumerate(chunks, start=1):
        yield chunk.assign(chunk_no=pd.Series([str(n)] * len(chunk), index=chunk.index, dtype=TEXT))


@delivery({"type": "object", "properties": {"fail_on_close": {"type": "boolean"}}, "additionalProperties": False})
class Refusing(Delivery):
    """A delivery that accepts rows and then refuses to commit them, like a portal saying no."""

    def open(self, columns):
        self.rows = 0

    def write(self, chunk):
        self.rows += len(chunk)

    def close(self):
        raise RunFailed("the portal refused the commit (403): ask for publishing rights")

"""Real components used by the executor tests (referenced by dotted path from test routes)."""

from __future__ import annotations

import pandas as pd

from pipeline.basics.dtypes import TEXT
from pipeline.basics.errors import RunFailed
from pipeline.basics.plugins import delivery, rule, source
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


# -- components with the wrong shape: `route validate` reports them at the line that uses them ----


@rule({"type": "object"})
def two_args(chunk, options):
    """Forgot ctx: the planner reports the signature it expected."""
    return chunk


@rule({"type": "object"}, scope="stream")
def stream_one_arg(chunks):
    """A stream rule that takes only the stream."""
    yield from chunks


@source({"type": "object"})
class NoCtxSource:
    """Its constructor takes only the options."""

    def __init__(self, options):
        self.options = options

    def chunks(self):
        yield pd.DataFrame({"a": pd.Series(["1"], dtype=TEXT)})


@source({"type": "object"})
class NoChunksSource:
    """Has everything but chunks()."""

    def __init__(self, options, ctx):
        self.options = options

    def close(self):
        pass


@delivery({"type": "object"})
class HalfDelivery:
    """No abort(), and a write() that takes no chunk."""

    def __init__(self, options, ctx):
        self.options = options

    def open(self, columns):
        pass

    def write(self):
        pass

    def close(self):
        return DeliveryResult()


@rule({"type": "object", "additionalProperties": False})
def add_flag(chunk, options, ctx):
    """A rule that declares no columns (as an older plugin): it adds `flag`."""
    return chunk.assign(flag="y")

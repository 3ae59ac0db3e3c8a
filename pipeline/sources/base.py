"""The source contract: what the executor calls on a source, and a base class that provides the
optional parts.

The executor drives every source the same way, from its reader thread:

    s = SourceClass(options, ctx)       # options already validated against its schema (and bound);
                                        # raise OptionError for a bad combination of options
    for chunk in s.chunks():            # DataFrames of at most ctx.run.chunk_rows rows, every one
        ...                             # with the same columns and dtypes; the index is the source
                                        # line (or record number); chunk.attrs["source"] may name
                                        # the file or table the rows came from
    s.close()                           # always, also when reading stops early (--limit, failure)
    s.columns()                         # when chunks() yielded nothing: the column names, or None
    s.plan_columns                      # may the planner call columns() before the run, to check
                                        # the columns every rule reads? "local": it reads only
                                        # local files or options; "network": it needs a server
                                        # (not with --offline); "slow": it reads much (a whole
                                        # workbook), so only `route validate` asks; "never" (the
                                        # default): not known before reading
    s.on_delivered()                    # once every target confirmed delivery (not on dry runs):
                                        # commit what the next run starts from
    s.incremental                       # True when the source reads only what is new: a read of
                                        # no rows then leaves every target as it is
    s.details                           # optional, a dict: what the source read, for the run
                                        # report (the file sources: `files`, and `picked` and
                                        # `matched` when pick chose from a glob; see pick.py)

Only chunks() is required. The other members are optional for a class that does not inherit from
Source (the executor treats a missing one as the default below); inheriting gives the defaults and
lets `isinstance(s, SourceProtocol)` and type checkers see the whole contract.

Values are text unless the source is typed (use pipeline.basics.dtypes.TEXT and its siblings). Memory must
not grow with the input: read lazily, yield bounded chunks. Reject a bad record with
`ctx.reject(rows, reason)` and go on; raise RouteError subclasses (RunFailed) with a message that
says what to do for anything that stops the read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd


@runtime_checkable
class SourceProtocol(Protocol):
    """Anything the executor can read: an object with `chunks()`. See the module docstring."""

    def chunks(self) -> Iterator[pd.DataFrame]: ...


class Source:
    """Base class for sources: keeps `options` and `ctx`, and gives the optional members their
    defaults. Subclasses implement chunks()."""

    incremental: bool = False
    plan_columns: str = "never"

    def __init__(self, options: dict, ctx: Any):
        self.options = options
        self.ctx = ctx

    def chunks(self) -> Iterator[pd.DataFrame]:
        raise NotImplementedError(f"{type(self).__name__} must implement chunks()")

    def columns(self) -> list[str] | None:
        """The column names when known without reading rows; None when not."""
        return None

    def close(self) -> None:
        """Free files and connections; called also when reading stopped early."""

    def on_delivered(self) -> None:
        """Every target delivered: commit what the next run starts from (an incremental mark)."""


class _Adapted(Source):
    """A plugin source that does not inherit Source, given the defaults of the members it lacks."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.options, self.ctx = getattr(inner, "options", {}), getattr(inner, "ctx", None)
        self.incremental = bool(getattr(inner, "incremental", False))

    def chunks(self) -> Iterator[pd.DataFrame]:
        return self.inner.chunks()

    def columns(self) -> list[str] | None:
        found = getattr(self.inner, "columns", None)
        return found() if callable(found) else None

    def close(self) -> None:
        found = getattr(self.inner, "close", None)
        if callable(found):
            found()

    def on_delivered(self) -> None:
        found = getattr(self.inner, "on_delivered", None)
        if callable(found):
            found()


def as_source(component: Any) -> Source:
    """`component` as a Source: itself when it inherits from Source, else wrapped with the defaults."""
    return component if isinstance(component, Source) else _Adapted(component)

"""The delivery contract, and what a delivery reports back.

The executor drives every delivery the same way, from its own writer thread:

    d = DeliveryClass(options, ctx)     # options already validated against its schema
    d.open(columns)                     # once, before the first chunk: check the target, create
                                        # temp files, read the dataset's columns. Raise RouteError
                                        # subclasses for anything the user must fix.
    d.write(chunk)                      # for every routed, transformed chunk (may be empty)
    result = d.close()                  # all chunks written: commit (rename the file, apply the
                                        # revision, swap the table) and say what happened
    d.abort(exc)                        # instead of close when anything failed: leave the last
                                        # good state in place (remove temp files, discard revision)

A delivery re-batches chunks to its own request size. With `ctx.run.options.dry_run` it must
write nothing: open() checks what it can and close() reports what would happen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


# When a delivery commits (its `commit_order` attribute; plugins without one count as remote):
# remote datasets first, then database tables, then files. Once a target has failed, nothing
# local is committed, so files and tables change only with a run that succeeded everywhere.
REMOTE, DATABASE, FILE = 0, 1, 2


@dataclass
class DeliveryResult:
    """What a delivery did: counts for the summary and history, and ids to find it again."""

    delivered: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    rejected: int = 0
    location: str = ""  # a file path, a dataset URL, a table name
    details: dict[str, Any] = field(default_factory=dict)  # revision or request ids, dry-run plan


class Delivery:
    """Convenience base class; deliveries need not inherit from it, only provide its methods."""

    def __init__(self, options: dict, ctx):
        self.options = options
        self.ctx = ctx

    def open(self, columns: list[str]) -> None:  # pragma: no cover - default does nothing
        pass

    def write(self, chunk: pd.DataFrame) -> None:
        raise NotImplementedError

    def close(self) -> DeliveryResult:
        raise NotImplementedError

    def abort(self, exc: BaseException | None) -> None:  # pragma: no cover - default does nothing
        pass

"""The unrouted file: rows that matched no target's `when`, for the publisher to look at.

Given as `routing: {unrouted: out/unrouted.csv}`, it is an ordinary csv delivery (atomic, values
written as the csv delivery writes them) with two differences: it may shrink or empty freely, and a
run with no unrouted rows removes the file an earlier run left, which would describe that run.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.deliveries.base import DeliveryResult
from pipeline.deliveries.files import CsvDelivery


class UnroutedFile(CsvDelivery):
    def __init__(self, path: Path, ctx):
        super().__init__({"path": str(path), "allow_empty": True}, ctx)

    def close(self) -> DeliveryResult:
        if self._tmp is None and not self.ctx.run.options.dry_run:  # never opened: no row was unrouted
            self.path.unlink(missing_ok=True)
            return DeliveryResult(location="")
        return super().close()

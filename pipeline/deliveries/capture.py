"""The capture delivery: keeps what a target would receive, for `route preview` and `route test`.

They run the real plan with every delivery replaced by one of these, so the executor runs exactly
as for a real run (threads, channels, routing, commit) and nothing is written anywhere.
"""

from __future__ import annotations

import pandas as pd

from pipeline.deliveries.base import DeliveryResult

# The name under which rows that matched no target are captured (target names cannot start with ':').
UNROUTED = ":unrouted"


class CaptureDelivery:
    """Appends every chunk it is given to `into[name]`."""

    atomic = True

    def __init__(self, into: dict, name: str):
        self.frames: list[pd.DataFrame] = into.setdefault(name, [])

    def open(self, columns) -> None:
        pass

    def write(self, chunk: pd.DataFrame) -> None:
        self.frames.append(chunk)

    def close(self) -> DeliveryResult:
        return DeliveryResult(delivered=sum(len(f) for f in self.frames))

    def abort(self, exc) -> None:
        pass

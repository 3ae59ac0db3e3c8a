"""The rows a Dask worker hands back for `route execute --cluster`, and how they travel.

A partition's result (PartitionResult) is a list of Pieces, one per source chunk, each holding
Arrow tables: the columns of each target's part, once per distinct frame, with the source lines
as their own array and the frame's attrs (its source) beside. The result stays in the worker's
memory; the client takes a few pieces at a time from the worker's PieceServer actor. to_arrow and
from_arrow turn a chunk into a table and back with the very dtypes, lines and source it had.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.basics.dtypes import arrow, frame_from_arrow


@dataclass
class Piece:
    """The rows one source chunk became: a table per distinct frame, and which frame each target got."""

    tables: list[Any]  # pa.Table, or a DataFrame when a column is not Arrow-backed
    lines: list[np.ndarray]
    attrs: list[dict]
    targets: list[int | None]  # per target: the index in tables (None: no rows for it)
    unrouted: int | None
    rows_read: int
    labels: list[str]
    rejects: list[tuple[Any, dict]]
    stats: list[tuple[int, int, int, float]]  # per source step: rows in, rows out, rejected, seconds
    logs: list[tuple[int, str]]


@dataclass
class PartitionResult:
    """What a worker gives back for one partition: its pieces, then the error that stopped it (if any)."""

    pieces: list[Piece]
    error: str | None = None
    error_kind: str = "RunFailed"
    worker: str = ""

    def __len__(self) -> int:
        return len(self.pieces)


class PieceServer:
    """A Dask actor, one per worker, that hands the client the pieces of the partitions held there.

    Its methods are coroutines, so the worker answers from its event loop even while its task
    thread reads the next partition, and the rows go straight from the worker to the client (an
    actor's calls do not pass through the scheduler when the client talks to workers directly)."""

    async def head(self, key: str) -> tuple[int, str | None, str, str]:
        """How many pieces the partition held under `key` has, and its error, without the rows."""
        from distributed import get_worker

        result = get_worker().data[key]
        return len(result.pieces), result.error, result.error_kind, result.worker

    async def pieces(self, key: str, start: int, stop: int) -> list[Piece]:
        """Pieces start to stop of the partition held under `key`."""
        from distributed import get_worker

        return get_worker().data[key].pieces[start:stop]


def to_arrow(frame: pd.DataFrame) -> tuple[Any, dict]:
    """A chunk as an Arrow table (its index apart), or itself when a column is not Arrow-backed
    (a plugin's object column), so that the client gets exactly the dtypes a local run has."""
    attrs = dict(frame.attrs)
    arrow_backed = all(isinstance(t, pd.ArrowDtype) for t in frame.dtypes)
    if arrow_backed and frame.columns.is_unique and all(isinstance(c, str) for c in frame.columns):
        table = pa.Table.from_arrays([arrow(frame[c]) for c in frame.columns], names=list(frame.columns))
        return table, attrs
    plain = frame.reset_index(drop=True)
    plain.attrs = {}
    return plain, attrs


def from_arrow(table: Any, lines: np.ndarray, attrs: dict) -> pd.DataFrame:
    """The chunk `to_arrow` sent, with its source lines as the index again."""
    index = pd.Index(lines, dtype="int64")
    if isinstance(table, pa.Table):
        frame = frame_from_arrow(table, index=index)
    else:
        frame = table.copy(deep=False)
        frame.index = index
    frame.attrs = dict(attrs)
    return frame

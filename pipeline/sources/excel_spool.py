"""Where the excel source keeps a sheet's typed blocks between reading the sheet and giving its rows.

A column's kind is its kind over the whole sheet (excel_cells.unify), so no row of a sheet can be
given before its last row is read. A sheet read whole keeps its blocks in memory; a sheet read a
window at a time (excel_windows.py) keeps them here: in memory up to SPOOL_MEMORY bytes, then in
a file under <state>/tmp, one Arrow IPC stream a block, read back one block at a time.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.basics.context import NoJournal

SPOOL_MEMORY = 32 << 20  # typed blocks held in memory before they go to a file


class BlockSpool:
    """Typed blocks of rows, kept until they are read back one at a time: in memory up to
    SPOOL_MEMORY bytes, then in a file under <state>/tmp (Arrow IPC streams, one a block).

    `journal`: the run's journal, which holds every file made here (the spool's, and excel_windows'
    window workbook) until it is removed, so that a run killed while it reads leaves none behind
    (the next run removes them: pipeline/runs/recovery.py)."""

    def __init__(self, folder: Path, journal=NoJournal()):
        self.folder = folder
        self.journal = journal
        self.path: Path | None = None
        self.file = None
        self.parts: list[list] = []  # [a table, or (offset, size) in the file; names; kinds]
        self.held = 0  # bytes of the tables held in memory
        self.rows = 0

    def add(self, index: np.ndarray, block: dict) -> None:
        arrays = [pa.array(index, pa.int64()), *(arr for _, arr in block.values())]
        table = pa.Table.from_arrays(arrays, names=[str(i) for i in range(len(arrays))])
        self.parts.append([table, list(block), [kind for kind, _ in block.values()]])
        self.held += table.nbytes
        self.rows += len(index)
        if self.held > SPOOL_MEMORY:
            self._spill()

    def _spill(self) -> None:
        """Write the tables held in memory to the file, and let go of them."""
        if self.file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(prefix="excel-", suffix=".arrows", dir=self.folder)
            self.path, self.file = Path(path), os.fdopen(fd, "wb")
            self.journal.hold(None, "tmp", path=path)
        for part in self.parts:
            table = part[0]
            if isinstance(table, pa.Table):
                offset = self.file.tell()
                with pa.ipc.new_stream(self.file, table.schema) as writer:
                    writer.write_table(table)
                part[0] = (offset, self.file.tell() - offset)
        self.held = 0

    def blocks(self) -> Iterator[tuple[np.ndarray, dict]]:
        """The blocks again, in the order they were added; the file is removed once they are read."""
        if self.file is not None:
            self.file.close()
        f = open(self.path, "rb") if self.path is not None else None  # noqa: SIM115 - closed below
        try:
            while self.parts:
                table, names, kinds = self.parts.pop(0)
                if not isinstance(table, pa.Table):
                    f.seek(table[0])
                    table = pa.ipc.open_stream(pa.py_buffer(f.read(table[1]))).read_all()
                index = table.column(0).to_numpy()
                yield (
                    index,
                    {n: (kind, table.column(i + 1).combine_chunks()) for i, (n, kind) in enumerate(zip(names, kinds))},
                )
        finally:
            if f is not None:
                f.close()
            self.remove()

    def remove(self) -> None:
        self.parts = []
        if self.file is not None:
            self.file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.journal.let(None, "tmp", path=str(self.path))
            self.path = None

"""Where a state keeps its delivery journals: a file each in a state folder (here), rows of a table
in a database state (pipeline/state/journals.py). Both offer the same few operations, which is all
pipeline/runs/journal.py asks of them."""

from __future__ import annotations

import os
from pathlib import Path


def journal_dir(state_dir: Path, route: str) -> Path:
    return Path(state_dir) / "journals" / route


class FolderBook:
    """The journals of a state folder: a file each, `journals/<route>/<run_id>.jsonl`."""

    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)

    def path(self, route: str, run_id: str) -> Path:
        return journal_dir(self.state_dir, route) / f"{run_id}.jsonl"

    def start(self, route: str, run_id: str) -> None:
        self.path(route, run_id).parent.mkdir(parents=True, exist_ok=True)

    def append(self, route: str, run_id: str, data: bytes) -> None:
        with open(self.path(route, run_id), "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def read(self, route: str, run_id: str) -> bytes:
        try:
            return self.path(route, run_id).read_bytes()
        except OSError:
            return b""

    def names(self, route: str) -> list[str]:
        folder = journal_dir(self.state_dir, route)
        if not folder.is_dir():
            return []
        return [p.stem for p in sorted(folder.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name))]

    def remove(self, route: str, run_id: str) -> None:
        self.path(route, run_id).unlink(missing_ok=True)

    def running(self, route: str, run_id: str) -> bool | None:
        return None  # told by the process id the journal records (see alive)


def book_for(state_dir):
    """Where this state keeps its journals: files in its folder, or rows of its database."""
    from pipeline.state.place import shared

    found = shared(state_dir)
    if found is None:
        return FolderBook(state_dir)
    from pipeline.state.journals import DatabaseBook

    return DatabaseBook(found)

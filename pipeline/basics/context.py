"""What a running component may know about its run, and the one way it rejects rows.

RunContext is the run (route, state folder, options, rejects, secrets); StepContext is one step of
it (stage, label, route line, target), handed to rules, sources and deliveries. Components hold no
other global state.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only annotations here; importing pandas costs every command 0.25 s
    import pandas as pd

from pipeline.basics.rejects import RejectSink


class NoJournal:
    """The journal of runs that write nothing (dry runs, previews, `route test`): every record is
    dropped. The real one, with the same methods, is pipeline/runs/journal.py."""

    path = None
    state = None

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


# Rows that flow between stages at a time (a route's `chunk_rows`). 25,000 rather than 50,000: a
# 1M-row upsert peaks ~30 MB lower at the same speed (bench/bench_end_to_end.py), and a chunk's fixed
# cost (a few Python calls per rule) is still far below the cost of its rows.
DEFAULT_CHUNK_ROWS = 25_000


@dataclass
class RunOptions:
    """Command-line choices that change how a run behaves."""

    dry_run: bool = False
    limit: int | None = None
    force: bool = False
    full: bool = False
    chunk_rows: int | None = None
    preview: bool = False
    test: bool = False
    resume: bool = False  # after an interrupted append: send only what did not arrive
    in_doubt: str | None = None  # with resume: "send" or "skip" rows route cannot check


@dataclass
class RunContext:
    route_name: str
    route_file: Path
    state_dir: Path
    run_id: str
    options: RunOptions = field(default_factory=RunOptions)
    secrets: set[str] = field(default_factory=set)
    rejects: RejectSink | None = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("route"))
    extras: dict[str, Any] = field(default_factory=dict)
    cancelled: threading.Event = field(default_factory=threading.Event)
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    # The delivery journal (pipeline/runs/journal.py), opened by the runner; a NoJournal for dry
    # runs, previews, tests and deliveries driven on their own.
    journal: Any = field(default_factory=NoJournal)
    # Per target name: what an interrupted append before this run delivered (with --resume).
    resume: dict[str, Any] = field(default_factory=dict)
    # Per target name: revisions and other remote leftovers of interrupted runs, to discard.
    leftovers: dict[str, list] = field(default_factory=dict)
    # on_phase(target, phase): what a delivery is doing now (uploading, applying a revision), for
    # the progress a person watches; set by the executor, None elsewhere.
    on_phase: Any = None

    @property
    def route_dir(self) -> Path:
        return self.route_file.parent

    def resolve_path(self, path: str | Path) -> Path:
        """Relative paths in a route are relative to the route file."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.route_dir / p

    def mask(self, text: str) -> str:
        """`text` with every known secret replaced by ***."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text


@dataclass
class StepContext:
    """One step's view of the run: where it is in the route, and how to reject rows."""

    run: RunContext
    stage: str
    step: str
    line: int = 0
    target: str | None = None
    source_name: str | None = None
    rejected: int = 0

    @property
    def route_dir(self) -> Path:
        return self.run.route_dir

    def resolve_path(self, path: str | Path) -> Path:
        return self.run.resolve_path(path)

    @property
    def log(self) -> logging.Logger:
        return self.run.log

    def phase(self, text: str) -> None:
        """Say what this step is doing now (`applying the revision`): shown beside its progress."""
        if self.run.on_phase is not None:
            self.run.on_phase(self.target, text)

    def reject(self, rows: pd.DataFrame, reason, column: str | None = None, value=None) -> int:
        """Send `rows` to the rejects file with `reason` (a string or a Series aligned with rows).

        The caller drops the rows from what it returns; the count shows in the run summary.
        """
        n = len(rows)
        if n == 0:
            return 0
        source = rows.attrs.get("source") or self.source_name
        if self.run.rejects is not None:
            self.run.rejects.write(
                rows,
                stage=self.stage,
                step=self.step,
                target=self.target,
                reason=reason,
                column=column,
                value=value,
                source=source,
            )
        self.rejected += n
        return n

"""What a run did, in numbers: per step, per target, and overall; the run history's record.

The executor fills a RunReport as chunks flow; the CLI prints it as a summary table or JSON, and
the history stores it. Nothing here ever holds a secret: messages are masked before they land.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class StepStats:
    stage: str
    step: str
    line: int
    target: str | None = None
    rows_in: int = 0
    rows_out: int = 0
    rejected: int = 0
    seconds: float = 0.0

    @property
    def dropped(self) -> int:
        """Rows neither passed on nor rejected: filtered out, deduplicated, aggregated."""
        return max(self.rows_in - self.rows_out - self.rejected, 0)


@dataclass
class TargetStats:
    name: str
    kind: str
    routed: int = 0
    to_send: int = 0  # rows out of the target's transforms: what the delivery was (to be) given
    delivered: int = 0  # rows that certainly arrived
    in_doubt: int = 0  # a failed run: rows that may or may not have arrived
    not_sent: int = 0  # a failed run: rows the run would have sent and did not
    created: int = 0
    updated: int = 0
    deleted: int = 0
    rejected: int = 0
    status: str = "pending"  # pending, delivered, dry-run, failed, aborted (part sent), untouched
    location: str = ""
    error: str = ""
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    phase: str = ""  # what the target is doing now: sending, committing, or what its delivery says

    @property
    def rate(self) -> float:
        """Rows given to the delivery per second of the target's own time (sending and committing)."""
        return self.to_send / self.seconds if self.seconds > 0 else 0.0


@dataclass
class RunReport:
    route: str
    route_file: str
    run_id: str
    started: float = field(default_factory=time.time)
    ended: float | None = None
    status: str = "running"  # running, success, failed, partial, dry-run
    rows_read: int = 0
    rows_rejected: int = 0
    rows_unrouted: int = 0
    steps: list[StepStats] = field(default_factory=list)
    targets: list[TargetStats] = field(default_factory=list)
    rejects_file: str = ""
    unrouted_file: str = ""
    error: str = ""
    dry_run: bool = False
    # A run that writes no rejects file (a dry run, a preview): its first rejected rows, with why,
    # as the rejects file would have them (pipeline/basics/rejects.py), for the summary to show.
    first_rejects: list[dict[str, str]] = field(default_factory=list)
    # What the source says it read (a file source: `files`, and `picked`/`matched` for a glob it
    # picked from), from its optional `details` member; names are masked by the source.
    source_details: dict[str, Any] = field(default_factory=dict)
    # Progress: the phase (starting, reading, sending, committing, done), how much of the source
    # was read when it can say (bytes of its files, or rows), and how long reading took.
    phase: str = "starting"
    source_done: int = 0
    source_total: int | None = None
    source_unit: str = "bytes"
    read_seconds: float | None = None

    @property
    def read_rate(self) -> float:
        """Rows read per second while reading: what the progress bar showed, and the summary says."""
        seconds = self.read_seconds if self.read_seconds is not None else self.seconds
        return self.records_read / seconds if seconds > 0 else 0.0

    @property
    def seconds(self) -> float:
        return (self.ended or time.time()) - self.started

    @property
    def records_read(self) -> int:
        """Every record the source read, those it rejected itself (ragged rows) included: the `in`
        of the source's line. (`rows_read` counts the rows it passed on, which --limit cuts.)
        This is the count a person is shown as "rows read", so that the two lines agree."""
        source = next((s for s in self.steps if s.stage == "source"), None)
        return max(source.rows_in, self.rows_read) if source is not None else self.rows_read

    @property
    def rows_delivered(self) -> int:
        """Rows delivered, summed over the targets (a row sent to two targets counts twice): the
        history keeps it for old readers; people are shown each target's own count."""
        return sum(t.delivered for t in self.targets)

    @property
    def ok(self) -> bool:
        return self.status in ("success", "dry-run")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        out["rows_delivered"] = self.rows_delivered
        out["records_read"] = self.records_read
        for s, raw in zip(out["steps"], self.steps):
            s["dropped"] = raw.dropped
            s["seconds"] = round(raw.seconds, 4)
        return out

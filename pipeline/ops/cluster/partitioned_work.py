"""What a Dask worker does for `route execute --cluster`: read one partition of the source, run the
source rules and the routing (`when`) on it, and hand back the rows for each target in pieces.

The client ships a `Job` (the route's checked document, with defaults and variables already
applied, and the run's options), not paths of its own: the worker binds the source and the rules
again from that document (so a plugin missing on the worker is reported as such), with the route
file's folder as on the client, so relative paths resolve to the same absolute paths, which the
worker reads itself. Nothing here writes: rejected rows, warnings and step counts travel back with
each piece, and the client writes them (pipeline/ops/cluster/partitioned.py).

A partition's result is a list of pieces, one per chunk (partitioned_pieces.py); it stays in the
worker's memory, and the client fetches a few pieces at a time through the worker's PieceServer
actor, so it never holds a whole partition. The partition is read in a thread of its own while
the rules run on the chunk before, as a local run does.
"""

from __future__ import annotations

import glob
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.basics.context import RunContext, RunOptions
from pipeline.basics.errors import RouteError, RunFailed
from pipeline.basics.plugins import Registry
from pipeline.basics.rejects import RejectSink
from pipeline.engine.channels import Cancelled, produce_in_thread
from pipeline.engine.report import RunReport
from pipeline.engine.routing import Router
from pipeline.engine.steps import Steps, located, wrapped
from pipeline.ops.cluster.partitioned_pieces import PartitionResult, Piece, to_arrow
from pipeline.route.plan import Binder, Plan, Target
from pipeline.route.yamlfile import Document
from pipeline.sources.base import as_source
from pipeline.sources.pick import column_difference


@dataclass
class Job:
    """One route's run as the workers need it: picklable, with no path only the client has."""

    doc: Document
    route_file: str  # absolute, as on the client: relative paths in the route resolve against its folder
    state_dir: str
    route_name: str
    run_id: str
    options: RunOptions
    chunk_rows: int
    secrets: set[str] = field(default_factory=set)


@dataclass
class FilePart:
    """One file of a glob: `shown` is its name as the client's messages give it."""

    shown: str
    columns: list[str] | None = None  # the first file's columns, in order (None: not checked)
    glob_path: str = ""  # the source's path option, for messages

    @property
    def label(self) -> str:
        return self.shown


class CollectedRejects(RejectSink):
    """A rejects sink that writes nothing and keeps every call, for the client to write them."""

    def __init__(self):
        super().__init__(Path("unused"))
        self.to_file = False
        self.calls: list[tuple[Any, dict]] = []

    def write(self, rows, **fields) -> int:
        if len(rows) == 0:
            return 0
        with self._lock:  # the source rejects from the reader thread, rules from the routing one
            self.count += len(rows)
            self.calls.append((rows, fields))
        return len(rows)

    def drain(self) -> list[tuple[Any, dict]]:
        with self._lock:
            calls, self.calls = self.calls, []
        return calls


class _Kept(logging.Handler):
    """Keeps a worker's log records of one partition, for the client's run log."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.records.append((record.levelno, record.getMessage()))
        except Exception:  # noqa: BLE001 - a log record never stops a partition
            pass

    def drain(self) -> list[tuple[int, str]]:
        with self.lock:
            out, self.records = self.records, []
        return out


def run_partition(job: Job, part: Any) -> PartitionResult:
    """Read one partition and run the source rules and the routing on it. Never raises: an error is
    handed back as the one-line message a local run would print."""
    worker = _worker_address()
    pieces: list[Piece] = []
    try:
        for piece in _pieces(job, part):
            pieces.append(piece)
    except RouteError as exc:
        return PartitionResult(pieces, str(exc), type(exc).__name__, worker)
    except Exception as exc:  # noqa: BLE001 - sent back as a message, never a traceback
        return PartitionResult(pieces, f"{type(exc).__name__}: {exc}", "RunFailed", worker)
    return PartitionResult(pieces, None, "", worker)


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except Exception:  # noqa: BLE001 - not on a worker (tests call run_partition directly)
        return ""


def worker_plan(job: Job, part: Any) -> Plan:
    """The source, source rules and `when`s of the route, bound here as on the client."""
    doc, data = job.doc, job.doc.data
    kept = _Kept()
    log = logging.Logger(f"route.worker.{job.route_name}", logging.INFO)
    log.addHandler(kept)
    run = RunContext(
        route_name=job.route_name,
        route_file=Path(job.route_file),
        state_dir=Path(job.state_dir),
        run_id=job.run_id,
        options=job.options,
        secrets=set(job.secrets),
        rejects=CollectedRejects(),
        log=log,
        chunk_rows=job.chunk_rows,
    )
    run.extras["kept_logs"] = kept
    problems: list = []
    binder = Binder(doc, Registry.discover(), run, problems)
    item = data.get("source")
    if isinstance(part, FilePart):
        kind = next(k for k in item if k != "label")
        # glob.escape: the file's own name, even when it holds [ or *; shown as on the client
        item = {**item, kind: {**item[kind], "path": glob.escape(part.shown)}}
    source = binder.component("sources", item, ("source",), stage="source")
    steps = binder.steps(data.get("source_transforms"), ("source_transforms",), stage="source_transforms")
    targets = []
    for i, t in enumerate(data.get("targets") or []):
        path = ("targets", i)
        when = binder.expression(t.get("when"), path + ("when",))
        targets.append(Target(str(t.get("name") or f"target{i + 1}"), when, t.get("when"), [], None, path, 0))
    if problems or source is None:
        said = "; ".join(str(p) for p in problems) or "the source could not be bound"
        raise RunFailed(
            f"the route cannot be planned on the worker: {said} (is the same route-etl, with the same plugins, installed there?)"
        )
    return Plan(doc, Path(job.route_file), job.route_name, run, source, steps, targets)


def _pieces(job: Job, part: Any) -> Iterator[Piece]:
    plan = worker_plan(job, part)
    if isinstance(part, FilePart):
        where = Path(job.route_file).parent / part.shown
        if not where.is_file():
            missing = RunFailed(
                f"{part.shown}: no such file on the Dask worker {_worker_address() or 'here'} ({where}); "
                "with --cluster every worker reads the files itself, at the path the route names: put them "
                "in a folder every worker mounts at that path"
            )
            raise located(missing, plan, plan.source)
    run = plan.run
    kept = run.extras["kept_logs"]
    report = RunReport(plan.name, job.route_file, job.run_id)
    steps = Steps(plan, report)
    router = Router(plan)
    comps = [plan.source, *plan.steps]
    try:
        source = as_source(plan.source.impl(plan.source.options, plan.source.ctx))
    except RouteError as exc:
        raise located(exc, plan, plan.source) from None
    read = _Read(plan, source, steps, part)
    # read in a thread of its own while the rules run on the chunk before, as a local run does
    stop, errors = threading.Event(), []
    chunks = produce_in_thread(lambda: iter(read), stop, errors, "route-partition-reader")
    try:
        yield from _routed(plan, steps, router, read, chunks, comps, run, kept)
    except Cancelled:
        if errors:
            raise errors[0] from None
        raise
    finally:
        stop.set()


def _routed(plan: Plan, steps: Steps, router: Router, read, chunks, comps, run, kept) -> Iterator[Piece]:
    """A piece per chunk. Each is handed on once the next chunk is routed (the last once the reader
    is done), so that it carries every count, reject and warning up to then."""
    held = None
    for chunk in steps.apply(plan.steps, chunks):
        parts, missed = router.route(chunk)
        tables, lines, attrs, index = [], [], [], {}
        refs: list[int | None] = []
        for frame in [*parts, missed]:
            if frame is None:
                refs.append(None)
                continue
            if id(frame) not in index:
                index[id(frame)] = len(tables)
                table, at = to_arrow(frame)
                tables.append(table)
                lines.append(np.asarray(frame.index, dtype=np.int64))
                attrs.append(at)
            refs.append(index[id(frame)])
        if held is not None:
            yield _piece(held, read, comps, steps, run, kept)
        held = (tables, lines, attrs, refs)
    if held is not None:
        yield _piece(held, read, comps, steps, run, kept)


def _piece(held, read, comps, steps: Steps, run, kept) -> Piece:
    tables, lines, attrs, refs = held
    stats = [steps.stats(c) for c in comps]
    rows, labels = read.take()
    return Piece(
        tables,
        lines,
        attrs,
        refs[:-1],
        refs[-1],
        rows,
        labels,
        run.rejects.drain(),
        [(s.rows_in, s.rows_out, s.rejected, s.seconds) for s in stats],
        kept.drain(),
    )


class _Read:
    """The partition's chunks, counted as the executor counts a source (pipeline/engine/executor.py)."""

    def __init__(self, plan: Plan, source, steps: Steps, part: Any):
        self.plan, self.source, self.part = plan, source, part
        self.stats = steps.stats(plan.source)
        self.rows, self.labels, self.seen = 0, [], set()
        self.lock = threading.Lock()  # the reader thread counts, the routing thread takes

    def take(self) -> tuple[int, list[str]]:
        """Rows read and sources named since the last take."""
        with self.lock:
            out = self.rows, self.labels
            self.rows, self.labels = 0, []
        return out

    def __iter__(self) -> Iterator[pd.DataFrame]:
        plan, stats, source = self.plan, self.stats, self.source
        try:
            if isinstance(self.part, FilePart):
                it = iter(source.chunks())
            else:
                it = iter(source.partition_chunks(self.part))
            while True:
                t0 = time.perf_counter()
                chunk = next(it, None)
                stats.seconds += time.perf_counter() - t0
                if chunk is None:
                    break
                chunk = self._aligned(chunk)
                label = chunk.attrs.get("source")
                with self.lock:
                    if label is not None and label not in self.seen:
                        self.seen.add(label)
                        self.labels.append(str(label))
                    self.rows += len(chunk)
                stats.rows_out += len(chunk)
                stats.rejected = plan.source.ctx.rejected
                stats.rows_in = stats.rows_out + stats.rejected
                yield chunk
        except RouteError as exc:
            raise located(exc, plan, plan.source) from None
        except Exception as exc:  # noqa: BLE001 - said as a local run says it
            raise wrapped(exc, plan, plan.source, None) from None
        finally:
            source.close()
        stats.rejected = plan.source.ctx.rejected
        stats.rows_in = stats.rows_out + stats.rejected

    def _aligned(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """A file whose columns are the first file's in another order is put in that order, as
        the csv source does for a glob; other columns stop the run, as they would locally."""
        part = self.part
        want = part.columns if isinstance(part, FilePart) else None
        have = [c for c in chunk.columns]
        if want is None or have == want:
            return chunk
        if sorted(map(str, have)) != sorted(map(str, want)):
            said = column_difference(want, have)
            raise RunFailed(
                f"{part.shown}: its columns differ from the first file's ({said}); every file "
                f"that {part.glob_path} matches must have the same columns"
            )
        out = chunk[want]
        out.attrs = dict(chunk.attrs)
        return out

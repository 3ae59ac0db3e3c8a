"""`route execute --cluster`: one route's row-local work on a Dask cluster, its deliveries here.

    client (this process)                         workers (each: one partition at a time)
    list the partitions ──► submit, a few ahead ──► read the partition, source_transforms, when
    deliveries ◄── target_transforms ◄── pieces ◄── the rows of each target, as Arrow tables

Partitions are the files of a glob (the csv source) or the ranges of an sql source's
`partition: {column, parts}`. The client fetches each partition's pieces (one per chunk, FETCH at
a time, from the worker's memory through an actor) in the order a local run reads the partitions, while
the workers read the next ones (at most `window` partitions are held on the workers); so the
targets get the same rows in the same order as a local run, and deliveries stay single writers
here: a replace or sync is committed once, an append is journaled, rejected rows land in this
run's rejects file with the file and line they came from.

Source rules that need every row (scope "stream": sort, dedupe, aggregate, pivot, limit, sample,
...) cannot be split between workers and are refused before anything runs (`cluster_problems`);
target rules run here, after the gather, as they do locally.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pandas as pd

from pipeline.basics import errors as route_errors
from pipeline.basics.dtypes import TEXT
from pipeline.basics.errors import Problem, RouteError, RouteInvalid, RunFailed
from pipeline.engine.accounting import check_rejects
from pipeline.engine.channels import Cancelled, Channel, produce_in_thread
from pipeline.engine.executor import Executor
from pipeline.engine.steps import located, wrapped
from pipeline.ops.cluster.partitioned_pieces import PieceServer, from_arrow
from pipeline.ops.cluster.partitioned_work import FilePart, Job, run_partition
from pipeline.route.plan import Plan
from pipeline.sources.remote import has_glob

STREAM_REFUSED = (
    "{name} needs every row of the stream (a stream rule), which --cluster cannot split between "
    "workers; move it to a target's target_transforms (they run on this machine, after the gather), "
    "or run the route without --cluster"
)
FETCH = 4  # pieces (chunks) fetched from a worker at once
LOST_WAIT = 30.0  # seconds to wait for a partition whose worker went away to be read again
ATTEMPTS = 3  # fetches of a partition whose worker went away, read again elsewhere by the scheduler
NOT_PARTITIONED = (
    "--cluster needs a partitioned source: a glob of files (csv: {{path: data/*.csv}}, each file a "
    "partition) or sql with partition: {{column: id, parts: 4}}; {why}; run the route without --cluster"
)


def cluster_problems(plan: Plan, source: Any) -> list[Problem]:
    """Why this route cannot run with --cluster (every reason, each at its line), or nothing."""
    doc = plan.doc
    problems = []
    for step in plan.steps:
        if step.scope != "chunk":
            problems.append(doc.problem(step.path, STREAM_REFUSED.format(name=step.name), at_key=True))
    why = not_partitioned(plan, source)
    if why:
        problems.append(doc.problem(plan.source.path, NOT_PARTITIONED.format(why=why), at_key=True))
    if plan.run.options.limit is not None:
        problems.append(
            doc.problem(
                plan.source.path,
                "--limit reads the first rows in the source's order, which --cluster does not keep "
                "while reading; run without --cluster to try a route on its first rows",
                at_key=True,
            )
        )
    return sorted(problems)


def not_partitioned(plan: Plan, source: Any) -> str:
    """Why `source` has no partitions ('' when it has)."""
    fileset = getattr(source, "fileset", None)
    if fileset is not None:
        if fileset.location.remote:
            return "its path is remote (partitions are local or shared-folder globs for now)"
        if not fileset.many or not has_glob(fileset.path):
            return "it reads one file"
        if fileset.pick.get("mode") != "all":
            return "pick reads one file of the glob"
        return ""
    if callable(getattr(source, "partition_chunks", None)):
        if not getattr(source, "partitioned", False):
            return "add partition: {column, parts} to the sql source"
        if getattr(source, "incremental", False):
            return "an incremental sql source is read in one piece (its mark is kept here)"
        return ""
    return f"the {plan.source.name} source is read in one piece"


def partitions_of(plan: Plan, source: Any) -> list:
    """The partitions to read, in the order a local run reads them (listing files, or asking the
    database for the range of the partition column)."""
    fileset = getattr(source, "fileset", None)
    if fileset is not None:
        files = source.files()
        columns = source.columns() if getattr(source, "plan_columns", "never") == "local" else None
        return [FilePart(f.shown, columns, fileset.path) for f in files]
    return list(source.partitions())


class PartitionedExecutor(Executor):
    """The executor of pipeline/engine/executor.py, with the reading, source rules and routing done
    by Dask workers: only `_route_chunks` differs, so targets, commits, aborts and the journal are
    the ones a local run uses."""

    def __init__(self, plan: Plan, client, *, window: int, **kwargs):
        super().__init__(plan, **kwargs)
        self.client = client
        self.window = max(1, window)

    def prepare(self) -> None:
        """As a local run prepares, then RouteInvalid (exit 2, nothing ran) for every reason this
        route cannot run partitioned: a stream rule among the source rules, a source that is not
        partitioned, --limit."""
        super().prepare()
        problems = cluster_problems(self.plan, self._prepared[0])
        if problems:
            raise RouteInvalid(problems)

    @property
    def source(self):
        """The source prepare() built (here on the client: it lists the partitions)."""
        self.prepare()
        return self._prepared[0]

    def job(self) -> Job:
        run = self.run
        return Job(
            doc=self.plan.doc,
            route_file=str(run.route_file),
            state_dir=os.fspath(run.state_dir),  # the folder (a database state's scratch folder)
            route_name=run.route_name,
            run_id=run.run_id,
            options=run.options,
            chunk_rows=run.chunk_rows,
            secrets=set(run.secrets),
        )

    def _route_chunks(self, source, channels: list[Channel]) -> None:
        plan, run, report = self.plan, self.run, self.report
        comps = [plan.source, *plan.steps]
        stats = [self.steps.stats(c) for c in comps]
        report.phase = "reading"
        self.progress(report)
        unrouted, opened, any_piece = self._unrouted, False, False
        try:
            try:
                parts = partitions_of(plan, source)
            except RouteError as exc:
                raise located(exc, plan, plan.source) from None
            except Exception as exc:  # noqa: BLE001 - said as a local run says it
                raise wrapped(exc, plan, plan.source, None) from None
            report.source_details = dict(getattr(source, "details", None) or {})
            report.source_details["partitions"] = len(parts)
            run.log.info("--cluster: %d partitions, at most %d on the workers at once", len(parts), self.window)
            last: dict[int, list] = {}
            # fetched in a thread of its own, so that the next pieces travel while these are delivered
            fetched = produce_in_thread(
                lambda: self._fetched(parts), run.cancelled, self._errors, "route-cluster-fetch"
            )
            for k, piece in fetched:
                any_piece = True
                self._account(piece, last.get(k), comps, stats)
                last[k] = piece.stats
                self.progress(report)
                check_rejects(plan, run, report, final=False)
                frames = [from_arrow(t, lines, a) for t, lines, a in zip(piece.tables, piece.lines, piece.attrs)]
                for ref, channel in zip(piece.targets, channels):
                    channel.put(frames[ref])
                if piece.unrouted is not None:
                    missed = frames[piece.unrouted]
                    self.router.unrouted += len(missed)
                    if unrouted is not None and not self._draining.is_set():
                        if not opened:
                            unrouted.open(list(missed.columns))
                            opened = True
                        unrouted.write(missed)
            if not any_piece:  # no partition gave a chunk (every file empty): the targets still get the columns
                columns = source.columns() or []
                empty = pd.DataFrame({c: pd.Series([], dtype=TEXT) for c in columns})
                for chunk in self.steps.apply(plan.steps, iter([empty])):
                    for part, channel in zip(self.router.route(chunk)[0], channels):
                        channel.put(part)
        finally:
            source.close()
        report.read_seconds, report.phase = time.time() - report.started, "sending"
        self.progress(report)

    def _account(self, piece, before, comps, stats) -> None:
        """What a worker said of a piece, recorded as a local run records it: warnings in the run
        log, rejected rows in the rejects file, step counts (the piece's minus the partition's last
        piece's), sources in the journal, rows read."""
        run = self.run
        for level, text in piece.logs:
            run.log.log(level, "%s (on a worker)", text)
        for rows, fields in piece.rejects:
            run.rejects.write(rows, **fields)
        for s, now, was in zip(stats, piece.stats, before or [(0, 0, 0, 0.0)] * len(comps)):
            s.rows_in += now[0] - was[0]
            s.rows_out += now[1] - was[1]
            s.rejected += now[2] - was[2]
            s.seconds += now[3] - was[3]
        for comp, s in zip(comps, stats):
            comp.ctx.rejected = s.rejected  # the rejects limit counts the source's own
        for label in piece.labels:
            if label not in self._sources:
                self._sources.add(label)
                run.journal.source(label)
        self.report.rows_read += piece.rows_read

    def _fetched(self, parts: list) -> Iterator[tuple[int, Any]]:
        """Every piece of every partition, in order; a few partitions are being read ahead."""
        client, job, cancel = self.client, self.job(), self.run.cancelled
        futures: dict[int, Any] = {}
        ahead = 0

        def submit_upto(n: int) -> None:
            nonlocal ahead
            while ahead < min(n, len(parts)):
                futures[ahead] = client.submit(run_partition, job, parts[ahead], pure=False)
                ahead += 1

        servers = Servers(client)
        try:
            servers.start(list(client.nthreads()))  # before the partitions take the workers' threads
        except Exception as exc:  # noqa: BLE001 - a worker that went away, or will not import route
            servers.close()
            raise RunFailed(
                f"the Dask workers could not start the reading: {type(exc).__name__}: {exc} (are route-etl "
                "and its plugins installed on every worker?)"
            ) from None
        try:
            for k, part in enumerate(parts):
                submit_upto(k + self.window)
                future = futures.pop(k)
                count, error, kind, worker = _held(servers, future, part, cancel, "head")
                for start in range(0, count, FETCH):
                    if cancel.is_set():
                        raise Cancelled()
                    for piece in _held(servers, future, part, cancel, "pieces", start, start + FETCH):
                        yield k, piece
                future.release()
                if error:
                    raise _error(kind, error)
        finally:
            for f in futures.values():
                f.cancel()
            servers.close()


class Servers:
    """The PieceServer actor of each worker (one is started for a worker that joins later)."""

    def __init__(self, client):
        self.client = client
        self.futures: dict[str, Any] = {}
        self.actors: dict[str, Any] = {}

    def start(self, addresses: list[str]) -> None:
        for where in addresses:
            if where not in self.futures:
                self.futures[where] = self.client.submit(
                    PieceServer, actor=True, workers=[where], allow_other_workers=False, pure=False
                )
        for where in addresses:
            if where not in self.actors:
                self.actors[where] = self.futures[where].result(timeout=LOST_WAIT)  # the worker may go away

    def call(self, where: str, method: str, *args):
        self.start([where])
        return getattr(self.actors[where], method)(*args).result()

    def close(self) -> None:
        for future in self.futures.values():
            future.release()
        self.futures.clear()
        self.actors.clear()


def _held(servers: Servers, future, part, cancel, method: str, *args):
    """The worker's PieceServer's `method(key, *args)` for the partition of `future`. When the
    worker went away after reading it, the scheduler reads the partition again elsewhere: wait for
    it and go on."""
    for attempt in range(ATTEMPTS):
        where = _finished(servers.client, future, part, cancel)
        try:
            return servers.call(where, method, future.key, *args)
        except Exception as exc:  # noqa: BLE001 - a worker gone; said in one line at the last attempt
            servers.actors.pop(where, None)
            servers.futures.pop(where, None)
            if attempt == ATTEMPTS - 1:
                return _result(partial(_raise, exc), part)
            time.sleep(1.0)  # time for the scheduler to notice, and to read the partition again
    return None


def _raise(exc: BaseException):
    raise exc


def _finished(client, future, part, cancel) -> str:
    """Wait for a partition to be read; the address of the worker holding its pieces."""
    deadline = time.monotonic() + LOST_WAIT
    while True:
        while not future.done():
            if cancel.is_set():
                raise Cancelled()
            time.sleep(0.01)
        if future.status != "finished":
            _result(future.result, part)  # raises the task's error, said in one line
        held = client.who_has([future]).get(future.key) or ()
        if held:
            return held[0]
        if time.monotonic() > deadline:
            raise RunFailed(f"the Dask cluster lost the rows of {getattr(part, 'label', part)} (its worker went away)")
        time.sleep(0.1)  # the scheduler has not yet noticed that the worker went away


def _result(fetch, part):
    """fetch(), with what the cluster says when it fails as one line, never a traceback."""
    try:
        got = fetch()
    except RouteError:
        raise
    except Exception as exc:  # noqa: BLE001 - a lost worker, a cancelled task: one line
        raise RunFailed(
            f"the Dask cluster failed while reading {getattr(part, 'label', part)}: {type(exc).__name__}: {exc}"
            " (are route-etl and its plugins installed on every worker, and can they reach the source?)"
        ) from None
    return next(iter(got.values())) if isinstance(got, dict) else got


def _error(kind: str, text: str) -> RouteError:
    """The worker's error as the same kind of RouteError a local run raises (exit codes follow)."""
    cls = getattr(route_errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, RunFailed)):
        cls = RunFailed
    exc = cls.__new__(cls)
    RouteError.__init__(exc, text)
    return exc

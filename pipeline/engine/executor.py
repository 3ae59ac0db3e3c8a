"""The stage executor: source -> source_transforms -> routing -> target_transforms -> delivery.

Chunks flow through three kinds of threads joined by bounded channels, so reading, transforming
and delivering overlap and memory stays bounded by a few chunks per stage:

    reader thread ──► main thread ─────────────────► one thread per target
    source.chunks()   source_transforms, routing     target_transforms, delivery.write

Any failure cancels every thread; then every delivery is aborted (so a file delivery leaves the
last good file and a replace leaves the old rows), and the report says what was delivered.
Deliveries are committed (closed) only after every chunk reached every target.
"""

# Longer than 400 lines because the threads, channels, commit and abort of a run read best in one
# place; the steps (steps.py), routing (routing.py) and the accounting of a failure (accounting.py)
# live apart.

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator

import pandas as pd

from pipeline.basics.context import StepContext
from pipeline.basics.dtypes import TEXT
from pipeline.basics.errors import (
    DeliveryFailed,
    OptionError,
    RouteError,
    RouteInvalid,
    RunCancelled,
    RunFailed,
)
from pipeline.basics.rejects import RejectSink
from pipeline.deliveries.capture import UNROUTED, CaptureDelivery
from pipeline.deliveries.unrouted import UnroutedFile
from pipeline.engine.accounting import check_rejects, count_failure
from pipeline.engine.channels import Cancelled, Channel, produce_in_thread
from pipeline.engine.report import RunReport, TargetStats
from pipeline.engine.routing import Router
from pipeline.engine.steps import Steps, located, message_of, wrapped
from pipeline.route.plan import Component, Plan, Target
from pipeline.sources.base import Source, as_source
from pipeline.state.place import artifacts_folder

Progress = Callable[[RunReport], None]
__all__ = ["Executor", "UNROUTED", "commit_order"]


class Executor:
    """Runs one planned route once. `progress(report)` is called as rows are read."""

    def __init__(
        self,
        plan: Plan,
        progress: Progress | None = None,
        capture: dict | None = None,
        open_journal: Callable | None = None,
    ):
        self.plan = plan
        # open_journal(deliveries, started) -> the run's delivery journal; the runner's (runs/recovery.py)
        self.open_journal = open_journal
        self.run = plan.run
        self.progress = progress or (lambda report: None)
        # preview and `route test`: {target name: [frames]} receives, through capture deliveries,
        # what each target would get (and UNROUTED the rows no target took)
        self.capture = capture
        # Does this run change anything (journal, marks, outputs)? Not a dry run, preview or test.
        self.writes = capture is None and not self.run.options.dry_run
        self.router = Router(plan)
        self.report = RunReport(plan.name, str(plan.route_file), self.run.run_id, dry_run=self.run.options.dry_run)
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()
        # Set when a delivery failed part way: every target stops delivering, but the rows go on
        # being read, transformed and routed, only to be counted, so that the failure can say how
        # many rows were not sent (see _count_failure).
        self._draining = threading.Event()
        self._failed_by: dict[str, DeliveryFailed] = {}
        self._sources: set = set()

    # -- the run -----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Build the source and the deliveries from their options.

        Raises RouteInvalid (exit 2, nothing ran) when a component refuses its options; call it
        before recording the run so that an invalid route leaves no run behind.
        """
        if getattr(self, "_prepared", None) is None:
            source = as_source(self._instantiate(self.plan.source))
            if self.capture is not None:
                deliveries = [CaptureDelivery(self.capture, t.name) for t in self.plan.targets]
                unrouted = CaptureDelivery(self.capture, UNROUTED)
            else:
                deliveries = [self._instantiate(t.delivery) for t in self.plan.targets]
                unrouted = None
                if self.plan.unrouted is not None:
                    ctx = StepContext(self.run, stage="routing", step="unrouted", target=UNROUTED)
                    unrouted = UnroutedFile(self.plan.unrouted, ctx)
            self._prepared = (source, deliveries)
            self._unrouted = unrouted

    @property
    def deliveries(self) -> list:
        """The deliveries prepare() built, one per target (empty for previews)."""
        self.prepare()
        return self._prepared[1]

    def execute(self) -> RunReport:
        run, plan, report = self.run, self.plan, self.report
        rejects_path = artifacts_folder(run.state_dir) / "rejects" / f"{plan.name}-{run.run_id}.csv"
        run.rejects = RejectSink(rejects_path)
        cancel = run.cancelled
        deliveries = []
        try:
            self.prepare()
            # The objects made at import (about 100,000 once pandas, Arrow and polars are in) would be
            # walked again by every full collection of the run: about 4 % of a 1M-row run's CPU.
            gc.freeze()
            source, deliveries = self._prepared
            report.targets = [TargetStats(t.name, t.delivery.name) for t in plan.targets]
            run.on_phase = self._on_phase
            self.steps = Steps(plan, report)
            self._start_journal(deliveries)
            channels = [Channel(cancel, maxsize=1) for _ in plan.targets]
            workers = [
                self._start_target(t, ch, deliveries[i], report.targets[i])
                for i, (t, ch) in enumerate(zip(plan.targets, channels))
            ]
            try:
                self._route_chunks(source, channels)
            except Cancelled:
                pass
            except KeyboardInterrupt:
                self._cancel_by_user()
            except BaseException as exc:
                self.fail(exc)
            for ch in channels:
                if not cancel.is_set():
                    ch.close()
            for w in workers:
                while w.is_alive():
                    w.join(0.1)
            if cancel.is_set() and not self._errors:
                # Cancelled from outside (a signal, a scheduler shutting down): never commit part.
                self._errors.append(RunFailed("the run was stopped before it finished; nothing was committed"))
            if not self._errors:
                check_rejects(self.plan, self.run, self.report, final=True)
        except KeyboardInterrupt:
            self._cancel_by_user()
        except BaseException as exc:
            self.fail(exc)
        finally:
            gc.unfreeze()  # a process that runs routes one after another collects what each left
            run.rejects.close()
        report.rows_rejected = run.rejects.count
        if run.rejects.written:
            report.rejects_file = str(rejects_path)
        report.rows_unrouted = self.router.unrouted
        if self._errors:
            for d, t in zip(deliveries, report.targets):
                self._abort(d, t)
            self._abort_unrouted()
            count_failure(self.plan, self.run, self.report, deliveries, self._failed_by)
            report.status = "partial" if any(t.delivered or t.in_doubt for t in report.targets) else "failed"
            if isinstance(self._errors[0], RunCancelled):
                report.status = "cancelled"
            report.error = run.mask(message_of(self._errors[0]))
        elif self._nothing_new(source):
            for d, t in zip(deliveries, report.targets):
                self._abort(d, t)
                t.status = "untouched"
            self._abort_unrouted()
            report.status = "success"
            run.log.info("the incremental source found no new rows: every target was left as it was")
        else:
            self._commit(deliveries)
            if not self._errors and self.writes:
                try:
                    source.on_delivered()  # e.g. commit the incremental high-water mark
                except Exception as exc:
                    report.status = "partial"
                    report.error = run.mask(
                        f"every target delivered, but the source failed afterwards: {message_of(exc)}"
                    )
        report.ended, report.phase = time.time(), "done"
        for t in report.targets:
            t.phase = "done"
        run.journal.end(report.status)
        run.journal.close()
        return report

    def _nothing_new(self, source) -> bool:
        """An incremental source read no new row: there is nothing to deliver, and nothing to replace."""
        return source.incremental and self.report.rows_read == 0 and self.writes

    def _start_journal(self, deliveries) -> None:
        """Let the runner open the run's delivery journal (it may refuse the run: an unfinished append)."""
        if self.open_journal is not None and self.writes:
            self.run.journal = self.open_journal(deliveries, self.report.started)

    def _instantiate(self, comp: Component):
        comp.ctx.run = self.run
        try:
            return comp.impl(comp.options, comp.ctx)
        except OptionError as exc:
            raise RouteInvalid([self.plan.doc.problem(comp.path + exc.path, str(exc), offset=exc.offset)]) from None

    def _route_chunks(self, source, channels: list[Channel]) -> None:
        """Main thread: read (via the reader thread), transform, route to each target."""
        plan, cancel = self.plan, self.run.cancelled
        reader = produce_in_thread(lambda: self._read(source), cancel, self._errors, "route-reader")
        unrouted, opened = self._unrouted, False
        for chunk in self.steps.apply(plan.steps, iter(reader)):
            check_rejects(self.plan, self.run, self.report, final=False)
            parts, missed = self.router.route(chunk)
            for part, channel in zip(parts, channels):
                channel.put(part)
            if missed is not None and unrouted is not None and not self._draining.is_set():
                if not opened:
                    unrouted.open(list(missed.columns))
                    opened = True
                unrouted.write(missed)
            # A chunk is released as soon as every target has it, and the next one is made only
            # then (channels.py): no finished chunk waits here for a target to be ready.
            chunk = parts = part = missed = None
            for channel in channels:
                channel.wait_taken()

    def _read(self, source: Source) -> Iterator[pd.DataFrame]:
        """The source's chunks, cut at --limit, counted; at least one (maybe empty) chunk."""
        limit = self.run.options.limit
        report = self.report
        stats = self.steps.stats(self.plan.source)
        yielded = False
        report.phase = "reading"
        self.progress(report)
        try:
            it = iter(source.chunks())
            while limit is None or report.rows_read < limit:
                t0 = time.perf_counter()
                chunk = next(it, None)
                stats.seconds += time.perf_counter() - t0  # time waiting downstream is not the source's
                if chunk is None:
                    break
                if limit is not None and report.rows_read + len(chunk) > limit:
                    chunk = chunk.iloc[: limit - report.rows_read]
                label = chunk.attrs.get("source")
                if label is not None and label not in self._sources:
                    self._sources.add(label)
                    self.run.journal.source(str(label))
                report.rows_read += len(chunk)
                stats.rejected = self.plan.source.ctx.rejected
                # "in" counts the records the source rejected (ragged rows) too, so that in = out +
                # rejected reads the same for the source as for every rule
                stats.rows_out = report.rows_read
                stats.rows_in = stats.rows_out + stats.rejected
                yielded = True
                self._extent(source)
                self.progress(report)
                # Yielded out of a one-item list: this generator keeps no reference to the chunk
                # while suspended, so the chunk is freed as soon as the steps are done with it.
                box = [chunk]
                chunk = None
                yield box.pop()
        except (Cancelled, GeneratorExit):
            raise
        except RouteError as exc:
            raise located(exc, self.plan, self.plan.source) from exc
        except Exception as exc:
            raise wrapped(exc, self.plan, self.plan.source, None) from exc
        finally:
            details = getattr(source, "details", None)
            if isinstance(details, dict):
                report.source_details = {k: v for k, v in details.items()}
            source.close()
        stats.rejected = self.plan.source.ctx.rejected
        stats.rows_in = stats.rows_out + stats.rejected
        report.read_seconds, report.phase = time.time() - report.started, "sending"
        self.progress(report)
        if not yielded:
            columns = source.columns() or []
            yield pd.DataFrame({c: pd.Series([], dtype=TEXT) for c in columns})

    def _on_phase(self, target: str | None, text: str) -> None:
        for stats in self.report.targets:
            if stats.name == target:
                stats.phase = text
        self.progress(self.report)

    def _extent(self, source) -> None:
        """How much of the source is read, when it can say (`progress()`: done, total, unit)."""
        told = source.progress() if callable(getattr(source, "progress", None)) else None
        if told is not None:
            self.report.source_done, self.report.source_total, self.report.source_unit = told

    # -- targets -----------------------------------------------------------------------------

    def _start_target(self, target: Target, channel: Channel, delivery, stats: TargetStats) -> threading.Thread:
        def work():
            t0 = time.perf_counter()
            try:
                opened = False
                stats.phase = "sending"
                for chunk in self.steps.apply(target.steps, _counted(channel, stats)):
                    stats.to_send += len(chunk)
                    if self._draining.is_set():
                        continue  # a delivery failed: only counting now
                    try:
                        if not opened:
                            self._call(delivery, "open", target, list(chunk.columns))
                            opened = True
                        self._call(delivery, "write", target, chunk)
                        chunk = None  # written: not held while the next one arrives
                    except DeliveryFailed as exc:
                        if not (exc.delivered or exc.uncertain):
                            raise  # nothing went out: no need to count the rest
                        self._stop_delivering(target, stats, exc)
                if not opened and not self._draining.is_set():
                    self._call(delivery, "open", target, [])
            except Cancelled:
                pass
            except BaseException as exc:
                stats.status = "failed"
                if isinstance(exc, DeliveryFailed):  # what certainly arrived before it failed
                    stats.delivered = exc.delivered
                    self._failed_by[target.name] = exc
                self.fail(exc)
            finally:
                stats.seconds += time.perf_counter() - t0

        thread = threading.Thread(target=work, name=f"route-target-{target.name}", daemon=True)
        thread.start()
        return thread

    def _call(self, delivery, method: str, target: Target, arg):
        try:
            return getattr(delivery, method)(arg)
        except (Cancelled, DeliveryFailed):
            raise
        except RouteError as exc:
            raise located(exc, self.plan, target.delivery) from exc
        except Exception as exc:
            raise wrapped(exc, self.plan, target.delivery, arg if isinstance(arg, pd.DataFrame) else None) from exc

    def _commit(self, deliveries) -> None:
        """Commit every target: remote ones first, then SQL tables, then files (see commit_order).

        Local outputs first check what they can (replace guards, paths); then targets commit in
        order, and once any target has failed nothing more is committed: no revision applied, no
        table committed, no file replaced. Local outputs change only with a run that succeeded
        everywhere."""
        journal = self.run.journal
        ordered = sorted(zip(self.plan.targets, deliveries, self.report.targets), key=lambda tds: commit_order(tds[1]))
        checked = bool(self._errors)
        for target, delivery, stats in ordered:
            # Local outputs check all they can (replace guards, the path) before anything commits;
            # every one of them, so that the run names every target that would stop.
            if hasattr(delivery, "prepare_commit") and not checked:
                try:
                    delivery.prepare_commit()
                except BaseException as exc:
                    stats.status = "failed"
                    stats.error = self.run.mask(message_of(exc))
                    self._errors.append(
                        exc if isinstance(exc, RouteError) else wrapped(exc, self.plan, target.delivery, None)
                    )
        for target, delivery, stats in ordered:
            if self._errors:  # once anything failed, nothing more is committed
                self._abort(delivery, stats)
                continue
            t0 = time.perf_counter()
            self.report.phase = stats.phase = "committing"
            self.progress(self.report)
            try:
                result = delivery.close()
            except BaseException as exc:
                stats.status = "failed"
                stats.error = self.run.mask(message_of(exc))
                if isinstance(exc, DeliveryFailed):
                    stats.delivered = exc.delivered
                    self._failed_by[target.name] = exc
                self._errors.append(
                    exc if isinstance(exc, RouteError) else wrapped(exc, self.plan, target.delivery, None)
                )
                continue
            finally:
                stats.seconds += time.perf_counter() - t0
            stats.delivered, stats.created, stats.updated = result.delivered, result.created, result.updated
            stats.deleted, stats.location, stats.details = result.deleted, result.location, result.details
            stats.rejected += result.rejected
            stats.status = "dry-run" if self.run.options.dry_run else "delivered"
            journal.committed(target.name, result.delivered)
        report = self.report
        self._commit_unrouted()
        if self._errors:
            count_failure(self.plan, self.run, self.report, deliveries, self._failed_by)
            report.error = self.run.mask("\n".join(dict.fromkeys(message_of(e) for e in self._errors)))
            # Partial: a target delivered, or a failed one got some rows in before it stopped
            # (as when the failure shows while writing, above).
            report.status = (
                "partial"
                if any(t.status == "delivered" or t.delivered or t.in_doubt for t in report.targets)
                else "failed"
            )
        else:
            report.status = "dry-run" if self.run.options.dry_run and self.capture is None else "success"

    def _commit_unrouted(self) -> None:
        """The unrouted file commits last, with the files, and only when everything else did."""
        if self._unrouted is None:
            return
        if self._errors:
            self._abort_unrouted()
            return
        try:
            result = self._unrouted.close()
        except BaseException as exc:
            self._errors.append(exc if isinstance(exc, RouteError) else RunFailed(f"the unrouted file: {exc}"))
            return
        if result.location and self.router.unrouted and self.writes:
            self.report.unrouted_file = result.location

    def _abort_unrouted(self) -> None:
        if self._unrouted is not None:
            try:
                self._unrouted.abort(None)
            except Exception:  # never raised over the run's own error
                pass

    def _abort(self, delivery, stats: TargetStats) -> None:
        if stats.status not in ("failed",):
            stats.status = "untouched" if getattr(delivery, "atomic", True) else "aborted"
        try:
            delivery.abort(self._errors[0] if self._errors else None)
        except Exception as exc:  # an abort that fails is reported, never raised over the real error
            stats.error = self.run.mask(f"could not clean up after the failure: {exc}")

    def _cancel_by_user(self) -> None:
        """Ctrl+C: stop every thread; deliveries are aborted as for any failure, and the run says so."""
        with self._lock:
            self._errors.insert(
                0,
                RunCancelled(
                    "cancelled (Ctrl+C) before the run finished: nothing more was sent and nothing was committed"
                ),
            )
        self.run.cancelled.set()

    def _stop_delivering(self, target: Target, stats: TargetStats, exc: DeliveryFailed) -> None:
        """A delivery failed after rows went out: stop every delivery, go on counting rows."""
        stats.status = "failed"
        stats.delivered = exc.delivered
        with self._lock:
            self._errors.append(exc)
            self._failed_by[target.name] = exc
        self._draining.set()

    # -- bookkeeping -------------------------------------------------------------------------

    def fail(self, exc: BaseException) -> None:
        """Record a failure and cancel every thread of the run (also for a stop from outside: runner.py)."""
        with self._lock:
            if not isinstance(exc, Cancelled):
                self._errors.append(exc)
        self.run.cancelled.set()


def _counted(channel: Channel, stats: TargetStats) -> Iterator[pd.DataFrame]:
    for chunk in channel:
        stats.routed += len(chunk)
        box = [chunk]  # yielded from a list: not held here while the target writes it
        del chunk
        yield box.pop()


def commit_order(delivery) -> int:
    """When a delivery commits: remote revisions first, then database tables, then files."""
    return getattr(delivery, "commit_order", 0)

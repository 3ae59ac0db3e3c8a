"""One route, planned and run: history before and after, progress while it runs, a summary at the end.

This is what `route execute` (and the scheduler) call; it returns the report and raises only
RouteInvalid (nothing ran) and RouteBusy (the route is running elsewhere). Run failures are in the
report, recorded in the history. Around the run: a lock so a route never runs twice at once, a log
file of its own (secrets masked), then notifications, the log dataset and a JSON report.

A dry run writes nothing but its line in the history (status dry-run, which status and the
scheduler pass over): no log file, no rejects file (its first rejected rows go in the report, for
the summary to show), no JSON report, and nothing earlier runs left is cleaned up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path

from rich.console import Console

from pipeline.basics.context import RunOptions
from pipeline.basics.errors import RunFailed
from pipeline.basics.plugins import Registry
from pipeline.basics.rejects import rejects_not_written
from pipeline.engine.executor import Executor
from pipeline.engine.report import RunReport
from pipeline.ops.afterrun import finish_run
from pipeline.ops.artifacts import publish
from pipeline.ops.console import ProgressView, summary
from pipeline.ops.writers import one_writer
from pipeline.route.plan import build_plan
from pipeline.runs.history import History
from pipeline.runs.locks import route_lock
from pipeline.runs.recovery import clean_leftovers, open_journal
from pipeline.runs.runlog import DEFAULT_KEEP, RunLog


class RunStopped(RunFailed):
    """The run was stopped from outside (the scheduler is shutting down)."""


def run_route(
    route_file: str | Path,
    *,
    variables: Mapping[str, str],
    registry: Registry | None = None,
    state_dir: str | Path | None = None,
    options: RunOptions | None = None,
    quiet: bool = False,
    console: Console | None = None,
    profile: str | None = None,
    run_id: str | None = None,
    stop: threading.Event | None = None,
    lock: bool = True,
    executor_for: Callable[..., Executor] = Executor,
) -> RunReport:
    """Plan and execute one route; print its summary on `console` when given.

    `stop`, when set by another thread, stops the run cleanly: deliveries are aborted, nothing is
    committed, and the report says it was stopped. `lock=False` when the caller (the scheduler)
    already holds the route's lock. `executor_for(plan, progress=, open_journal=)` builds the
    executor: the partitioned one of `route execute --cluster` (ops/cluster/execute_run.py)."""
    plan = build_plan(
        route_file,
        variables=variables,
        registry=registry or Registry.discover(),
        state_dir=state_dir,
        options=options,
        profile=profile,
        run_id=run_id,
    )
    run = plan.run
    dry = run.options.dry_run
    exclusive = nullcontext() if dry or not lock else route_lock(run.state_dir, plan.name, run.run_id)
    with exclusive as held, nullcontext() if dry else one_writer(plan, run):
        progress = ProgressView(quiet=quiet)
        executor = executor_for(
            plan,
            progress=progress,
            open_journal=lambda deliveries, started: open_journal(plan, run, deliveries, started),
        )
        executor.prepare()  # an option a component refuses is exit 2: no run is recorded, no log file left
        if getattr(held, "lease", None) is not None:  # a database state: the lock is a lease
            held.lease.on_lost = lambda: executor.fail(
                RunStopped(
                    f"the run lost its lease on route {plan.name} in the state {run.state_dir} (the database "
                    "was unreachable too long); it stopped so that two runs never write at once, and "
                    "nothing more was delivered"
                )
            )
        logs = (plan.project.setting("logs", {}) if plan.project is not None else {}) or {}
        run_log = RunLog(
            run.state_dir,
            plan.name,
            run.run_id,
            run.mask,
            fmt=logs.get("format", "plain"),
            level=logs.get("level", "info"),
            keep=logs.get("keep", DEFAULT_KEEP),
            to_file=not dry,
        )
        run.log = run_log.logger
        if not quiet:
            run_log.echo_warnings()
        try:
            run_log.info(
                f"route {plan.name} run {run.run_id} started",
                route_file=str(plan.route_file),
                state=str(run.state_dir),
                profile=profile,
                dry_run=dry,
            )
            history = History(run.state_dir)
            if not dry:
                # What earlier runs of this route left: killed runs recorded as interrupted, their
                # temp files and spools removed, their open revisions handed to the deliveries.
                history.settle(plan.name)
                run.leftovers = clean_leftovers(run.state_dir, plan.name, run.log)
            history.start(executor.report)
            progress.start(plan.name)
            try:
                with _stopping(stop, executor), rejects_not_written() if dry else nullcontext():
                    report = executor.execute()
            finally:
                progress.stop()
                run_log.stop_echo()
            if run.rejects is not None and not run.rejects.to_file:
                report.first_rejects = list(run.rejects.first)
            report.rejects_file = publish(run.state_dir, report.rejects_file, "rejects", run.log) or report.rejects_file
            history.finish(report)
            _log_result(run_log, report)
            if not dry:
                finish_run(plan, report, run.log, run_log.path)
        finally:
            run_log.close()
            if run_log.path is not None:
                for path in (run_log.path, run_log.path.with_suffix(".json")):
                    publish(run.state_dir, path, "logs", run.log)
    if console is not None:
        summary(report, console)
    return report


@contextmanager
def _stopping(stop: threading.Event | None, executor: Executor) -> Iterator[None]:
    """Turn `stop` into a failure of the run, which the executor answers by aborting every delivery.

    (Setting run.cancelled alone would end the stream early and then commit what was read.)"""
    if stop is None:
        yield
        return
    done = threading.Event()

    def watch():
        while not done.is_set():
            if stop.wait(0.05):
                if not done.is_set():
                    executor.fail(
                        RunStopped(
                            "the run was stopped before it finished (route schedule is shutting "
                            "down); nothing more was delivered and nothing was committed"
                        )
                    )
                return

    watcher = threading.Thread(target=watch, name="route-stop-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _log_result(run_log: RunLog, report: RunReport) -> None:
    for t in report.targets:
        run_log.info(
            f"target {t.name} ({t.kind}): {t.status}, {t.delivered:,} rows delivered"
            + (f" to {t.location}" if t.location else "")
            + (f": {t.error}" if t.error else ""),
            target=t.name,
            delivered=t.delivered,
            created=t.created,
            updated=t.updated,
            deleted=t.deleted,
        )
    fields = dict(
        status=report.status,
        rows_read=report.rows_read,
        rows_rejected=report.rows_rejected,
        rows_delivered=report.rows_delivered,
        seconds=round(report.seconds, 3),
        rejects_file=report.rejects_file or None,
        error=report.error or None,
    )
    text = (
        f"route {report.route} run {report.run_id} ended: {report.status}; {report.rows_read:,} rows read, "
        f"{report.rows_rejected:,} rejected, {report.rows_delivered:,} delivered in {report.seconds:.2f} s"
    )
    if report.error:
        run_log.logger.error(text + f"; error: {report.error}", extra={"fields": fields})
    else:
        run_log.info(text, **fields)

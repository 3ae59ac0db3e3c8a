"""The scheduler: run each route when its cron schedule says, a few at a time, until told to stop.

Every tick it re-reads changed route files, collects finished runs, and starts due routes:

- a route is due when its schedule fired since its last run started (runs missed while the
  machine was off collapse into one run at start), and a route that never ran is due at once;
- at most `workers` runs at a time, never two of the same route (a lock in the state folder also
  keeps other processes out), never two writers of the same dataset, file or table;
- a run that crashes, or a route file that no longer reads, is recorded as a failed run and
  notified; the scheduler carries on.

On SIGTERM (or Ctrl-C) it starts nothing more, lets running routes finish for `grace` seconds,
then stops them cleanly (deliveries abort, nothing half-written is committed) and returns. The
clock is an object so tests can move time by minutes without waiting for them.

With `cluster` (a Dask scheduler's address) runs are submitted to the cluster instead
(pipeline/ops/cluster/submit.py), only while this scheduler holds the leader lease of the shared
state; on SIGTERM it stops submitting and leaves the submitted runs to finish on their workers.
"""

# Longer than 400 lines because the scheduler's loop (ticks, jobs, locks, reloads, shutdown) reads
# best in one place; catalog, cron, jobs and status live apart.

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from pipeline.engine.report import RunReport, TargetStats
from pipeline.ops.scheduling.catalog import Catalog, RouteEntry
from pipeline.ops.scheduling.cron import UTC, parse_iso
from pipeline.ops.scheduling.isolation import own_process_reason
from pipeline.ops.scheduling.jobs import Job, Outcome, start_process, start_thread
from pipeline.route.plan import new_run_id
from pipeline.runs.history import History
from pipeline.runs.locks import RouteLock
from pipeline.runs.runlog import log_path

TICK_SECONDS = 1.0


class SystemClock:
    """The real clock; tests give the scheduler one they move by hand."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)

    def sleep(self, seconds: float, wake: threading.Event) -> None:
        wake.wait(max(seconds, 0.0))


class Scheduler:
    """Runs the routes of some folders and files on their schedules (see the module docstring)."""

    def __init__(
        self,
        paths: list[str | Path],
        *,
        variables: Mapping[str, str],
        workers: int = 2,
        profile: str | None = None,
        state: str | Path | None = None,
        isolation: str = "process",
        grace: float = 60.0,
        clock=None,
        log: logging.Logger | None = None,
        registry=None,
        cluster: str | None = None,
        sets: Mapping[str, str] | None = None,
    ):
        self.catalog = Catalog(paths, variables, profile, state)
        self.variables, self.workers, self.profile, self.state = dict(variables), max(int(workers), 1), profile, state
        self.isolation, self.grace = isolation, grace
        self.clock = clock or SystemClock()
        self.log = log or logging.getLogger("route.schedule")
        self.registry = registry
        self.running: dict[str, Job] = {}
        self.finished: list[Job] = []  # every run this scheduler saw end, in order
        self.slots: dict[str, dt.datetime] = {}  # last schedule slot each route was started for
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._stale_checked: dt.datetime | None = None
        self._not_before: dict[str, tuple[RouteEntry, dt.datetime]] = {}  # name -> (entry, earliest due time)
        self._told: dict[str, str] = {}  # name -> why it runs in its own process, once said
        self.launcher = None
        if cluster:
            from pipeline.ops.cluster.submit import ClusterLauncher

            self.launcher = ClusterLauncher(cluster, self.log, sets, profile=profile)

    def _leading(self) -> bool:
        """On a cluster: does this scheduler hold the leader lease (and so submit)? Alone: always."""
        if self.launcher is None:
            return True
        from pipeline.ops.cluster.submit import ClusterNeedsSharedState, shared_state_of

        entries = [e for e in self.catalog.routes() if e.schedule is not None]
        if not entries:
            return False
        try:
            return self.launcher.leading(shared_state_of(entries, self.state))
        except ClusterNeedsSharedState as exc:
            self.log.error("%s", exc)
            return False

    # -- one pass -----------------------------------------------------------------------------

    def tick(self, launch: bool = True) -> list[Job]:
        """Re-read changed routes, collect finished runs, start what is due; returns the runs started."""
        now = self.clock.now()
        self.reap()
        for change, entry in self.catalog.scan():
            self._announce(change, entry)
        if self.stopping.is_set() or not launch or not self._leading():
            return []
        self._check_stale(now)
        started = []
        busy_keys = set().union(*(j.entry.keys for j in self.running.values())) if self.running else set()
        due = self.due(now)
        for entry, slot in [d for d in due if d[0].problem]:
            self._refuse(entry, slot)
        for entry, slot in [d for d in due if not d[0].problem]:
            if len(self.running) >= self.workers:
                break
            if entry.keys & busy_keys:
                continue  # another route is writing the same dataset: wait for it
            job = self._launch(entry, slot)
            if job is not None:
                busy_keys |= entry.keys
                started.append(job)
        return started

    def due(self, now: dt.datetime) -> list[tuple[RouteEntry, dt.datetime]]:
        """Routes due at `now` and not running, oldest slot first."""
        out = []
        for entry in self.catalog.routes():
            if entry.schedule is None or (entry.problem and not entry.carried) or entry.name in self.running:
                continue
            known = self._not_before.get(entry.name)
            if known is not None and known[0] is entry and now < known[1]:
                continue  # cannot be due yet: spare the history a read every tick
            last = self._last_start(entry)
            if last is None:
                out.append((entry, now))
                continue
            slot = entry.schedule.previous(now)
            if slot > last:
                out.append((entry, slot))
            else:
                self._not_before[entry.name] = (entry, entry.schedule.next(last))
        return sorted(out, key=lambda item: (item[1], item[0].name))

    def _last_start(self, entry: RouteEntry) -> dt.datetime | None:
        """When the route last started: here (in scheduler time) or anywhere (in the history; a run
        another scheduler submitted to a cluster counts from the slot it was submitted for)."""
        known = self.slots.get(entry.name)
        runs = History(entry.state_dir).runs(entry.name, limit=5)
        last = next((r for r in runs if r["status"] != "dry-run"), None)
        recorded = [parse_iso(last["started"])] if last else []
        if last and last.get("slot"):
            recorded.append(parse_iso(last["slot"]))
        return max((t for t in (known, *recorded) if t is not None), default=None)

    def _launch(self, entry: RouteEntry, slot: dt.datetime) -> Job | None:
        if self.launcher is not None:  # the worker that runs it takes the route's lease
            job = Job(entry, new_run_id(), slot, started=time.time())
            self.slots[entry.name] = max(slot, self.clock.now())
            with self._lock:
                self.running[entry.name] = job
            self.log.info("%s: run %s submitted to the cluster (due %s)", entry.name, job.run_id, _hm(slot))
            self.launcher.submit(job, self.profile, self.state, self._done)
            return job
        run_id = new_run_id()
        lock = RouteLock(entry.state_dir, entry.name, run_id)
        if not lock.acquire():
            self.log.info("%s: due, but running in another process (%s); skipped", entry.name, lock.owner())
            self.slots[entry.name] = self.clock.now()
            return None
        job = Job(entry, run_id, slot, started=time.time(), lock=lock)
        self.slots[entry.name] = max(slot, self.clock.now())
        with self._lock:
            self.running[entry.name] = job
        self.log.info("%s: run %s started (due %s)", entry.name, job.run_id, _hm(slot))
        reason = own_process_reason(entry) if self.isolation == "thread" else None
        if reason and self._told.get(entry.name) != reason:
            self._told[entry.name] = reason
            self.log.info("%s: runs in a process of its own despite --isolation thread: %s", entry.name, reason)
        if self.isolation == "thread" and not reason:
            start_thread(job, self.variables, self.profile, self.state, self.registry, self._done)
        else:
            start_process(job, self.variables, self.profile, self.state, self._done)
        return job

    def _refuse(self, entry: RouteEntry, slot: dt.datetime) -> None:
        """A route whose file no longer reads fell due: record the run it misses as failed (and
        notify it), as for a crash, rather than let the dataset go stale without a word."""
        lock = RouteLock(entry.state_dir, entry.name)
        if not lock.acquire():
            return
        try:
            job = Job(entry, new_run_id(), slot, outcome=Outcome("invalid", entry.problem or ""), started=time.time())
            self.slots[entry.name] = max(slot, self.clock.now())
            self._finish(job)
            self.finished.append(job)
        finally:
            lock.release()

    def _done(self, job: Job) -> None:
        self.wake.set()

    def reap(self) -> list[Job]:
        """Collect finished runs: log them, record and notify runs that could not report themselves."""
        with self._lock:
            ended = [j for j in self.running.values() if j.done]
            for job in ended:
                del self.running[job.entry.name]
        for job in ended:
            if job.thread is not None:
                job.thread.join()
            if job.lock is not None:
                job.lock.release()
            self._finish(job)
            self.finished.append(job)
        return ended

    def _finish(self, job: Job) -> None:
        o, name = job.outcome, job.entry.name
        if o.status in ("success", "dry-run"):
            self.log.info(
                "%s: run %s %s: %s rows read, %s rejected, %s delivered in %.1f s",
                name,
                job.run_id,
                o.status,
                f"{o.rows_read:,}",
                f"{o.rows_rejected:,}",
                f"{o.rows_delivered:,}",
                o.seconds,
            )
            return
        if o.status == "busy":
            self.log.info("%s: %s", name, o.error)
            return
        self.log.warning(
            "%s: run %s %s: %s", name, job.run_id, o.status.upper(), o.error.splitlines()[0] if o.error else ""
        )
        if o.status in ("invalid", "crashed"):
            self._record_failure(job)

    def _record_failure(self, job: Job) -> None:
        """A run that ended without its own record (invalid route, crash): history and notify here."""
        entry = job.entry
        history = History(entry.state_dir)
        mine = [r for r in history.runs(entry.name, limit=20) if r["run_id"] == job.run_id]
        if mine and mine[0]["status"] not in ("queued", "running", "interrupted"):
            return  # the run recorded itself before it died
        what = (
            "the route file is invalid, so the run did not start"
            if job.outcome.status == "invalid"
            else "the run crashed"
        )
        report = RunReport(
            entry.name,
            str(entry.file),
            job.run_id,
            started=job.started,
            ended=time.time(),
            status="failed",
            error=f"{what}: {job.outcome.error.strip()}",
        )
        if mine and mine[0]["status"] == "interrupted":  # what its journal says it delivered before dying
            report.targets = [
                TargetStats(
                    t["name"],
                    t.get("kind", ""),
                    delivered=t.get("delivered", 0),
                    in_doubt=t.get("in_doubt", 0),
                    status=t.get("status", ""),
                )
                for t in json.loads(mine[0]["report"] or "{}").get("targets", [])
            ]
            if any(t.delivered or t.in_doubt for t in report.targets):
                report.error += "; " + (mine[0]["error"] or "").partition("; ")[2]
        try:
            history.finish(report)
            from pipeline.ops.afterrun import notify_run, where_to_look

            log_file = log_path(entry.state_dir, entry.name, job.run_id)
            where = where_to_look(
                entry.name, str(entry.file), entry.state_dir, log_file if log_file.exists() else None, None
            )
            if entry.notify:
                notify_run(report, entry.notify, entry.project, entry.state_dir, where, self.log)
        except Exception as exc:  # recording a failure must not become another one
            self.log.warning("%s: could not record the failed run %s: %s", entry.name, job.run_id, exc)

    def _check_stale(self, now: dt.datetime) -> None:
        """Once a minute: notify routes that went stale (missed runs, failures in a row)."""
        minute = now.replace(second=0, microsecond=0)
        if self._stale_checked == minute:
            return
        self._stale_checked = minute
        from pipeline.ops.scheduling.status import announce_stale, route_status

        for entry in self.catalog.routes():
            if entry.schedule is None or entry.problem or not entry.notify or entry.name in self.running:
                continue
            try:
                announce_stale(entry, route_status(entry, now), self.log)
            except Exception as exc:
                self.log.warning("%s: could not check whether it is stale: %s", entry.name, exc)

    def _announce(self, change: str, entry: RouteEntry) -> None:
        if change == "removed":
            self.log.info("%s: %s is gone; no longer scheduled", entry.name, entry.file)
        elif entry.problem and entry.carried:
            self.log.warning(
                "%s: %s no longer reads; until it is fixed, each run it misses is recorded as failed: %s",
                entry.name,
                entry.file,
                entry.problem,
            )
        elif entry.problem:
            self.log.warning("%s: %s cannot be scheduled: %s", entry.name, entry.file, entry.problem)
        elif entry.schedule is None:
            self.log.info("%s: no schedule in %s; not scheduled", entry.name, entry.file)
        else:
            self.log.info(
                "%s: %s %s, schedule %s",
                entry.name,
                entry.file,
                "read" if change == "added" else "re-read",
                entry.schedule.describe(),
            )

    # -- running ------------------------------------------------------------------------------

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until no run is going (tests and --once), then collect them."""
        deadline = time.monotonic() + timeout
        while any(not j.done for j in list(self.running.values())):
            if time.monotonic() > deadline:
                raise TimeoutError(f"runs still going after {timeout} s: {', '.join(self.running)}")
            self.wake.wait(0.05)
            self.wake.clear()
        self.reap()

    def run_once(self) -> list[Job]:
        """Run every route due now (each once), `workers` at a time; return the finished runs.
        SIGTERM or Ctrl-C stop it as they stop run_forever: no run is left going behind it."""
        self.stopping.clear()
        previous = self._catch_signals()
        try:
            return self._run_once()
        finally:
            self._restore_signals(previous)

    def _run_once(self) -> list[Job]:
        tried: set[str] = set()
        while True:
            self.tick(launch=False)
            if not self.running and not self._leading():
                return self.finished
            now = self.clock.now()
            pending = [(e, s) for e, s in self.due(now) if e.name not in tried]
            if not pending and not self.running:
                return self.finished
            busy = set().union(*(j.entry.keys for j in self.running.values())) if self.running else set()
            for entry, slot in pending:
                if len(self.running) >= self.workers or self.stopping.is_set():
                    break
                if entry.problem:
                    tried.add(entry.name)
                    self._refuse(entry, slot)
                    continue
                if entry.keys & busy:
                    continue
                tried.add(entry.name)
                if self._launch(entry, slot) is not None:
                    busy |= entry.keys
            if self.stopping.is_set():
                self.shutdown()
                return self.finished
            self.wake.wait(0.2)
            self.wake.clear()

    def run_forever(self) -> None:
        """Tick until stopped; then finish or stop the running routes (see the module docstring)."""
        previous = self._catch_signals()
        try:
            while not self.stopping.is_set():
                self.tick()
                self.wake.clear()
                self.clock.sleep(self._seconds_to_next(), self.wake)
            self.shutdown()
        finally:
            self._restore_signals(previous)

    def _catch_signals(self) -> dict:
        """SIGTERM and SIGINT stop the scheduler (only the main thread can catch signals)."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, self._signalled) for sig in (signal.SIGTERM, signal.SIGINT)}

    @staticmethod
    def _restore_signals(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def shutdown(self) -> None:
        """Wait `grace` seconds for running routes, then stop them cleanly; return when all ended.
        On a cluster: submit nothing more; the runs go on on their workers."""
        if self.launcher is not None:
            if self.running:
                self.log.info("stopping: %s go on on the cluster", ", ".join(sorted(self.running)))
            self.launcher.close()
            self.log.info("stopped")
            return
        if self.running:
            names = ", ".join(sorted(self.running))
            self.log.info(
                "stopping: waiting up to %g s for %s to finish (signal again to stop them now)", self.grace, names
            )
        deadline = time.monotonic() + self.grace
        cancelled = False
        while True:
            self.reap()
            if not self.running:
                break
            if not cancelled and (time.monotonic() >= deadline or self._signals > 1):
                self.log.info("stopping %s now: their deliveries are aborted", ", ".join(sorted(self.running)))
                for job in list(self.running.values()):
                    job.cancel()
                cancelled = True
            self.wake.wait(0.1)
            self.wake.clear()
        self.log.info("stopped")

    _signals = 0

    def _signalled(self, signum, frame) -> None:
        self._signals += 1
        self.stopping.set()
        self.wake.set()

    def stop(self) -> None:
        """Ask the scheduler to stop, as SIGTERM does (from another thread)."""
        self._signals += 1
        self.stopping.set()
        self.wake.set()

    def _seconds_to_next(self) -> float:
        """Sleep until the next scheduled time, but wake every TICK_SECONDS to notice file changes."""
        now = self.clock.now()
        nexts = [e.schedule.next(now) for e in self.catalog.routes() if e.schedule is not None and not e.problem]
        if not nexts:
            return TICK_SECONDS
        return min(TICK_SECONDS, max((min(nexts) - now).total_seconds(), 0.0))


def _hm(when: dt.datetime) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M")

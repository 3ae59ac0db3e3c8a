"""One scheduled run, in a child process (the default) or in a thread of the scheduler.

A child process isolates the scheduler from a route that crashes the interpreter or leaks memory;
it is `python -m pipeline.ops.scheduling.worker`, which prints one JSON line with the outcome, and its
stderr goes to the run's log file. A thread starts faster and is what tests use. Either way the
scheduler sees the same Outcome, and `cancel()` stops the run cleanly (SIGTERM to the child, which
stops its run as a thread's `stop` event does).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.basics.context import RunOptions
from pipeline.basics.errors import RouteInvalid
from pipeline.ops.scheduling.catalog import RouteEntry
from pipeline.runs.locks import RouteBusy, RouteLock
from pipeline.runs.runlog import log_path


@dataclass
class Outcome:
    """How a run ended, as the scheduler sees it (also when the run could not say so itself)."""

    status: str  # success, failed, partial, invalid, busy, crashed, lost (by the cluster)
    error: str = ""
    rows_read: int = 0
    rows_rejected: int = 0
    rows_delivered: int = 0
    seconds: float = 0.0

    @classmethod
    def from_report(cls, report) -> Outcome:
        return cls(
            report.status,
            report.error,
            report.rows_read,
            report.rows_rejected,
            report.rows_delivered,
            round(report.seconds, 3),
        )


@dataclass
class Job:
    """A run the scheduler started: the route, its slot, and the thread or process running it."""

    entry: RouteEntry
    run_id: str
    slot: dt.datetime  # the scheduled time this run answers (scheduler clock)
    outcome: Outcome | None = None
    started: float = 0.0  # wall clock, for the history of a run that never reported
    stop: threading.Event = field(default_factory=threading.Event)
    lock: RouteLock | None = None  # held by the scheduler for the whole run
    thread: threading.Thread | None = None
    process: subprocess.Popen | None = None
    future: Any = None  # on a cluster: the Dask future of the task running it

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def cancel(self) -> None:
        """Stop the run cleanly: its deliveries abort, nothing is committed."""
        self.stop.set()
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)
            except OSError:
                pass


def start_thread(job: Job, variables: Mapping[str, str], profile: str | None, state, registry, on_done) -> None:
    """Run the job with run_route in a thread of this process."""
    from pipeline.ops.runner import run_route

    def work():
        try:
            report = run_route(
                job.entry.file,
                variables=variables,
                registry=registry,
                state_dir=state,
                options=RunOptions(),
                quiet=True,
                profile=profile,
                run_id=job.run_id,
                stop=job.stop,
                lock=False,
            )
            job.outcome = Outcome.from_report(report)
        except RouteInvalid as exc:
            job.outcome = Outcome("invalid", str(exc))
        except RouteBusy as exc:
            job.outcome = Outcome("busy", str(exc))
        except BaseException as exc:  # a crashing route must not take the scheduler with it
            tb = traceback.format_exc(limit=5)
            job.outcome = Outcome("crashed", f"{type(exc).__name__}: {exc}\n{tb}")
        finally:
            on_done(job)

    job.thread = threading.Thread(target=work, name=f"route-run-{job.entry.name}", daemon=True)
    job.thread.start()


def start_process(job: Job, variables: Mapping[str, str], profile: str | None, state, on_done) -> None:
    """Run the job in `python -m pipeline.ops.scheduling.worker`; a thread here waits for it."""
    if job.lock is not None and job.lock.lease is not None:
        # a database state: the child takes the route's lease itself (under the same run id), so
        # that the lease lives exactly as long as the run, wherever the scheduler goes
        job.lock.release()
        job.lock = None
    locked = ["--locked"] if job.lock is not None else []
    args = [sys.executable, "-m", "pipeline.ops.scheduling.worker", "--run-id", job.run_id, *locked]
    if profile:
        args += ["--profile", profile]
    if state:
        args += ["--state", str(state)]
    args.append(str(job.entry.file))
    log_file = log_path(job.entry.state_dir, job.entry.name, job.run_id)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    stderr = open(log_file, "ab")
    try:
        job.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=dict(variables),
            start_new_session=True,  # Ctrl-C reaches only the scheduler
            pass_fds=(job.lock.fd,) if job.lock else (),
        )  # the lock lives while either runs
    except OSError as exc:
        stderr.close()
        job.outcome = Outcome("crashed", f"cannot start the run process: {exc}")
        on_done(job)
        return

    def wait():
        try:
            out, _ = job.process.communicate()
            job.outcome = _parse(out.decode("utf-8", "replace"), job.process.returncode)
        finally:
            stderr.close()
            on_done(job)

    job.thread = threading.Thread(target=wait, name=f"route-wait-{job.entry.name}", daemon=True)
    job.thread.start()


def _parse(stdout: str, code: int) -> Outcome:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                data: dict[str, Any] = json.loads(line)
                return Outcome(**{k: v for k, v in data.items() if k in Outcome.__dataclass_fields__})
            except (ValueError, TypeError):
                break
    how = f"was killed by signal {-code}" if code < 0 else f"ended with exit code {code}"
    return Outcome("crashed", f"the run process {how} before reporting a result; see the run's log file")


def worker_main(argv: list[str] | None = None) -> int:
    """The child process: run one route, print its Outcome as JSON, stop cleanly on SIGTERM."""
    import argparse

    from pipeline.ops.runner import run_route

    parser = argparse.ArgumentParser(prog="route-worker")
    parser.add_argument("route")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--profile")
    parser.add_argument("--state")
    parser.add_argument("--locked", action="store_true", help="the scheduler holds the route's lock")
    ns = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    code = 1
    try:
        report = run_route(
            ns.route,
            variables=dict(os.environ),
            state_dir=ns.state,
            options=RunOptions(),
            quiet=True,
            profile=ns.profile,
            run_id=ns.run_id,
            stop=stop,
            lock=not ns.locked,
        )
        outcome, code = Outcome.from_report(report), 0 if report.ok else 1
    except RouteInvalid as exc:
        outcome, code = Outcome("invalid", str(exc)), 2
    except RouteBusy as exc:
        outcome, code = Outcome("busy", str(exc)), 3
    sys.stdout.write(json.dumps(outcome.__dict__) + "\n")
    sys.stdout.flush()
    return code

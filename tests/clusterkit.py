"""A Dask cluster and a PostgreSQL state for the many-machines tests, and a scheduler on a driven clock.

- `local_cluster(**env)`: a real distributed.LocalCluster of process workers on 127.0.0.1, whose
  workers see `env` (e.g. a short ROUTE_LEASE_SECONDS).
- `fresh_database()`: a new PostgreSQL database on the test server for one test's state, dropped
  after; the test fails under CI=true (skips locally) when the server does not answer.
- `python tests/clusterkit.py schedule --clock FILE ...`: `route schedule --cluster` whose clock
  reads the time from FILE, so a test moves two scheduler processes through minutes together and
  can kill one of them with a signal.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent


@contextmanager
def local_cluster(workers: int = 2, **env: str):
    """A LocalCluster of `workers` single-threaded process workers; yields it."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
        env={**env, "ROUTE_PROGRESS_AFTER": "0"},
        silence_logs=40,
    )
    try:
        yield cluster
    finally:
        cluster.close()


def worker_pids(client) -> dict[str, int]:
    """Each live worker's address -> the process id running its tasks (a worker that just died is
    left out, not an error)."""
    return client.run(os.getpid, on_error="ignore")


@contextmanager
def fresh_database():
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    from dbfixtures import require_server
    from sqlalchemy import create_engine, text

    server = require_server("postgresql")
    name = f"route_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=__import__("sqlalchemy").pool.NullPool)
    with admin.connect() as con:
        con.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        from pipeline.state.database import forget_engines

        forget_engines()
        with admin.connect() as con:
            con.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def route_cmd(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`route ARGS` in a process of its own, in `cwd`, with `env` added to this one's."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def set_clock(file: Path, when: dt.datetime) -> None:
    tmp = file.with_suffix(".tmp")
    tmp.write_text(when.isoformat())
    os.replace(tmp, file)


class FileClock:
    """The scheduler's clock, read from a file the test writes (an ISO time)."""

    def __init__(self, file: Path):
        self.file = Path(file)

    def now(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.file.read_text().strip())

    def sleep(self, seconds: float, wake: threading.Event) -> None:
        wake.wait(min(max(seconds, 0.0), 0.2))


def start_scheduler(clock: Path, cluster: str, state: str, *paths: Path, env: dict | None = None) -> subprocess.Popen:
    """A scheduler process on the driven clock, submitting to `cluster`; its log on stderr."""
    args = [sys.executable, str(HERE / "clusterkit.py"), "schedule", str(clock), cluster, state, *map(str, paths)]
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=str(HERE.parent),
    )


def _schedule_main(argv: list[str]) -> None:
    import logging

    from pipeline.ops.scheduling.scheduler import Scheduler

    clock, cluster, state, *paths = argv
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
    scheduler = Scheduler(
        paths, variables=dict(os.environ), workers=1000, state=state, clock=FileClock(Path(clock)), cluster=cluster
    )
    scheduler.run_forever()


if __name__ == "__main__":
    if sys.argv[1] == "schedule":
        sys.path.insert(0, str(HERE))
        _schedule_main(sys.argv[2:])

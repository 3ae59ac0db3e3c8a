"""One run of a route at a time, also across processes: an fcntl lock in the state folder.

`<state>/locks/<route>.lock` is locked (exclusive, non-blocking) for the whole run by whoever runs
it: `route execute`, the scheduler, a cron job. The lock goes away with the process, so a killed
run never leaves a stale lock behind; the file holds the owner's pid for the message.

In a database state the lock is a lease (pipeline/state/leases.py), `route:<route>`, owned by the
run's id and renewed while the run goes: a run on another machine is kept out the same way, and a
run whose machine died lets go when its lease runs out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.basics.errors import RunFailed

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


class RouteBusy(RunFailed):
    """Another process is running this route right now."""


def lock_path(state_dir: Path, route: str) -> Path:
    """The lock file of a route in its state folder."""
    return Path(state_dir) / "locks" / f"{route}.lock"


class RouteLock:
    """The lock of one route; `acquire()` never waits. `owner`: the run id, in a database state."""

    def __init__(self, state_dir: Path, route: str, owner: str | None = None):
        from pipeline.state.place import shared

        self.path = lock_path(state_dir, route)
        self.route = route
        self._fd: int | None = None
        self.lease = None
        state = shared(state_dir)
        if state is not None:
            from pipeline.state.leases import Lease

            self.lease = Lease(state, f"route:{route}", owner)

    def acquire(self) -> bool:
        """Take the lock; False when another process (or another RouteLock) holds it."""
        if self.lease is not None:
            if not self.lease.acquire():
                return False
            self.lease.keep()
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    @property
    def fd(self) -> int | None:
        return self._fd

    def release(self) -> None:
        if self.lease is not None:
            self.lease.release()
            return
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None

    def owner(self) -> str:
        if self.lease is not None:
            from pipeline.state.leases import holder

            found = holder(self.lease.state, self.lease.name)
            return f"run {found['owner']}, {found['holder']}" if found else "?"
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"


def is_locked(state_dir: Path, route: str) -> bool:
    """Is the route running somewhere right now?"""
    from pipeline.state.place import shared

    if shared(state_dir) is not None:
        from pipeline.state.leases import holder

        return holder(shared(state_dir), f"route:{route}") is not None
    lock = RouteLock(state_dir, route)
    if not lock.path.exists():
        return False
    if lock.acquire():
        lock.release()
        return False
    return True


@contextmanager
def route_lock(state_dir: Path, route: str, owner: str | None = None) -> Iterator[RouteLock]:
    """Hold the route's lock for the block; RouteBusy when it is running elsewhere."""
    lock = RouteLock(state_dir, route, owner)
    if not lock.acquire():
        where = (
            f"{lock.owner()}, in the state {state_dir}" if lock.lease else f"process {lock.owner()}, lock {lock.path}"
        )
        raise RouteBusy(f"route {route} is already running ({where}); this run was not started")
    try:
        yield lock
    finally:
        lock.release()


def _try_lock(fd: int) -> bool:
    if fcntl is None:  # pragma: no cover - Windows: msvcrt locks a byte range
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _unlock(fd: int) -> None:
    if fcntl is None:  # pragma: no cover
        import msvcrt

        os.lseek(fd, 0, 0)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_UN)

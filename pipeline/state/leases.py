"""Leases: locks in the state database that expire unless their holder keeps renewing them.

A file lock goes away with its process; a lock in a database has to expire instead, since a machine
can die without a word. A lease is taken for `ttl` seconds and renewed every ttl/3 by a thread of
the holder's process; when the process (or its machine) dies, the lease runs out and another may take
it. Times are the database's clock, so machines whose clocks disagree still agree on expiry.

Names: `route:<name>` (one run of a route at a time), `dataset:<key>` (one writer of a dataset,
file or table), `scheduler` (the scheduler that submits runs to a cluster).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

from pipeline.state import tables as T
from pipeline.state.database import db_now, engine_for, insert_for
from pipeline.state.place import SharedState

DEFAULT_TTL = 30.0


def lease_seconds() -> float:
    """How long a lease lasts unrenewed: ROUTE_LEASE_SECONDS, else 30 s."""
    try:
        return max(float(os.environ.get("ROUTE_LEASE_SECONDS", DEFAULT_TTL)), 1.0)
    except ValueError:
        return DEFAULT_TTL


def holder_text() -> str:
    return f"process {os.getpid()} on {socket.gethostname()}"


class Lease:
    """One named lease of a shared state; `acquire()` never waits."""

    def __init__(self, state: SharedState, name: str, owner: str | None = None, ttl: float | None = None):
        self.state, self.name = state, name
        self.owner = owner or uuid.uuid4().hex
        self.ttl = ttl or lease_seconds()
        self.held = False
        self._keeper: threading.Thread | None = None
        self._stop = threading.Event()
        self.lost = threading.Event()
        self.on_lost: Callable[[], None] | None = None  # called (once) from the keeper when lost

    def acquire(self) -> bool:
        """Take the lease if it is free, expired, or already ours."""
        from sqlalchemy import update

        with engine_for(self.state).begin() as con:
            now = db_now(con)
            values = {"owner": self.owner, "holder": holder_text(), "acquired": now, "expires": now + self.ttl}
            taken = con.execute(
                update(T.leases)
                .where(T.leases.c.name == self.name)
                .where((T.leases.c.expires < now) | (T.leases.c.owner == self.owner))
                .values(**values)
                .returning(T.leases.c.name)
            ).first()
            if not taken:  # no row yet: insert it, unless another process just did
                stmt = insert_for(con)(T.leases).values(name=self.name, **values)
                taken = con.execute(
                    stmt.on_conflict_do_nothing(index_elements=["name"]).returning(T.leases.c.name)
                ).first()
        self.held = bool(taken)
        return self.held

    def renew(self) -> bool:
        """Push the expiry on; False when the lease is no longer ours (it expired and was taken)."""
        from sqlalchemy import update

        with engine_for(self.state).begin() as con:
            now = db_now(con)
            ok = con.execute(
                update(T.leases)
                .where(T.leases.c.name == self.name, T.leases.c.owner == self.owner)
                .values(expires=now + self.ttl)
                .returning(T.leases.c.name)
            ).first()
        if ok is None:
            self.held = False
        return ok is not None

    def release(self) -> None:
        from sqlalchemy import delete

        self._stop.set()
        if self._keeper is not None and self._keeper is not threading.current_thread():
            self._keeper.join(timeout=5)
        self._keeper = None
        if not self.held:
            return
        try:
            with engine_for(self.state).begin() as con:
                con.execute(delete(T.leases).where(T.leases.c.name == self.name, T.leases.c.owner == self.owner))
        finally:
            self.held = False

    def keep(self, on_lost: Callable[[], None] | None = None, log: logging.Logger | None = None) -> None:
        """Renew the lease every ttl/3 from a thread until released; `on_lost` when it is lost."""
        self._stop.clear()
        if on_lost is not None:
            self.on_lost = on_lost

        def loop():
            failures = 0
            while not self._stop.wait(self.ttl / 3):
                try:
                    if self.renew():
                        failures = 0
                        continue
                    reason = "another process took it after it expired"
                except Exception as exc:  # the database is unreachable: keep trying until expiry
                    failures += 1
                    if failures * self.ttl / 3 < self.ttl * 2 / 3:
                        continue
                    reason = f"it could not be renewed: {exc}"
                self.lost.set()
                (log or logging.getLogger("route")).warning("lost the lease %s: %s", self.name, reason)
                if self.on_lost is not None:
                    self.on_lost()
                return

        self._keeper = threading.Thread(target=loop, name=f"lease {self.name}", daemon=True)
        self._keeper.start()


def holder(state: SharedState, name: str) -> dict | None:
    """The live holder of a lease (owner, holder, expires), or None when it is free or expired."""
    from sqlalchemy import select

    with engine_for(state).connect() as con:
        now = db_now(con)
        row = con.execute(select(T.leases).where(T.leases.c.name == name, T.leases.c.expires >= now)).mappings().first()
    return dict(row) if row else None

"""Connections of the sql delivery: one per target, except for targets that write one SQLite file.

A sql delivery holds its transaction from its first chunk to close(). SQLite lets one connection
at a time write a file, so two targets of a run writing tables of one SQLite file, each on a
connection of its own, would wait for each other until "database is locked". They share a Link
instead: one connection and one transaction, their writes taking turns under the Link's lock (the
executor writes targets from parallel threads). Each target's prepare_commit() settles it (counts,
replace guard); the first close() settles any target not yet settled, commits them all at once and
leaves each its result; a failure or an abort before that rolls all of them back. The tables of one
file change together or not at all.

Every other target gets a Link of its own, so the delivery drives both cases the same way.
"""

from __future__ import annotations

import threading

from pipeline.basics.sqlurls import sqlite_file

_REGISTRY_LOCK = threading.Lock()
_KEY = "sql_links"  # in RunContext.extras: SQLite file -> its Link, for one run


class Link:
    """A connection one or more deliveries write through, in one transaction."""

    def __init__(self, engine, key=None):
        self.engine = engine
        self.key = key  # the SQLite file when shared, else None
        self.lock = threading.RLock()  # one statement (or one close) at a time
        self.conn = None
        self.members: list = []  # deliveries that joined and have not left yet, in order
        self.writing = False  # a member has begun changing tables in the transaction
        self.committed = False
        self.failure: BaseException | None = None  # why the transaction was rolled back
        self.results: dict = {}  # member -> its DeliveryResult, once committed
        self._registry = None

    def join(self, member):
        """Connect if no member has yet; the connection to use."""
        if self.conn is None:
            self.conn = self.engine.connect()
        self.members.append(member)
        return self.conn

    def others(self, member) -> list:
        return [m for m in self.members if m is not member]

    def leave(self, member) -> None:
        """The member is done; the last one out closes the connection."""
        if member in self.members:
            self.members.remove(member)
        if self.members or self.conn is None:
            return
        try:
            self.conn.close()
        finally:
            self.conn = None
            if self._registry is not None:
                with _REGISTRY_LOCK:
                    if self._registry.get(self.key) is self:
                        del self._registry[self.key]

    def rollback(self, failure: BaseException) -> None:
        """Undo every member's rows; remember why, so that the others report it."""
        if self.failure is None:
            self.failure = failure
        if self.conn is not None and self.conn.in_transaction():
            self.conn.rollback()


def link_for(engine, run, share: bool) -> Link:
    """The Link a delivery writes through: the run's one for its SQLite file, or a new one."""
    path = sqlite_file(engine.url) if share else None
    if path is None:
        return Link(engine)
    key = str(path.resolve())
    with _REGISTRY_LOCK:
        registry = run.extras.setdefault(_KEY, {})
        link = registry.get(key)
        if link is None or link.committed or link.failure is not None:
            link = registry[key] = Link(engine, key)
            link._registry = registry
        return link

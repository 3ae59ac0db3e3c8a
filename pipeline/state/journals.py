"""Delivery journals in a database state: a journal's lines as rows, in the order they were written.

The folder state keeps a journal as a file of JSON lines (pipeline/runs/journal.py); here each line
is a row of `route_journal_lines`, committed before `append` returns (the database's commit is the
fsync), and `route_journals` lists a route's journals in the order they began. Whether the run that
writes a journal is still alive is told by its lease on the route (leases.py), not by its process id:
the process may be on another machine.
"""

from __future__ import annotations

import time

from pipeline.state import tables as T
from pipeline.state.database import engine_for
from pipeline.state.leases import holder
from pipeline.state.place import SharedState


class DatabaseBook:
    """The journals of one database state."""

    def __init__(self, state: SharedState):
        self.state = state
        # The last seq written to each journal by this book: a journal has one writer, so the next
        # append needs no MAX(seq) round trip; a clash (another writer after all) counts again.
        self._last: dict[str, int] = {}

    def start(self, route: str, run_id: str) -> None:
        from sqlalchemy import select

        with engine_for(self.state).begin() as con:
            if con.execute(select(T.journals.c.run_id).where(T.journals.c.run_id == run_id)).first() is None:
                con.execute(T.journals.insert().values(run_id=run_id, route=route, created=time.time()))

    def append(self, route: str, run_id: str, data: bytes) -> None:
        """Add lines (bytes ending in a newline) to a journal, committed when this returns."""
        from sqlalchemy import func, select
        from sqlalchemy.exc import IntegrityError

        lines = data.decode("utf-8").splitlines()
        for attempt in range(5):
            try:
                with engine_for(self.state).begin() as con:
                    last = self._last.get(run_id)
                    if last is None:
                        last = con.execute(
                            select(func.coalesce(func.max(T.journal_lines.c.seq), 0)).where(
                                T.journal_lines.c.run_id == run_id
                            )
                        ).scalar()
                    con.execute(
                        T.journal_lines.insert(),
                        [{"run_id": run_id, "seq": last + i + 1, "line": line} for i, line in enumerate(lines)],
                    )
                self._last[run_id] = last + len(lines)
                return
            except IntegrityError:  # another process added a line at the same moment: count again
                self._last.pop(run_id, None)
                if attempt == 4:
                    raise

    def read(self, route: str, run_id: str) -> bytes:
        from sqlalchemy import select

        with engine_for(self.state).connect() as con:
            rows = con.execute(
                select(T.journal_lines.c.line).where(T.journal_lines.c.run_id == run_id).order_by(T.journal_lines.c.seq)
            ).scalars()
            return "".join(line + "\n" for line in rows).encode("utf-8")

    def names(self, route: str) -> list[str]:
        """The route's journals (run ids), oldest first."""
        from sqlalchemy import select

        with engine_for(self.state).connect() as con:
            return list(
                con.execute(
                    select(T.journals.c.run_id)
                    .where(T.journals.c.route == route)
                    .order_by(T.journals.c.created, T.journals.c.run_id)
                ).scalars()
            )

    def remove(self, route: str, run_id: str) -> None:
        self._last.pop(run_id, None)
        with engine_for(self.state).begin() as con:
            con.execute(T.journal_lines.delete().where(T.journal_lines.c.run_id == run_id))
            con.execute(T.journals.delete().where(T.journals.c.run_id == run_id))

    def running(self, route: str, run_id: str) -> bool:
        """Does the run still hold its route's lease (it is alive, wherever it runs)?"""
        found = holder(self.state, f"route:{route}")
        return found is not None and found["owner"] == run_id

"""Leases in a database state (pipeline/state/leases.py), on SQLite and the real PostgreSQL: one
holder at a time, kept alive by renewing, taken over once it runs out, and the loser told."""

from __future__ import annotations

import threading
import time

import pytest
from clusterkit import fresh_database

from pipeline.state.leases import Lease, holder
from pipeline.state.place import from_option


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request, tmp_path):
    if request.param == "sqlite":
        yield from_option(f"sqlite:///{tmp_path}/state.db")
        return
    with fresh_database() as url:
        yield from_option(url)


def test_one_holder_until_it_lets_go_or_runs_out(state):
    a, b = Lease(state, "route:x", ttl=1.0), Lease(state, "route:x", ttl=1.0)
    assert a.acquire() and not b.acquire()
    assert holder(state, "route:x")["owner"] == a.owner
    a.release()
    assert b.acquire() and not a.acquire()
    time.sleep(1.2)  # b stops renewing: its lease runs out
    assert holder(state, "route:x") is None
    assert a.acquire() and not b.renew()


def test_a_kept_lease_outlives_its_period_and_its_loss_is_told(state):
    a, b = Lease(state, "scheduler", ttl=0.9), Lease(state, "scheduler", ttl=0.9)
    lost = threading.Event()
    assert a.acquire()
    a.keep(on_lost=lost.set)
    time.sleep(2.0)
    assert not b.acquire() and not lost.is_set()  # renewed every 0.3 s
    a._stop.set()  # its keeper stops (as if the process froze); the lease runs out
    a._keeper.join()
    time.sleep(1.0)
    assert b.acquire()
    a.keep(on_lost=lost.set)
    assert lost.wait(3) and a.lost.is_set()
    b.release()

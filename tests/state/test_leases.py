"""Leases in a database state (pipeline/state/leases.py), on SQLite and the real PostgreSQL: one
holder at a time, kept alive by renewing, taken over once it runs out, and the loser told."""

from __future__ import annotations

import threading

import pytest
from clusterkit import fresh_database
from polling import wait_until

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
    wait_until(lambda: holder(state, "route:x") is None, timeout=10, every=0.05)  # b never renews: it runs out
    assert a.acquire() and not b.renew()


def test_a_kept_lease_outlives_its_period_and_its_loss_is_told(state):
    a, b = Lease(state, "scheduler", ttl=0.9), Lease(state, "scheduler", ttl=0.9)
    lost = threading.Event()
    assert a.acquire()
    first = holder(state, "scheduler")["expires"]
    a.keep(on_lost=lost.set)
    # renewed every 0.3 s: still a's once its first period has passed
    wait_until(lambda: holder(state, "scheduler")["expires"] > first + 0.9, timeout=10, every=0.05)
    assert not b.acquire() and not lost.is_set()
    a._stop.set()  # its keeper stops (as if the process froze); the lease runs out
    a._keeper.join()
    wait_until(lambda: holder(state, "scheduler") is None, timeout=10, every=0.05)
    assert b.acquire()
    a.keep(on_lost=lost.set)
    assert lost.wait(3) and a.lost.is_set()
    b.release()

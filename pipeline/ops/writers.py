"""One writer of a dataset, file or table at a time, across machines sharing a database state.

On one machine the scheduler never starts two runs that write the same target (their write keys,
pipeline/ops/scheduling/catalog.py). Machines that share a database state agree through leases
(`dataset:<key>`): a run takes the lease of every target it writes before it starts, and waits (a
line in its log, once) while another run holds one. A folder state needs nothing here.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.ops.scheduling.catalog import write_keys
from pipeline.runs.locks import RouteBusy
from pipeline.state.place import shared

WAIT_SECONDS = float(os.environ.get("ROUTE_WRITER_WAIT", 3600))


def lease_name(key: tuple) -> str:
    """A target's lease name: short and the same on every machine."""
    return "dataset:" + hashlib.sha1(repr(key).encode()).hexdigest()[:20]


@contextmanager
def one_writer(plan, run) -> Iterator[None]:
    """Hold the leases of every target the run writes, for the block (nothing in a folder state)."""
    state = shared(run.state_dir)
    if state is None or not isinstance(plan.doc.data, dict):
        yield
        return
    from pipeline.state.leases import Lease, holder

    held = []
    try:
        for key in sorted(write_keys(plan.doc.data, plan.route_file, run.state_dir), key=repr):
            lease = Lease(state, lease_name(key), run.run_id)
            deadline, told = time.monotonic() + WAIT_SECONDS, False
            while not lease.acquire():
                if time.monotonic() > deadline:
                    raise RouteBusy(
                        f"route {plan.name}: another run has been writing {key[1] if len(key) > 1 else key} for "
                        f"{WAIT_SECONDS:g} s; this run was not started"
                    )
                if not told:
                    other = holder(state, lease.name) or {}
                    run.log.info(
                        "waiting for run %s (%s), which writes the same target %s",
                        other.get("owner", "?"),
                        other.get("holder", "?"),
                        key[-1],
                    )
                    told = True
                time.sleep(1.0)
            lease.keep(log=run.log)
            held.append(lease)
        yield
    finally:
        for lease in held:
            lease.release()

"""`route execute --cluster ADDRESS`: connect to a Dask scheduler, then run routes with
pipeline/ops/runner.py (lock, history, run log, after-run, summary) and the partitioned executor
of partitioned.py in place of the local one.

`distributed` is imported here only, when --cluster is given, so that `route --help` and every
local run stay quick and need no Dask.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from pipeline.basics.errors import RunFailed
from pipeline.engine.report import RunReport
from pipeline.ops.cluster.partitioned import PartitionedExecutor

# Seconds to wait for the scheduler to answer, and for at least one worker (ROUTE_CLUSTER_TIMEOUT).
CONNECT_TIMEOUT = 10.0


class ClusterUnreachable(RunFailed):
    """The Dask scheduler does not answer, or has no workers (exit 1, as a failed run)."""


@contextmanager
def quiet_dask():
    """Keep distributed's own log lines (tracebacks of connection attempts) off route's output for
    the block: route says what went wrong in one line of its own."""
    import logging

    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def connect(address: str, timeout: float | None = None):
    """A Dask client of the scheduler at `address`, with at least one worker; ClusterUnreachable if not."""
    from distributed import Client

    timeout = timeout if timeout is not None else float(os.environ.get("ROUTE_CLUSTER_TIMEOUT", CONNECT_TIMEOUT))
    hint = f"start one with `dask scheduler` (and workers with `dask worker {address}`), or check the address"
    try:
        with quiet_dask():  # distributed logs each failed attempt; the one message below says it all
            # direct_to_workers: rows come from the workers straight to this process, not through the
            # scheduler; the default client of this process, which the actors' proxies talk through
            client = Client(address, timeout=timeout, set_as_default=True, direct_to_workers=True)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = str(exc).split("\n")[0] or type(exc).__name__
        raise ClusterUnreachable(f"cannot reach the Dask scheduler at {address}: {reason}; {hint}") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        client.close()
        raise ClusterUnreachable(
            f"the Dask scheduler at {address} has no workers (waited {timeout:g} s): {exc or 'timed out'}; "
            f"start some with `dask worker {address}` on machines where route-etl is installed"
        ) from None
    return client


def window_of(client) -> int:
    """Partitions held on the workers at once: one per worker thread, and one more."""
    return sum(client.nthreads().values()) + 1


def run_on_cluster(route_file: str | Path, *, client, **options) -> RunReport:
    """Run one route as `route execute` does (ops/runner.py: lock, history, run log, after-run,
    summary), with the partitioned executor reading on the workers of `client`. RouteInvalid when
    the route cannot run partitioned (nothing ran)."""
    from pipeline.ops.runner import run_route

    def executor_for(plan, **kwargs):
        return PartitionedExecutor(plan, client, window=window_of(client), **kwargs)

    return run_route(route_file, executor_for=executor_for, **options)

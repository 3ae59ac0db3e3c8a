"""`route execute --cluster ADDRESS`: connect to a Dask scheduler, then run routes as
pipeline/ops/runner.py does (lock, history, run log, after-run, summary), with the partitioned
executor of partitioned.py in place of the local one.

`distributed` is imported here only, when --cluster is given, so that `route --help` and every
local run stay quick and need no Dask.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path

from rich.console import Console

from pipeline.basics.context import RunOptions
from pipeline.basics.errors import RouteInvalid, RunFailed
from pipeline.basics.plugins import Registry
from pipeline.basics.rejects import rejects_not_written
from pipeline.engine.report import RunReport
from pipeline.ops.afterrun import finish_run
from pipeline.ops.cluster.partitioned import PartitionedExecutor, cluster_problems
from pipeline.ops.console import ProgressView, summary
from pipeline.route.plan import build_plan
from pipeline.runs.history import History
from pipeline.runs.locks import route_lock
from pipeline.runs.recovery import clean_leftovers, open_journal
from pipeline.runs.runlog import DEFAULT_KEEP, RunLog

# Seconds to wait for the scheduler to answer, and for at least one worker (ROUTE_CLUSTER_TIMEOUT).
CONNECT_TIMEOUT = 10.0


class ClusterUnreachable(RunFailed):
    """The Dask scheduler does not answer, or has no workers (exit 1, as a failed run)."""


def connect(address: str, timeout: float | None = None):
    """A Dask client of the scheduler at `address`, with at least one worker; ClusterUnreachable if not."""
    import logging

    from distributed import Client

    timeout = timeout if timeout is not None else float(os.environ.get("ROUTE_CLUSTER_TIMEOUT", CONNECT_TIMEOUT))
    hint = f"start one with `dask scheduler` (and workers with `dask worker {address}`), or check the address"
    # distributed logs each failed attempt to connect; the one message below says it all
    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        # direct_to_workers: rows come from the workers straight to this process, not through the
        # scheduler; the default client of this process, which the actors' proxies talk through
        client = Client(address, timeout=timeout, set_as_default=True, direct_to_workers=True)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = str(exc).split("\n")[0] or type(exc).__name__
        raise ClusterUnreachable(f"cannot reach the Dask scheduler at {address}: {reason}; {hint}") from None
    finally:
        quiet.setLevel(level)
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


def run_on_cluster(
    route_file: str | Path,
    *,
    client,
    variables: Mapping[str, str],
    registry: Registry | None = None,
    state_dir: str | Path | None = None,
    options: RunOptions | None = None,
    quiet: bool = False,
    console: Console | None = None,
    profile: str | None = None,
) -> RunReport:
    """Plan one route, check it can run partitioned (RouteInvalid if not: nothing ran), and run it
    with the workers of `client`; the summary is printed on `console` when given."""
    plan = build_plan(
        route_file,
        variables=variables,
        registry=registry or Registry.discover(),
        state_dir=state_dir,
        options=options,
        profile=profile,
    )
    run = plan.run
    dry = run.options.dry_run
    with nullcontext() if dry else route_lock(run.state_dir, plan.name):
        progress = ProgressView(quiet=quiet)
        executor = PartitionedExecutor(
            plan,
            client,
            window=window_of(client),
            progress=progress,
            open_journal=lambda deliveries, started: open_journal(plan, run, deliveries, started),
        )
        executor.prepare()
        problems = cluster_problems(plan, executor.source)
        if problems:
            raise RouteInvalid(problems)
        logs = (plan.project.setting("logs", {}) if plan.project is not None else {}) or {}
        run_log = RunLog(
            run.state_dir,
            plan.name,
            run.run_id,
            run.mask,
            fmt=logs.get("format", "plain"),
            level=logs.get("level", "info"),
            keep=logs.get("keep", DEFAULT_KEEP),
            to_file=not dry,
        )
        run.log = run_log.logger
        if not quiet:
            run_log.echo_warnings()
        try:
            run_log.info(
                f"route {plan.name} run {run.run_id} started on the Dask cluster at {client.scheduler.address}",
                route_file=str(plan.route_file),
                state=str(run.state_dir),
                profile=profile,
                dry_run=dry,
            )
            history = History(run.state_dir)
            if not dry:
                history.settle(plan.name)
                run.leftovers = clean_leftovers(run.state_dir, plan.name, run.log)
            history.start(executor.report)
            progress.start(plan.name)
            try:
                with rejects_not_written() if dry else nullcontext():
                    report = executor.execute()
            finally:
                progress.stop()
                run_log.stop_echo()
            if run.rejects is not None and not run.rejects.to_file:
                report.first_rejects = list(run.rejects.first)
            history.finish(report)
            run_log.info(
                f"route {report.route} run {report.run_id} ended: {report.status}; {report.rows_read:,} rows read, "
                f"{report.rows_rejected:,} rejected, {report.rows_delivered:,} delivered in {report.seconds:.2f} s"
                + (f"; error: {report.error}" if report.error else ""),
                status=report.status,
            )
            if not dry:
                finish_run(plan, report, run.log, run_log.path)
        finally:
            run_log.close()
    if console is not None:
        summary(report, console)
    return report

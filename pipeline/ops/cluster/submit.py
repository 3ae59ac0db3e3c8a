"""`route schedule --cluster`: the scheduler submits each due run to a Dask cluster.

The scheduler decides what is due as it does on one machine; here a run becomes a Dask task
(scheduled.py) instead of a process of its own. Several schedulers may run for failover: only the
one holding the `scheduler` lease of the shared state submits, renewing it every tick; another
takes over within one lease period of the leader's death. Before a run is submitted it is recorded
in the shared history as `queued`, with its schedule slot, so that a scheduler taking over sees it
and never submits that slot again; tasks are fire-and-forget, so they run even when the
scheduler that submitted them is gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

from pipeline.basics.errors import RunFailed
from pipeline.state.place import SharedState, shared

ADOPT_EVERY = 60.0  # seconds between checks for queued runs the cluster does not have


class ClusterNeedsSharedState(RunFailed):
    """--cluster with a state folder: workers on other machines could not reach it."""


def shared_state_of(entries, state_option) -> SharedState:
    """The one database state every scheduled route uses (the leader lease lives there)."""
    states = {shared(e.state_dir).url: shared(e.state_dir) for e in entries if shared(e.state_dir) is not None}
    folders = [e for e in entries if shared(e.state_dir) is None and not e.problem]
    if folders or not states:
        names = ", ".join(e.name for e in folders[:5]) or "every route"
        raise ClusterNeedsSharedState(
            f"route schedule --cluster runs routes on other machines, so their state must be a database "
            f"they all reach: {names} keep{'s' if len(folders) == 1 else ''} state in a folder. Give "
            f"`state: postgresql://...` in defaults.yaml, or --state postgresql://... (docs/cluster.md)"
        )
    if len(states) > 1:
        raise ClusterNeedsSharedState(
            "route schedule --cluster: the routes use different state databases ("
            + ", ".join(sorted(str(s) for s in states.values()))
            + "); schedule each set with a scheduler of its own"
        )
    return next(iter(states.values()))


class ClusterLauncher:
    """Submits runs to the Dask scheduler at `address` while holding the leader lease."""

    def __init__(
        self,
        address: str,
        log: logging.Logger,
        sets: Mapping[str, str] | None = None,
        client=None,
        profile: str | None = None,
    ):
        from pipeline.ops.cluster.execute_run import connect

        self.address, self.log, self.sets, self.profile = address, log, dict(sets or {}), profile
        _one_line_dask_logs()
        self.client = client or connect(address)
        self.lease = None
        self.leading_now: bool | None = None
        self.adopted: float | None = None  # when queued runs were last checked against the cluster
        self.away_since: float | None = None  # the Dask scheduler cannot be reached since then

    def connected(self) -> bool:
        """Is the Dask client up? A client that gave up on a scheduler that went away is replaced
        by a new connection when the scheduler answers again (tried every tick)."""
        from pipeline.ops.cluster.execute_run import connect, quiet_dask

        if self.client.status == "running":
            return True
        if self.away_since is None:
            self.away_since = time.monotonic()
            self.log.warning(
                "lost the Dask scheduler at %s; submitting nothing until it answers again (due runs "
                "wait, and run once it is back)",
                self.address,
            )
        try:
            with quiet_dask():
                self.client.close()
        except Exception:
            pass
        try:
            self.client = connect(self.address, timeout=2.0)
        except RunFailed:
            return False
        self.log.info("the Dask scheduler at %s answers again", self.address)
        self.away_since, self.adopted = None, None  # check at once what it lost
        return True

    def leading(self, state: SharedState) -> bool:
        """Take or renew the leader lease; True while this scheduler is the one that submits (and
        its Dask scheduler answers)."""
        from pipeline.state.leases import Lease, holder

        if not self.connected():
            return False
        if self.lease is None or self.lease.state.url != state.url:
            self.lease = Lease(state, "scheduler")
        try:
            now = self.lease.acquire()
        except Exception as exc:  # the state database is unreachable: submit nothing
            self.log.warning("cannot reach the state %s to renew the leader lease: %s", state, exc)
            now = False
        if now != self.leading_now:
            if now:
                self.log.info("leading: this scheduler submits the due runs to %s", self.address)
            else:
                other = holder(state, "scheduler") or {}
                self.log.info(
                    "standing by: the scheduler in %s submits the runs", other.get("holder", "another process")
                )
        self.leading_now = now
        if now and (self.adopted is None or time.monotonic() - self.adopted > ADOPT_EVERY):
            self.adopted = time.monotonic()
            try:
                self.adopt(state)
            except Exception as exc:  # the Dask scheduler is away: try again later
                self.log.warning("could not check the cluster for queued runs: %s", exc)
        return now

    def adopt(self, state: SharedState) -> int:
        """On taking the lead, and every minute: runs recorded as queued that the cluster does not
        have (a leader died between the two, or the Dask scheduler restarted) are submitted again,
        under their run ids; how many."""
        from pipeline.runs.history import History

        queued = History(state).runs(status="queued", limit=1000)
        if not queued:
            return 0
        keys = {task_key(r["route"], r["run_id"]): r for r in queued}
        known = set(self.client.run_on_scheduler(_known_keys, keys=list(keys)))
        lost = [r for key, r in keys.items() if key not in known]
        for row in lost:
            self.log.info(
                "%s: run %s was queued but never reached the cluster; submitting it now", row["route"], row["run_id"]
            )
            spec = {
                "route_file": row["route_file"],
                "run_id": row["run_id"],
                "slot": row["slot"],
                "state": state.url,
                "profile": self.profile,
                "sets": self.sets,
            }
            self._send(row["route"], spec, None)
        return len(lost)

    def submit(self, job, profile: str | None, state_option, on_done) -> None:
        """Record the run as queued, then hand it to the cluster; `on_done(job)` once it ends."""
        from pipeline.ops.scheduling.jobs import Outcome
        from pipeline.runs.history import History

        entry = job.entry
        History(entry.state_dir).queue(entry.name, str(entry.file), job.run_id, job.slot)
        spec = {
            "route_file": str(Path(entry.file).resolve()),
            "run_id": job.run_id,
            "slot": job.slot.isoformat(),
            "profile": profile,
            "state": str(state_option) if state_option and not isinstance(state_option, SharedState) else None,
            "sets": self.sets,
        }
        if isinstance(state_option, SharedState):
            spec["state"] = state_option.url
        resources = entry.data.get("resources") if isinstance(entry.data, dict) else None
        try:
            future = job.future = self._send(entry.name, spec, resources)
        except Exception as exc:  # the cluster went away since this tick began: it stays queued
            job.outcome = Outcome("lost", f"not submitted ({exc}); it stays queued until the cluster is back")
            on_done(job)
            return

        def finished(fut):
            if fut.cancelled() or _cancelled(fut):  # the Dask scheduler went away with it
                job.outcome = Outcome(
                    "lost",
                    "the cluster lost the run (its scheduler went away): a run that had not started is "
                    "submitted again once the cluster is back; one that had is settled from its journal",
                )
            else:
                try:
                    data = fut.result()
                    job.outcome = Outcome(**{k: v for k, v in data.items() if k in Outcome.__dataclass_fields__})
                except Exception as exc:  # KilledWorker: Dask gave up on it; the history says the rest
                    job.outcome = Outcome("crashed", f"{type(exc).__name__}: {exc}")
            on_done(job)

        future.add_done_callback(finished)

    def _send(self, route: str, spec: dict, resources):
        """Submit the task; it runs to its end even if this scheduler goes away (fire and forget)."""
        from distributed import fire_and_forget

        from pipeline.ops.cluster.scheduled import run_scheduled

        future = self.client.submit(
            run_scheduled, spec, key=task_key(route, spec["run_id"]), pure=False, resources=_resources(resources)
        )
        fire_and_forget(future)
        return future

    def close(self) -> None:
        if self.lease is not None and self.lease.held:
            try:
                self.lease.release()
            except Exception:
                pass
        self.client.close()


class _NoTraceback(logging.Filter):
    """distributed's own log lines, as one line each: its tracebacks (of a scheduler it lost) say
    nothing a route user can act on, and route logs what happened in its own words."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def _one_line_dask_logs() -> None:
    for name in ("distributed", "distributed.client", "distributed.core", "distributed.comm"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTraceback) for f in logger.filters):
            logger.addFilter(_NoTraceback())


def _cancelled(fut) -> bool:
    try:
        fut.result(timeout=0)
    except Exception as exc:
        return type(exc).__name__ in ("FutureCancelledError", "CancelledError")
    return False


def task_key(route: str, run_id: str) -> str:
    return f"route-{route}-{run_id}"


def _known_keys(dask_scheduler, keys: list[str]) -> list[str]:
    """Run on the Dask scheduler: which of these task keys it holds."""
    return [k for k in keys if k in dask_scheduler.tasks]


def _resources(hint) -> dict | None:
    """A route's `resources:` as Dask resources: {memory: 4GB} -> {"MEMORY": 4e9}."""
    if not isinstance(hint, dict) or not hint:
        return None
    from dask.utils import parse_bytes

    out = {}
    for name, value in hint.items():
        out[str(name).upper()] = float(parse_bytes(value)) if isinstance(value, str) else float(value)
    return out

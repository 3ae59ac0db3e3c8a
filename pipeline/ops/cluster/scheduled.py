"""A scheduled run as a Dask task: what a worker does with a run the scheduler submitted.

The task runs the route in the worker's process, against the shared (database) state, under the
run id the scheduler gave it. Dask runs a task again elsewhere when its worker dies; the task then
finds its earlier attempt in the history (still `running`, its lease running out), waits for that
lease to expire, and runs the route again as attempt `RUN_ID-rN`, up to the route's `retries:`:

- an upsert, a replace or a sync simply runs again (they are safe to repeat);
- an append resumes from what the dead attempt's journal says arrived (--resume), never blindly;
  when the journal cannot tell (rows in doubt that cannot be checked), the run fails and says so.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

DEFAULT_RETRIES = 2


def attempt_ids(run_id: str, retries: int) -> list[str]:
    """The run ids of a scheduled run's attempts, in order."""
    return [run_id] + [f"{run_id}-r{n}" for n in range(1, retries + 1)]


def run_scheduled(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one scheduled route on this worker; the Outcome as a dict (never raises)."""
    from pipeline.basics.context import RunOptions
    from pipeline.basics.errors import RouteInvalid
    from pipeline.ops.scheduling.catalog import delivery_of, load_entry
    from pipeline.ops.scheduling.jobs import Outcome
    from pipeline.runs.history import History
    from pipeline.runs.locks import RouteBusy

    variables = {**os.environ, **spec.get("sets", {})}
    entry = load_entry(Path(spec["route_file"]), variables, spec.get("profile"), spec.get("state"))
    if entry.problem:
        return Outcome("invalid", entry.problem).__dict__
    retries = int(entry.data.get("retries", DEFAULT_RETRIES)) if isinstance(entry.data, dict) else DEFAULT_RETRIES
    history = History(entry.state_dir)
    ids = attempt_ids(spec["run_id"], retries)
    run_id, earlier, ended = _this_attempt(history, ids)
    if ended is not None:  # the worker died after the run ended, before Dask heard of it
        return Outcome(
            ended["status"],
            ended.get("error") or "",
            ended.get("rows_read") or 0,
            ended.get("rows_rejected") or 0,
            ended.get("rows_delivered") or 0,
        ).__dict__ | {"run_id": ended["run_id"]}
    if run_id is None:
        return _give_up(entry, history, ids).__dict__
    if earlier is not None:
        _wait_for_lease(entry, earlier)
    appends = any((delivery_of(t) or ("", {}))[1].get("mode") == "append" for t in entry.data.get("targets") or [])
    options = RunOptions(resume=bool(earlier and appends))
    try:
        from pipeline.ops.runner import run_route

        if run_id != spec["run_id"]:
            history.queue(entry.name, str(entry.file), run_id, _slot(spec), attempt=ids.index(run_id) + 1)
        report = run_route(
            entry.file,
            variables=variables,
            state_dir=spec.get("state"),
            options=options,
            quiet=True,
            profile=spec.get("profile"),
            run_id=run_id,
        )
        return Outcome.from_report(report).__dict__ | {"run_id": run_id}
    except RouteInvalid as exc:
        return Outcome("invalid", str(exc)).__dict__
    except RouteBusy as exc:
        return Outcome("busy", str(exc)).__dict__


def _slot(spec):
    import datetime as dt

    return dt.datetime.fromisoformat(spec["slot"])


def _this_attempt(history, ids: list[str]) -> tuple[str | None, str | None, dict | None]:
    """(this attempt's run id, the attempt before it, the attempt that already ended) from the history."""
    earlier = None
    for run_id in ids:
        row = history.get(run_id)
        if row is None or row["status"] == "queued":
            return run_id, earlier, None
        if row["status"] not in ("running", "interrupted"):
            return None, earlier, row
        earlier = run_id
    return None, earlier, None


def _wait_for_lease(entry, earlier: str) -> None:
    """The attempt before died with its worker: wait until its lease on the route runs out."""
    from pipeline.state.leases import holder, lease_seconds
    from pipeline.state.place import shared

    state = shared(entry.state_dir)
    if state is None:
        return
    deadline = time.monotonic() + 2 * lease_seconds() + 5
    while time.monotonic() < deadline:
        found = holder(state, f"route:{entry.name}")
        if found is None or found["owner"] != earlier:
            return
        time.sleep(0.5)


def _give_up(entry, history, ids: list[str]):
    """Every attempt's worker died: record it as a failed run, with what each attempt left."""
    from pipeline.engine.report import RunReport
    from pipeline.ops.scheduling.jobs import Outcome

    history.settle(entry.name)
    error = (
        f"the run was tried {len(ids)} times and each time its worker died (retries: {len(ids) - 1}); "
        f"see `route history {entry.name}` for what each attempt delivered"
    )
    report = RunReport(entry.name, str(entry.file), ids[-1] + "-gave-up", started=time.time(), ended=time.time())
    report.status, report.error = "failed", error
    history.finish(report)
    return Outcome("failed", error)

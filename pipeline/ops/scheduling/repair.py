"""`route status --repair`: deal now with what interrupted runs left, as the next run would.

Killed runs are recorded as interrupted, their temporary files and spools removed, and the
revisions they left open on a portal discarded through the route's own delivery (which holds the
credentials). Each thing done is said in one line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

from pipeline.basics.errors import RouteError
from pipeline.ops.scheduling.catalog import RouteEntry
from pipeline.runs.history import History
from pipeline.runs.recovery import clean_leftovers


class _Said(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def repair_route(entry: RouteEntry, variables: Mapping[str, str], profile: str | None) -> Iterator[str]:
    """Lines saying what was cleaned up for one route."""
    if entry.problem:
        return
    settled = History(entry.state_dir).settle(entry.name)
    if settled:
        yield f"{entry.name}: recorded {settled} run(s) as interrupted"
    said = _Said()
    log = logging.getLogger(f"route.repair.{entry.name}")
    log.addHandler(said)
    log.setLevel(logging.INFO)
    try:
        revisions = clean_leftovers(entry.state_dir, entry.name, log)
        if revisions:
            yield from _discard(entry, variables, profile, revisions, log)
    finally:
        log.removeHandler(said)
    for line in said.lines:
        yield f"{entry.name}: {line}"


def _discard(entry: RouteEntry, variables, profile, revisions: dict, log) -> Iterator[str]:
    """Open each target that left a revision (connecting is all), so that it discards them."""
    from pipeline.basics.plugins import Registry
    from pipeline.engine.executor import Executor
    from pipeline.route.plan import build_plan

    try:
        plan = build_plan(
            entry.file, variables=variables, registry=Registry.discover(), state_dir=entry.state_dir, profile=profile
        )
        plan.run.log = log
        plan.run.leftovers = revisions
        deliveries = Executor(plan).deliveries
    except RouteError as exc:
        yield f"{entry.name}: cannot discard the revisions left open: {str(exc).splitlines()[0]}"
        return
    for target, delivery in zip(plan.targets, deliveries):
        if target.name not in revisions:
            continue
        try:
            delivery.open([])
        except RouteError as exc:
            yield f"{entry.name}: target {target.name}: cannot discard the revisions left open: {exc}"
        finally:
            delivery.abort(None)

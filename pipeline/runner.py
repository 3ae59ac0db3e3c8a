"""One route, planned and run: history before and after, progress while it runs, a summary at the end.

This is what `route execute` (and the scheduler) call; it returns the report and raises only
RouteInvalid (nothing ran). Run failures are in the report, recorded in the history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from rich.console import Console

from .console import ProgressView, summary
from .context import RunOptions
from .executor import Executor
from .history import History
from .plan import build_plan
from .plugins import Registry
from .report import RunReport


def run_route(route_file: str | Path, *, variables: Mapping[str, str], registry: Registry | None = None,
              state_dir: str | Path | None = None, options: RunOptions | None = None, quiet: bool = False,
              console: Console | None = None) -> RunReport:
    """Plan and execute one route; print its summary on `console` when given."""
    plan = build_plan(route_file, variables=variables, registry=registry or Registry.discover(),
                      state_dir=state_dir, options=options)
    progress = ProgressView(quiet=quiet)
    history = History(plan.run.state_dir)
    executor = Executor(plan, progress=progress)
    history.start(executor.report)
    progress.start(plan.name)
    try:
        report = executor.execute()
    finally:
        progress.stop()
    history.finish(report)
    if console is not None:
        summary(report, console)
    return report

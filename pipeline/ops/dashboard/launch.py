"""Run now and dry run from the dashboard: a child process, as the scheduler starts one.

A run is `python -m pipeline.ops.scheduling.worker --run-id ID ROUTE` (jobs.py's worker: it takes
the route's lock itself, so a route already running is refused as busy, and writes its history,
log, report and journal like any run); its stderr goes to the run's log file, as the scheduler's
children do. A dry run is `route execute --dry-run` (`python -m pipeline.cli`). The dashboard keeps
no state of its own about them beyond the moment before the run's history row exists.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

from pipeline.ops.scheduling.catalog import RouteEntry
from pipeline.route.plan import new_run_id
from pipeline.runs.runlog import log_path


class Launcher:
    def __init__(self, variables: dict[str, str], state=None, profile: str | None = None):
        self.variables, self.state, self.profile = variables, state, profile
        self.started: dict[str, tuple[str, float]] = {}  # run id -> (route, when), until it shows in history
        self.outcomes: dict[str, dict] = {}  # run id -> how its process ended
        self._lock = threading.Lock()

    def _common(self) -> list[str]:
        args = []
        if self.profile:
            args += ["--profile", self.profile]
        if self.state:
            args += ["--state", str(self.state)]
        return args

    def run_now(self, entry: RouteEntry) -> str:
        """Start a run of `entry`; returns its run id."""
        run_id = new_run_id()
        args = [sys.executable, "-m", "pipeline.ops.scheduling.worker", "--run-id", run_id, *self._common()]
        log_file = log_path(entry.state_dir, entry.name, run_id)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as stderr:
            self._start([*args, str(entry.file)], stderr, run_id)
        with self._lock:
            self.started[run_id] = (entry.name, time.time())
        return run_id

    def dry_run(self, entry: RouteEntry) -> None:
        """Start `route execute --dry-run` for `entry` (it writes its line in the run history)."""
        args = [sys.executable, "-m", "pipeline.cli", "execute", "--dry-run", "-q", *self._common()]
        self._start([*args, str(entry.file)], subprocess.DEVNULL)

    def _start(self, args: list[str], stderr, run_id: str | None = None) -> None:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if run_id else subprocess.DEVNULL,
            stderr=stderr,
            env=dict(self.variables),
            start_new_session=True,  # Ctrl-C on the dashboard does not stop its runs
        )

        def wait():
            out, _ = process.communicate()
            if run_id:  # the worker's last line: its Outcome, which says why a run never started
                outcome = parse_outcome((out or b"").decode("utf-8", "replace"), process.returncode)
                with self._lock:
                    self.outcomes[run_id] = outcome

        threading.Thread(target=wait, name="route-dashboard-run", daemon=True).start()

    def pending(self, run_id: str) -> str | None:
        """The route of a run started here that has not reached its history yet (for 10 minutes)."""
        with self._lock:
            found = self.started.get(run_id)
            if found and time.time() - found[1] > 600:
                del self.started[run_id]
                self.outcomes.pop(run_id, None)
                return None
        return found[0] if found else None

    def outcome(self, run_id: str) -> dict | None:
        """How the process of a run started here ended (status, error), once it has."""
        with self._lock:
            return self.outcomes.get(run_id)


def parse_outcome(stdout: str, code: int) -> dict:
    """The worker's Outcome line (pipeline/ops/scheduling/jobs.py), or what its exit code says."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                break
            if isinstance(data, dict):
                return {"status": str(data.get("status") or "crashed"), "error": str(data.get("error") or "")}
    how = f"was killed by signal {-code}" if code < 0 else f"ended with exit code {code}"
    return {"status": "crashed", "error": f"the run process {how} before reporting a result; see its log file"}

"""Faults as they happen: a portal served in its own process, `route execute` in another, killed by a
signal part way. Shared by the kill-campaign tests."""

from __future__ import annotations

import signal
import subprocess
import textwrap
import time
from pathlib import Path

from portalkit import AUTH_YAML, ROUTE, ROUTE_ARGS

# The portal: the `portal_process` fixture (tests/portalkit.py), with a dataset of CASES.
CASES = [
    {"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
    {"fieldName": "amount", "name": "Amount", "dataTypeName": "number"},
]


def case_ids(portal, ds: str) -> list[str]:
    """Every row's case_id, as a reader sees them over SODA (in no particular order)."""
    return [row["case_id"] for row in portal.rows(ds, **{"$select": "case_id", "$order": None})]


def write_cases(path: Path, rows: int, start: int = 1, amount: float = 1.0) -> Path:
    """`rows` cases C-000001... with amounts, written fast (no Python loop per row)."""
    import numpy as np
    import pandas as pd

    ids = np.arange(start, start + rows)
    frame = pd.DataFrame({"case_id": pd.Series(ids).map("C-{:07d}".format), "amount": ids * amount})
    frame.to_csv(path, index=False)
    return path


def socrata_route(
    folder: Path,
    url: str,
    ds: str,
    mode: str,
    *,
    rows_file: str = "cases.csv",
    batch_rows: int = 2000,
    extra_targets: str = "",
    row_identifier: str | None = None,
    name: str = "kill",
) -> Path:
    ri = f"\n                row_identifier: {row_identifier}" if row_identifier else ""
    text = f"""
        name: {name}
        source:
          csv: {{path: {rows_file}}}
        source_transforms:
          - cast: {{amount: number}}
        targets:
          - name: portal
            deliver:
              socrata:
                domain: {url}
                dataset: {ds}
                mode: {mode}
                batch_rows: {batch_rows}
                concurrency: 2{ri}
                {AUTH_YAML}
    """
    path = folder / "route.yaml"
    path.write_text(
        textwrap.dedent(text).lstrip() + textwrap.indent(textwrap.dedent(extra_targets), "  "), encoding="utf-8"
    )
    return path


def execute(route: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*ROUTE, "execute", str(route), *ROUTE_ARGS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=route.parent,
    )


def start(route: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*ROUTE, "execute", str(route), *ROUTE_ARGS, "-q", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=route.parent,
    )


def held_for(condition, seconds: float):
    """A kill point: `condition()` has been true for `seconds` (some chunks into a load, say)."""
    since: list[float] = []

    def ready() -> bool:
        if not condition():
            return False
        since[:] = since or [time.monotonic()]
        return time.monotonic() - since[0] >= seconds

    return ready


def kill_when(proc: subprocess.Popen, ready, timeout: float = 120, sig=signal.SIGKILL) -> None:
    """Kill `proc` with `sig` as soon as `ready()` is true (polled), or fail if it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended (exit {proc.returncode}) before the kill point: {out}{err}")
        if ready():
            proc.send_signal(sig)
            proc.communicate(timeout=60)
            return
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the kill point was never reached")

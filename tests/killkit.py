"""Faults as they happen: a portal served in its own process, `route execute` in another, killed by a
signal part way. Shared by the kill-campaign tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import requests

USER, SECRET = "publisher", "Kill-campaign-s3cret-71"
ROUTE = [sys.executable, "-m", "pipeline.cli"]


class PortalProcess:
    """`route portal serve --port 0` in its own process on 127.0.0.1."""

    def __init__(self, data: Path, *extra: str):
        self.data = data
        self.proc = subprocess.Popen(
            [*ROUTE, "portal", "serve", "--port", "0", "--data", str(data), "--user", f"{USER}:{SECRET}", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        first = self.proc.stdout.readline()
        if not first.startswith("Local portal at "):
            self.proc.kill()
            raise AssertionError(f"route portal serve did not start: {first}{self.proc.stderr.read()}")
        self.url = first.split()[3]

    def create(self, row_identifier: str | None) -> str:
        from pipeline.portal import LocalPortal

        columns = [
            {"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
            {"fieldName": "amount", "name": "Amount", "dataTypeName": "number"},
        ]
        return LocalPortal(self.data).create_dataset(name="Cases", columns=columns, row_identifier=row_identifier)

    def count(self, ds: str) -> int:
        r = requests.get(
            f"{self.url}/resource/{ds}.json", params={"$select": "count(*)"}, auth=(USER, SECRET), timeout=30
        )
        r.raise_for_status()
        return int(next(iter(r.json()[0].values())))

    def ids(self, ds: str) -> list[str]:
        r = requests.get(
            f"{self.url}/resource/{ds}.json",
            params={"$select": "case_id", "$limit": "10000000"},
            auth=(USER, SECRET),
            timeout=120,
        )
        r.raise_for_status()
        return [row["case_id"] for row in r.json()]

    def open_revisions(self, ds: str) -> list:
        r = requests.get(
            f"{self.url}/api/publishing/v1/revision/{ds}", params={"open": "true"}, auth=(USER, SECRET), timeout=30
        )
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


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
                auth: {{username: {USER}, password: "${{PORTAL_PW}}"}}
    """
    path = folder / "route.yaml"
    path.write_text(
        textwrap.dedent(text).lstrip() + textwrap.indent(textwrap.dedent(extra_targets), "  "), encoding="utf-8"
    )
    return path


def execute(route: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*ROUTE, "execute", str(route), "--set", f"PORTAL_PW={SECRET}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=route.parent,
    )


def start(route: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*ROUTE, "execute", str(route), "--set", f"PORTAL_PW={SECRET}", "-q", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=route.parent,
    )


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

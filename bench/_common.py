"""Pieces the side-by-side benchmarks share: the sink in a process of its own, the datasets of a
local portal, and the load average.

The process runner (`timed`, wall seconds and peak RSS through os.wait4) lives in bench_socrata.py
and is imported from there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent


class SinkProcess:
    """bench/sink.py in its own process, serving a dataset with `columns` ((field, type) pairs)."""

    def __init__(self, columns: list[tuple[str, str]], row_id: str | None = None):
        spec = ",".join(f"{f}:{t}" for f, t in columns)
        cmd = [sys.executable, str(HERE / "sink.py"), "--columns", spec, "--max-seconds", "7200"]
        if row_id:
            cmd += ["--row-id", row_id]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = f"http://127.0.0.1:{self.proc.stdout.readline().split()[1]}"

    def reset(self) -> None:
        requests.post(self.url + "/reset", timeout=10)

    def stats(self) -> dict:
        return requests.get(self.url + "/stats", timeout=10).json()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


class PortalDatasets:
    """A portal's side that the benches drive: a fresh published dataset of `columns` per run, and
    the rows it holds afterwards. Each bench's Portal serves the portal its own way, then calls
    `connect` with the URL it serves on."""

    columns: list[tuple[str, str]] = []
    row_id = "id"

    def connect(self, url: str, user: str, secret: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.auth = (user, secret)
        self.n = 0

    def dataset(self, name: str | None = None) -> str:
        self.n += 1
        body = {
            "name": name or f"bench {self.n}",
            "columns": [{"fieldName": f, "name": f, "dataTypeName": t} for f, t in self.columns],
            "metadata": {"rowIdentifier": self.row_id},
        }
        view = self.session.post(self.url + "/api/views.json", json=body, timeout=60).json()
        self.session.post(f"{self.url}/api/views/{view['id']}/publication.json", timeout=60)
        return view["id"]

    def rows(self, dataset: str) -> int:
        body = self.session.get(
            f"{self.url}/resource/{dataset}.json", params={"$select": "count(*)"}, timeout=600
        ).json()
        return int(next(iter(body[0].values())))


def bytecode_env() -> dict[str, str]:
    """The environment for a timed run: Python's bytecode cache on, as it is for an installed package
    (pip compiles it at install). Where PYTHONDONTWRITEBYTECODE is set, as on our machines, route
    from a source checkout would compile about a hundred of its modules again on every start (about
    0.2 s a run); see warm_bytecode."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def warm_bytecode(*trees: Path) -> None:
    """Compile route's packages in each source tree once, before the clock starts."""
    for tree in trees:
        folders = [str(tree / name) for name in ("pipeline", "transforms") if (tree / name).is_dir()]
        subprocess.run([sys.executable, "-m", "compileall", "-q", *folders], check=True, stdout=subprocess.DEVNULL)


def load() -> str:
    """The 1, 5 and 15-minute load averages, as `uptime` prints them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())

"""Factories for the socrata tests: a served local portal, datasets, frames, and one delivery run.

Everything talks real HTTP to a real LocalPortal on 127.0.0.1; rows are read back over SODA
(`GET /resource/{4x4}.json`), as any client would see them.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import requests

from pipeline.basics import dtypes as D
from pipeline.basics.context import RunContext, RunOptions, StepContext
from pipeline.basics.rejects import RejectSink
from pipeline.deliveries.socrata import SocrataDelivery
from pipeline.portal import LocalPortal

USER, SECRET = "publisher", "pa55-W0rd-sekrit"
AUTH = {"username": USER, "password": SECRET}

CASES = [
    {"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
    {"fieldName": "amount", "name": "Amount", "dataTypeName": "number"},
    {"fieldName": "opened", "name": "Opened", "dataTypeName": "calendar_date"},
    {"fieldName": "closed", "name": "Closed", "dataTypeName": "checkbox"},
]


@dataclass
class Portal:
    local: LocalPortal
    server: object

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def faults(self):
        return self.local.faults

    def create(self, columns=None, row_identifier="case_id", name="Cases") -> str:
        return self.local.create_dataset(name=name, columns=columns or CASES, row_identifier=row_identifier)

    def rows(self, dataset: str, select: str | None = None) -> list[dict]:
        """Every row, over SODA, in :id order (system fields left out)."""
        params = {"$order": ":id", "$limit": "100000"}
        if select:
            params["$select"] = select
        r = requests.get(f"{self.url}/resource/{dataset}.json", params=params, auth=(USER, SECRET), timeout=30)
        r.raise_for_status()
        return r.json()

    def sorted_rows(self, dataset: str, key: str = "case_id") -> list[dict]:
        return sorted(self.rows(dataset), key=lambda r: r.get(key, ""))


@pytest.fixture
def portal(tmp_path):
    local = LocalPortal(tmp_path / "portal.sqlite", users={USER: SECRET})
    server = local.serve(host="127.0.0.1", port=0)
    try:
        yield Portal(local, server)
    finally:
        server.stop()
        local.close()


def frame(data: dict, types: dict | None = None, first_line: int = 2, source: str = "cases.csv") -> pd.DataFrame:
    """A chunk as a source makes it: Arrow-backed columns, index = source line."""
    types = types or {}
    n = len(next(iter(data.values())))
    cols = {}
    for name, values in data.items():
        dtype = types.get(name)
        if dtype is None:
            sample = next((v for v in values if v is not None), "")
            dtype = {bool: D.BOOLEAN, int: D.INTEGER, float: D.NUMBER, dt.datetime: D.DATETIME, dt.date: D.DATE}.get(
                type(sample), D.TEXT
            )
        cols[name] = pd.array(values, dtype=dtype)
    df = pd.DataFrame(cols, index=pd.RangeIndex(first_line, first_line + n))
    df.attrs["source"] = source
    return df


def cases(n: int = 3, first: int = 1, amount: float = 10.0, **extra) -> pd.DataFrame:
    data = {
        "case_id": [f"C-{i:04d}" for i in range(first, first + n)],
        "amount": [amount + i for i in range(first, first + n)],
        "opened": [dt.datetime(2024, 1, 1, 9, 30) + dt.timedelta(days=i) for i in range(first, first + n)],
        "closed": [i % 2 == 0 for i in range(first, first + n)],
    }
    data.update(extra)
    return frame(data, first_line=first + 1)


@dataclass
class Run:
    result: object
    ctx: StepContext
    tmp: Path

    @property
    def rejects(self) -> str:
        path = self.ctx.run.rejects.path
        return path.read_text() if path.exists() else ""


@pytest.fixture
def deliver(tmp_path):
    """deliver(options, *frames, dry_run=False, force=False) -> Run; raises what the delivery raises."""
    count = {"n": 0}

    def run(
        options: dict,
        *frames: pd.DataFrame,
        dry_run: bool = False,
        force: bool = False,
        route_name: str = "test-route",
        target: str = "portal",
        open_columns=None,
    ) -> Run:
        count["n"] += 1
        rejects = RejectSink(tmp_path / f"rejects-{count['n']}.csv")
        ctx = StepContext(
            run=RunContext(
                route_name=route_name,
                route_file=tmp_path / "route.yaml",
                state_dir=tmp_path / ".route",
                run_id=f"run{count['n']}",
                options=RunOptions(dry_run=dry_run, force=force),
                rejects=rejects,
                log=logging.getLogger("route.test"),
            ),
            stage="deliver",
            step="socrata",
            line=14,
            target=target,
        )
        opts = {"auth": dict(AUTH), "backoff": 0.01, **options}
        d = SocrataDelivery(opts, ctx)
        try:
            d.open(open_columns if open_columns is not None else (list(frames[0].columns) if frames else []))
            for f in frames:
                d.write(f)
            result = d.close()
        except BaseException as exc:
            d.abort(exc)
            raise
        finally:
            rejects.close()
        return Run(result, ctx, tmp_path)

    return run

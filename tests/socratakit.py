"""Helpers for the socrata tests: frames as a source makes them, the CASES dataset, and one delivery run.

The portal they deliver to is tests/portalkit.py's (the `portal` fixture); `Deliveries(tmp_path)` is
the `deliver` fixture of tests/conftest.py. Rows are read back over SODA with `portal.rows`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from portalkit import SECRET, USER

from pipeline.basics import dtypes as D
from pipeline.basics.context import RunContext, RunOptions, StepContext
from pipeline.basics.rejects import RejectSink
from pipeline.deliveries.socrata import SocrataDelivery

ROUTE_AUTH = {"username": USER, "password": SECRET}  # a delivery's or source's `auth:` option

CASES = [
    {"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
    {"fieldName": "amount", "name": "Amount", "dataTypeName": "number"},
    {"fieldName": "opened", "name": "Opened", "dataTypeName": "calendar_date"},
    {"fieldName": "closed", "name": "Closed", "dataTypeName": "checkbox"},
]


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
    """`n` rows for CASES: C-0001... with amounts, opened dates and closed flags."""
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


class Deliveries:
    """deliver(options, *frames, dry_run=False, force=False) -> Run: one SocrataDelivery run, as the
    executor drives it (open, write each frame, close; abort on failure), with USER's credentials
    unless `options` give others; raises what the delivery raises. State goes under `tmp`."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.n = 0

    def __call__(
        self,
        options: dict,
        *frames: pd.DataFrame,
        dry_run: bool = False,
        force: bool = False,
        route_name: str = "test-route",
        target: str = "portal",
        open_columns=None,
    ) -> Run:
        self.n += 1
        rejects = RejectSink(self.tmp / f"rejects-{self.n}.csv")
        ctx = StepContext(
            run=RunContext(
                route_name=route_name,
                route_file=self.tmp / "route.yaml",
                state_dir=self.tmp / ".route",
                run_id=f"run{self.n}",
                options=RunOptions(dry_run=dry_run, force=force),
                rejects=rejects,
                log=logging.getLogger("route.test"),
            ),
            stage="deliver",
            step="socrata",
            line=14,
            target=target,
        )
        opts = {"auth": dict(ROUTE_AUTH), "backoff": 0.01, **options}
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
        return Run(result, ctx, self.tmp)

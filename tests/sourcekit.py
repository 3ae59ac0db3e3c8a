"""Small factories for source tests: a step context with its own log and rejects file, and readers
of what a source produced (rows with their index, the rejects written)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pandas as pd

from pipeline.basics.context import RunContext, StepContext
from pipeline.basics.rejects import RejectSink


class Messages(logging.Handler):
    """The messages a step logged, on a logger of its own (no global logging state involved)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


def make_ctx(tmp_path: Path, chunk_rows: int = 50_000, step: str = "source") -> StepContext:
    log = logging.Logger("route-test", logging.DEBUG)
    log.addHandler(Messages())
    run = RunContext(
        route_name="test",
        route_file=tmp_path / "route.yaml",
        state_dir=tmp_path / ".route",
        run_id="1",
        rejects=RejectSink(tmp_path / "rejects.csv"),
        log=log,
        chunk_rows=chunk_rows,
    )
    return StepContext(run=run, stage="source", step=step)


def logged(ctx: StepContext, level: int) -> list[str]:
    return ctx.run.log.handlers[0].at(level)


def rows(chunks: list[pd.DataFrame]) -> list[tuple]:
    """(index, {column: value}) for every row, nulls as None."""
    out = []
    for chunk in chunks:
        for i, rec in zip(chunk.index, chunk.astype(object).where(chunk.notna(), None).to_dict("records")):
            out.append((int(i), rec))
    return out


def rejects(tmp_path: Path) -> list[tuple[str, str, str]]:
    """(line, reason, value) of every row in the rejects file."""
    path = tmp_path / "rejects.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [(r["line"], r["reason"], r["value"]) for r in csv.DictReader(f)]

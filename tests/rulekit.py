"""Factories for rule tests: Arrow-backed frames whose index is the source line, a context whose
rejects go to a real file in tmp_path, and running a rule the way the planner and executor do."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from pipeline.basics.dtypes import BOOLEAN, DATE, INTEGER, NUMBER, TEXT
from pipeline.testing import bind_options, run_rule, step_context

__all__ = ["TEXT", "INTEGER", "NUMBER", "BOOLEAN", "DATE", "frame", "make_ctx", "apply", "rejects", "values"]


def frame(data: dict, lines=None, dtypes: dict | None = None, source: str = "in.csv") -> pd.DataFrame:
    """A chunk: TEXT columns unless `dtypes` says otherwise, index = source lines (2, 3, ... by default)."""
    dtypes = dtypes or {}
    n = len(next(iter(data.values()))) if data else 0
    index = pd.Index(lines if lines is not None else range(2, n + 2), dtype="int64")
    cols = {name: pd.Series(vals, dtype=dtypes.get(name, TEXT), index=index) for name, vals in data.items()}
    df = pd.DataFrame(cols, index=index)
    df.attrs["source"] = source
    return df


def make_ctx(tmp_path: Path, chunk_rows: int = 50_000, step: str = "rule"):
    return step_context(tmp_path, chunk_rows=chunk_rows, step=step)


def apply(rule_fn, options, chunks, ctx) -> pd.DataFrame:
    """Bind `options` and run the rule over `chunks` (one frame or a list); the outputs concatenated."""
    prepared = bind_options(rule_fn, options, ctx)
    chunks = [chunks] if isinstance(chunks, pd.DataFrame) else chunks
    outs = run_rule(rule_fn, prepared, chunks, ctx)
    if not outs:
        return pd.DataFrame()
    return pd.concat(outs) if len(outs) > 1 else outs[0]


def rejects(ctx) -> list[dict]:
    """The rejects file as rows: {line, column, value, reason} (what a user reads)."""
    sink = ctx.run.rejects
    if not sink.path.exists():
        return []
    with open(sink.path, newline="", encoding="utf-8") as f:
        return [
            {"line": r["line"], "column": r["column"], "value": r["value"], "reason": r["reason"]}
            for r in csv.DictReader(f)
        ]


def values(series: pd.Series) -> list:
    """A column as plain Python values, None for null."""
    return [
        None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v
        for v in series.astype(object).tolist()
    ]

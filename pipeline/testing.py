"""A conformance check for rule authors, and the small factories it (and our tests) run rules with.

`check_rule(my_rule, options, sample)` runs a rule the way the executor would, on a normal chunk,
an empty chunk and the same rows split in two chunks, and fails with an AssertionError that says
which part of the contract the rule broke: it changed its input, changed its output's dtypes from
one chunk to the next, lost the index (the source line), kept rows it rejected, depended on where a
chunk begins, or yielded chunks bigger than the run's chunk size.

    from pipeline.testing import check_rule

    def test_fix_town_keeps_the_contract():
        check_rule(fix_town, {"column": "town"}, pd.DataFrame({"town": ["hartford", None, "NEW HAVEN"]}))
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import jsonschema
import pandas as pd

from .context import RunContext, StepContext
from .errors import OptionError
from .plugins import spec_of
from .rejects import RejectSink


class RecordingContext(StepContext):
    """A StepContext that also remembers the index of every rejected row (for the checks)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rejected_index: list = []

    def reject(self, rows: pd.DataFrame, reason, column=None, value=None) -> int:
        self.rejected_index.extend(rows.index.tolist())
        return super().reject(rows, reason, column=column, value=value)


def step_context(folder: str | Path, *, chunk_rows: int = 50_000, step: str = "rule",
                 route_name: str = "test") -> RecordingContext:
    """A context for running one rule by hand: state and rejects under `folder`."""
    folder = Path(folder)
    run = RunContext(route_name=route_name, route_file=folder / "route.yaml", state_dir=folder / ".route",
                     run_id="test", rejects=RejectSink(folder / ".route" / "rejects" / f"{route_name}-test.csv"))
    run.chunk_rows = chunk_rows
    return RecordingContext(run=run, stage="source_transforms", step=step)


def bind_options(rule_fn: Callable, options: Any, ctx: StepContext) -> Any:
    """What the planner does with a rule's options: apply the shorthand, validate them against the
    rule's schema (OptionError for the first problem, with its path) and run its `bind`."""
    spec = spec_of(rule_fn)
    if spec is None:
        raise AssertionError(f"{_name(rule_fn)} is not marked with @rule(...) from pipeline.plugins")
    if spec.shorthand and not isinstance(options, dict):
        options = {spec.shorthand: options}
    validator = jsonschema.Draft202012Validator(spec.options_schema)
    errors = sorted(validator.iter_errors(options), key=lambda e: list(e.absolute_path))
    if errors:
        raise OptionError(errors[0].message, tuple(errors[0].absolute_path))
    return spec.bind(options, ctx) if spec.bind else options


def run_rule(rule_fn: Callable, prepared: Any, chunks: Iterable[pd.DataFrame], ctx: StepContext) -> list[pd.DataFrame]:
    """The frames a (bound) rule returns for `chunks`, chunk by chunk or as a stream per its scope."""
    spec = spec_of(rule_fn)
    if spec is not None and spec.scope == "stream":
        return list(rule_fn(iter(chunks), prepared, ctx))
    return [rule_fn(chunk, prepared, ctx) for chunk in chunks]


@dataclass
class CheckResult:
    """What the rule did to the whole sample: its output rows and how many rows it rejected."""

    output: pd.DataFrame
    rejected: int


def check_rule(rule_fn: Callable, options: Any, sample_frame: pd.DataFrame) -> CheckResult:
    """Run `rule_fn` on `sample_frame` as one chunk, as an empty chunk and as two chunks in a row,
    and raise AssertionError naming the broken part of the rule contract. Returns the output of the
    one-chunk run so the caller can also assert on the values. The run's chunk_rows is the size of
    the biggest chunk given, so a stream rule must re-chunk what it gathers."""
    name = _name(rule_fn)
    spec = spec_of(rule_fn)
    if spec is None or spec.kind != "rules":
        raise AssertionError(f"{name} is not marked with @rule(...) from pipeline.plugins")
    try:
        jsonschema.Draft202012Validator.check_schema(spec.options_schema)
    except jsonschema.SchemaError as exc:
        raise AssertionError(f"{name}: its options schema is not valid JSON Schema: {exc.message}") from None
    if not isinstance(sample_frame, pd.DataFrame) or len(sample_frame) < 2:
        raise AssertionError("check_rule needs a sample DataFrame of at least 2 rows (it is also split in two)")
    with tempfile.TemporaryDirectory(prefix="route-check-") as folder:
        ctx = step_context(folder, chunk_rows=len(sample_frame), step=name)
        try:
            prepared = bind_options(rule_fn, options, ctx)
        except OptionError as exc:
            where = ".".join(str(p) for p in exc.path)
            raise AssertionError(f"{name}: options rejected{' at ' + where if where else ''}: {exc}") from None
        stream = spec.scope == "stream"

        whole = _checked_run(rule_fn, prepared, [sample_frame], ctx, name, "a normal chunk")
        if not whole:
            raise AssertionError(f"{name} returned nothing for a normal chunk" +
                                 ("" if stream else ": a chunk rule must return a DataFrame"))
        reference = whole[0]
        rejected = ctx.rejected

        empty = sample_frame.iloc[0:0].copy()
        for out in _checked_run(rule_fn, prepared, [empty], ctx, name, "an empty chunk"):
            _same_dtypes(name, reference, out, "a normal chunk", "an empty chunk")

        half = len(sample_frame) // 2
        first, second = sample_frame.iloc[:half].copy(), sample_frame.iloc[half:].copy()
        parts = _checked_run(rule_fn, prepared, [first, second], ctx, name, "two chunks in a row")
        for k, out in enumerate(parts):
            _same_dtypes(name, reference, out, "one chunk", f"output {k + 1} of two chunks in a row")
        if not stream:
            joined = pd.concat(parts)
            try:
                pd.testing.assert_frame_equal(pd.concat(whole), joined)
            except AssertionError as exc:
                raise AssertionError(f"{name} gives different rows when the same input arrives in two "
                                     f"chunks: a chunk rule must not depend on where a chunk begins "
                                     f"(use scope='stream' for rules that need the whole stream)\n{exc}") from None
        output = pd.concat(whole) if len(whole) > 1 else reference
        return CheckResult(output=output, rejected=rejected)


def _checked_run(rule_fn, prepared, chunks, ctx: RecordingContext, name: str, what: str) -> list[pd.DataFrame]:
    snapshots = [(c.copy(deep=True), dict(c.attrs)) for c in chunks]
    ctx.rejected_index = []
    ctx.run.chunk_rows = max(1, *(len(c) for c in chunks))
    spec = spec_of(rule_fn)
    if spec.scope == "stream":
        result = rule_fn(iter(list(chunks)), prepared, ctx)
        if isinstance(result, pd.DataFrame) or not hasattr(result, "__iter__"):
            raise AssertionError(f"{name} is a stream rule and must return an iterator of DataFrames, "
                                 f"not {type(result).__name__}")
        outputs = list(result)
    else:
        outputs = [rule_fn(chunk, prepared, ctx) for chunk in chunks]
    for out in outputs:
        if not isinstance(out, pd.DataFrame):
            raise AssertionError(f"{name} returned {type(out).__name__} for {what}; it must return DataFrames")
        if out.columns.duplicated().any():
            dupes = sorted(set(out.columns[out.columns.duplicated()].astype(str)))
            raise AssertionError(f"{name} returned duplicate column names for {what}: {', '.join(dupes)}")
        if spec.scope == "stream" and len(out) > ctx.run.chunk_rows:
            raise AssertionError(f"{name} yielded a chunk of {len(out)} rows for {what}; stream rules "
                                 f"yield at most ctx.run.chunk_rows ({ctx.run.chunk_rows})")
    for chunk, (before, attrs) in zip(chunks, snapshots):
        try:
            pd.testing.assert_frame_equal(chunk, before, check_exact=True)
        except AssertionError as exc:
            raise AssertionError(f"{name} changed its input chunk ({what}): rules must return a new "
                                 f"frame and leave the input as it was\n{exc}") from None
        if dict(chunk.attrs) != attrs:
            raise AssertionError(f"{name} changed its input chunk's attrs ({what})")
    if spec.scope != "stream":
        seen = pd.Index([]).append([c.index for c in chunks])
        for out in outputs:
            unknown = out.index.difference(seen)
            if len(unknown):
                raise AssertionError(f"{name} lost the index for {what}: its output has index values "
                                     f"{list(unknown[:5])} that are not in its input; keep the index, "
                                     f"it is the source line rejects and messages name")
        if seen.is_unique and ctx.rejected_index:
            kept = set(ctx.rejected_index) & set(pd.Index([]).append([o.index for o in outputs]))
            if kept:
                raise AssertionError(f"{name} rejected rows {sorted(kept)[:5]} for {what} but still "
                                     f"returned them: drop the rows you pass to ctx.reject")
    return outputs


def _same_dtypes(name: str, a: pd.DataFrame, b: pd.DataFrame, what_a: str, what_b: str) -> None:
    if list(a.columns) != list(b.columns):
        raise AssertionError(f"{name} returned columns {list(b.columns)} for {what_b} but "
                             f"{list(a.columns)} for {what_a}: every chunk must have the same columns")
    changed = [f"'{c}': {a[c].dtype} for {what_a}, {b[c].dtype} for {what_b}"
               for c in a.columns if a[c].dtype != b[c].dtype]
    if changed:
        raise AssertionError(f"{name} changed dtypes between chunks: " + "; ".join(changed) +
                             " (every chunk must have the same dtypes, whatever its values)")


def _name(rule_fn) -> str:
    return getattr(rule_fn, "__name__", repr(rule_fn))

"""A conformance check for rule authors, and the small factories it (and our tests) run rules with.

`check_rule(my_rule, options, sample)` runs a rule the way the executor would, on a normal chunk,
an empty chunk and the same rows split in two chunks, and fails with an AssertionError that says
which part of the contract the rule broke: it changed its input, changed its output's dtypes from
one chunk to the next, lost the index (the source line), kept rows it rejected, depended on where a
chunk begins, or yielded chunks bigger than the run's chunk size.

    from pipeline.testing import check_rule

    def test_fix_town_keeps_the_contract():
        check_rule(fix_town, {"column": "town"}, pd.DataFrame({"town": ["hartford", None, "NEW HAVEN"]}))

`check_source` and `check_delivery` do the same for sources (read a normal input, an empty input,
and the same input in chunks of half its size) and deliveries (a dry run, a normal run, an aborted
run, an empty run and two chunks in a row), each in a temporary folder that stands for the route's.
"""

# Longer than 400 lines because it holds the three conformance kits (rules, sources, deliveries)
# that plugin authors import from one place.

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd

from pipeline.basics.columnflow import ColumnFlow
from pipeline.basics.context import DEFAULT_CHUNK_ROWS, RunContext, StepContext
from pipeline.basics.errors import OptionError
from pipeline.basics.plugins import KIND_WORD, signature_problems, spec_of
from pipeline.basics.rejects import RejectSink
from pipeline.deliveries.base import DeliveryResult


class RecordingContext(StepContext):
    """A StepContext that also remembers the index of every rejected row (for the checks)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rejected_index: list = []

    def reject(self, rows: pd.DataFrame, reason, column=None, value=None) -> int:
        self.rejected_index.extend(rows.index.tolist())
        return super().reject(rows, reason, column=column, value=value)


def step_context(
    folder: str | Path,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    step: str = "rule",
    route_name: str = "test",
    stage: str = "source_transforms",
    target: str | None = None,
) -> RecordingContext:
    """A context for running one component by hand: `folder` stands for the route's folder (relative
    paths resolve there), with state and rejects under `folder`/.route."""
    folder = Path(folder)
    run = RunContext(
        route_name=route_name,
        route_file=folder / "route.yaml",
        state_dir=folder / ".route",
        run_id="test",
        rejects=RejectSink(folder / ".route" / "rejects" / f"{route_name}-test.csv"),
    )
    run.chunk_rows = chunk_rows
    return RecordingContext(run=run, stage=stage, step=step, target=target)


def bind_options(component: Callable, options: Any, ctx: StepContext) -> Any:
    """What the planner does with a component's options: apply the shorthand, validate them against
    its schema (OptionError for the first problem, with its path) and run its `bind`."""
    spec = spec_of(component)
    if spec is None:
        raise AssertionError(
            f"{_name(component)} is not marked with @rule(...), @source(...) or @delivery(...) from pipeline.api"
        )
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
    spec = _checked_spec(rule_fn, "rules")
    if not isinstance(sample_frame, pd.DataFrame) or len(sample_frame) < 2:
        raise AssertionError("check_rule needs a sample DataFrame of at least 2 rows (it is also split in two)")
    with tempfile.TemporaryDirectory(prefix="route-check-") as folder:
        ctx = step_context(folder, chunk_rows=len(sample_frame), step=name)
        prepared = _bound(rule_fn, options, ctx)
        stream = spec.scope == "stream"

        whole = _checked_run(rule_fn, prepared, [sample_frame], ctx, name, "a normal chunk")
        if not whole:
            raise AssertionError(
                f"{name} returned nothing for a normal chunk"
                + ("" if stream else ": a chunk rule must return a DataFrame")
            )
        reference = whole[0]
        rejected = ctx.rejected
        _declared_columns(name, spec, options, sample_frame, reference)

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
                raise AssertionError(
                    f"{name} gives different rows when the same input arrives in two "
                    f"chunks: a chunk rule must not depend on where a chunk begins "
                    f"(use scope='stream' for rules that need the whole stream)\n{exc}"
                ) from None
        output = pd.concat(whole) if len(whole) > 1 else reference
        return CheckResult(output=output, rejected=rejected)


def _declared_columns(name: str, spec, options: Any, sample: pd.DataFrame, output: pd.DataFrame) -> None:
    """The rule's column declaration (`columns=`) must say what the rule does to the columns: the
    planner trusts it to catch misspelt columns before a run."""
    if spec.columns is None:
        return
    if spec.shorthand and not isinstance(options, dict):
        options = {spec.shorthand: options}
    flow = ColumnFlow(sample.columns)
    spec.columns(options, flow)
    if flow.unknown_columns:
        missing = ", ".join(repr(u.name) for u in flow.unknown_columns)
        raise AssertionError(f"{name} declares that it reads {missing}, which the sample does not have")
    if flow.known and set(flow.names) != set(output.columns):
        extra = sorted(set(flow.names) - set(output.columns))
        absent = sorted(set(output.columns) - set(flow.names))
        raise AssertionError(
            f"{name}'s column declaration does not match its output: declared but not made {extra}, "
            f"made but not declared {absent}; fix `columns=` in its marker"
        )


def _checked_run(rule_fn, prepared, chunks, ctx: RecordingContext, name: str, what: str) -> list[pd.DataFrame]:
    snapshots = [(c.copy(deep=True), dict(c.attrs)) for c in chunks]
    ctx.rejected_index = []
    ctx.run.chunk_rows = max(1, *(len(c) for c in chunks))
    spec = spec_of(rule_fn)
    if spec.scope == "stream":
        result = rule_fn(iter(list(chunks)), prepared, ctx)
        if isinstance(result, pd.DataFrame) or not hasattr(result, "__iter__"):
            raise AssertionError(
                f"{name} is a stream rule and must return an iterator of DataFrames, not {type(result).__name__}"
            )
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
            raise AssertionError(
                f"{name} yielded a chunk of {len(out)} rows for {what}; stream rules "
                f"yield at most ctx.run.chunk_rows ({ctx.run.chunk_rows})"
            )
    for chunk, (before, attrs) in zip(chunks, snapshots):
        try:
            pd.testing.assert_frame_equal(chunk, before, check_exact=True)
        except AssertionError as exc:
            raise AssertionError(
                f"{name} changed its input chunk ({what}): rules must return a new "
                f"frame and leave the input as it was\n{exc}"
            ) from None
        if dict(chunk.attrs) != attrs:
            raise AssertionError(f"{name} changed its input chunk's attrs ({what})")
    if spec.scope != "stream":
        seen = pd.Index([]).append([c.index for c in chunks])
        for out in outputs:
            unknown = out.index.difference(seen)
            if len(unknown):
                raise AssertionError(
                    f"{name} lost the index for {what}: its output has index values "
                    f"{list(unknown[:5])} that are not in its input; keep the index, "
                    f"it is the source line rejects and messages name"
                )
        if seen.is_unique and ctx.rejected_index:
            kept = set(ctx.rejected_index) & set(pd.Index([]).append([o.index for o in outputs]))
            if kept:
                raise AssertionError(
                    f"{name} rejected rows {sorted(kept)[:5]} for {what} but still "
                    f"returned them: drop the rows you pass to ctx.reject"
                )
    return outputs


def _same_dtypes(name: str, a: pd.DataFrame, b: pd.DataFrame, what_a: str, what_b: str) -> None:
    if list(a.columns) != list(b.columns):
        raise AssertionError(
            f"{name} returned columns {list(b.columns)} for {what_b} but "
            f"{list(a.columns)} for {what_a}: every chunk must have the same columns"
        )
    changed = [
        f"'{c}': {a[c].dtype} for {what_a}, {b[c].dtype} for {what_b}" for c in a.columns if a[c].dtype != b[c].dtype
    ]
    if changed:
        raise AssertionError(
            f"{name} changed dtypes between chunks: "
            + "; ".join(changed)
            + " (every chunk must have the same dtypes, whatever its values)"
        )


def _name(component) -> str:
    return getattr(component, "__name__", repr(component))


def _checked_spec(component, kind: str):
    """The component's spec, after checking its marker, its options schema and its signature."""
    name, word = _name(component), KIND_WORD[kind]
    spec = spec_of(component)
    if spec is None or spec.kind != kind:
        raise AssertionError(f"{name} is not marked with @{word}(...) from pipeline.api")
    try:
        jsonschema.Draft202012Validator.check_schema(spec.options_schema)
    except jsonschema.SchemaError as exc:
        raise AssertionError(f"{name}: its options schema is not valid JSON Schema: {exc.message}") from None
    wrong = signature_problems(component, spec)
    if wrong:
        raise AssertionError(f"{name}: " + "; ".join(wrong))
    return spec


def _bound(component, options, ctx: StepContext) -> Any:
    try:
        return bind_options(component, options, ctx)
    except OptionError as exc:
        where = ".".join(str(p) for p in exc.path)
        raise AssertionError(f"{_name(component)}: options rejected{' at ' + where if where else ''}: {exc}") from None


def _build(component, options, ctx: StepContext):
    try:
        return component(_bound(component, options, ctx), ctx)
    except OptionError as exc:
        where = ".".join(str(p) for p in exc.path)
        raise AssertionError(
            f"{_name(component)} refused its options{' at ' + where if where else ''}: {exc}"
        ) from None


def _write_files(folder: Path, files: dict[str, str | bytes] | None) -> None:
    for name, content in (files or {}).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def _folder_state(folder: Path) -> dict[str, str]:
    """Every file under `folder` but the state folder, with a digest of its content."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".route" not in p.relative_to(folder).parts
    }


def _changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


# -- sources ------------------------------------------------------------------------------------


@dataclass
class SourceCheck:
    """What the source read from the normal input: all its rows, in how many chunks, and how many
    records it rejected."""

    output: pd.DataFrame
    chunks: int
    rejected: int


def check_source(
    source_cls: type, options: Any, *, empty: Any = None, files: dict[str, str | bytes] | None = None
) -> SourceCheck:
    """Read with `source_cls` the way the executor does and raise AssertionError naming the broken
    part of the source contract.

    `files` (name -> text or bytes) are written into a temporary folder that stands for the route's
    folder, so relative paths in `options` find them. The source reads `options` (an input of at
    least 2 rows) once in one chunk, then again with chunk_rows at half its rows, and `empty` (the
    options for an input with no rows) if given. It must yield DataFrames of at most chunk_rows rows
    with the same columns and dtypes in every chunk, give the same rows (values, dtypes, index)
    however they are chunked, match columns() when that is not None, accept close() after a partial
    read, and change no file in the folder."""
    name = _name(source_cls)
    _checked_spec(source_cls, "sources")
    with tempfile.TemporaryDirectory(prefix="route-check-") as tmp:
        folder = Path(tmp)
        _write_files(folder, files)
        before = _folder_state(folder)
        whole, rejected = _read(source_cls, options, folder, 50_000, "a normal input")
        reference = pd.concat(whole) if whole else None
        if reference is None or len(reference) < 2:
            raise AssertionError(
                f"check_source needs options for an input of at least 2 rows; {name} read "
                f"{0 if reference is None else len(reference)}"
            )
        half = (len(reference) + 1) // 2
        parts, _ = _read(source_cls, options, folder, half, f"chunks of {half} rows")
        for k, part in enumerate(parts):
            _same_dtypes(name, whole[0], part, "one chunk", f"chunk {k + 1} of {half} rows")
        try:
            pd.testing.assert_frame_equal(pd.concat(parts), reference)
        except AssertionError as exc:
            raise AssertionError(
                f"{name} reads different rows in chunks of {half} rows than in one chunk: "
                f"the rows (and their index, the source line) must not depend on the "
                f"chunk size\n{exc}"
            ) from None
        if empty is not None:
            chunks, _ = _read(source_cls, empty, folder, 50_000, "an empty input")
            rows = sum(len(c) for c in chunks)
            if rows:
                raise AssertionError(f"{name} read {rows} rows from the empty input")
            for chunk in chunks:
                if list(chunk.columns) == list(reference.columns):
                    _same_dtypes(name, reference, chunk, "a normal input", "an empty input")
        _close_early(source_cls, options, folder)
        changed = _changed(before, _folder_state(folder))
        if changed:
            raise AssertionError(
                f"{name} changed files it read or wrote others: {', '.join(changed)}; "
                "a source only reads (state belongs under ctx.run.state_dir)"
            )
        return SourceCheck(output=reference, chunks=len(whole), rejected=rejected)


def _read(source_cls, options, folder: Path, chunk_rows: int, what: str) -> tuple[list[pd.DataFrame], int]:
    name = _name(source_cls)
    ctx = step_context(folder, chunk_rows=chunk_rows, step=name, stage="source")
    src = _build(source_cls, options, ctx)
    out: list[pd.DataFrame] = []
    try:
        produced = src.chunks()
        if isinstance(produced, pd.DataFrame) or not hasattr(produced, "__iter__"):
            raise AssertionError(
                f"{name}.chunks() must return an iterator of DataFrames, not {type(produced).__name__}"
            )
        for chunk in produced:
            if not isinstance(chunk, pd.DataFrame):
                raise AssertionError(f"{name} yielded {type(chunk).__name__} for {what}; chunks are DataFrames")
            if len(chunk) > chunk_rows:
                raise AssertionError(
                    f"{name} yielded a chunk of {len(chunk)} rows for {what}; sources yield "
                    f"at most ctx.run.chunk_rows ({chunk_rows})"
                )
            if chunk.columns.duplicated().any():
                raise AssertionError(f"{name} yielded duplicate column names for {what}")
            if out:
                _same_dtypes(name, out[0], chunk, "its first chunk", f"a later chunk of {what}")
                seen = pd.Index([]).append([c.index for c in out])
                if len(seen.intersection(chunk.index)):
                    raise AssertionError(
                        f"{name} repeated index values across chunks for {what}: the index "
                        "is the source line (or record number) and goes on from chunk to chunk"
                    )
            out.append(chunk)
    finally:
        if callable(getattr(src, "close", None)):
            src.close()
    announced = src.columns() if callable(getattr(src, "columns", None)) else None
    if announced is not None and out and list(announced) != list(out[0].columns):
        raise AssertionError(
            f"{name}.columns() says {list(announced)} but its chunks have {list(out[0].columns)} for {what}"
        )
    return out, ctx.rejected


def _close_early(source_cls, options, folder: Path) -> None:
    """The executor stops reading at --limit and calls close(): that must not fail."""
    ctx = step_context(folder, chunk_rows=1, step=_name(source_cls), stage="source")
    src = _build(source_cls, options, ctx)
    next(iter(src.chunks()), None)
    if callable(getattr(src, "close", None)):
        src.close()


# -- deliveries ---------------------------------------------------------------------------------


@dataclass
class DeliveryCheck:
    """What the normal run reported, and what `read_back` found after it (None without read_back)."""

    result: DeliveryResult
    output: Any = None
    results: dict[str, DeliveryResult] = field(default_factory=dict)


def check_delivery(
    delivery_cls: type,
    options: Any,
    sample_frame: pd.DataFrame,
    *,
    files: dict[str, str | bytes] | None = None,
    read_back: Callable[[Path], Any] | None = None,
) -> DeliveryCheck:
    """Drive `delivery_cls` the way the executor does and raise AssertionError naming the broken
    part of the delivery contract (see pipeline.deliveries.base).

    In a temporary folder standing for the route's (with `files` written into it), it runs: a dry
    run, which must change nothing; a run of one empty chunk; a normal run of `sample_frame` as one
    chunk; a run that writes half and is aborted, which must leave what the normal run delivered;
    and a run of the sample in two chunks. Every run's close() must return a DeliveryResult whose
    delivered + rejected is the number of rows written, and no write() may change its chunk.
    `read_back(folder)` returns what the target holds (the rows of a file, a table); with it, the
    dry and aborted runs are also checked on the target itself, wherever it is."""
    name = _name(delivery_cls)
    _checked_spec(delivery_cls, "deliveries")
    if not isinstance(sample_frame, pd.DataFrame) or len(sample_frame) < 2:
        raise AssertionError("check_delivery needs a sample DataFrame of at least 2 rows (it is also split in two)")
    half = len(sample_frame) // 2
    first, second = sample_frame.iloc[:half].copy(), sample_frame.iloc[half:].copy()
    empty = sample_frame.iloc[0:0].copy()
    results: dict[str, DeliveryResult] = {}
    with tempfile.TemporaryDirectory(prefix="route-check-") as tmp:
        folder = Path(tmp)
        _write_files(folder, files)

        def target_state():
            return _folder_state(folder), (read_back(folder) if read_back else None)

        before = target_state()
        results["a dry run"] = _deliver(delivery_cls, options, folder, [sample_frame], "a dry run", dry_run=True)
        _unchanged(name, before, target_state(), "a dry run", "a dry run writes nothing")
        # The empty run comes before any rows were delivered: replacing rows with none is refused
        # by the file and table guards, rightly.
        results["an empty chunk"] = _deliver(delivery_cls, options, folder, [empty], "an empty chunk")
        results["a normal run"] = _deliver(delivery_cls, options, folder, [sample_frame], "a normal run")
        delivered = target_state()
        _deliver(delivery_cls, options, folder, [first], "an aborted run", abort=True)
        _unchanged(name, delivered, target_state(), "an aborted run", "abort() leaves the last good state in place")
        results["two chunks in a row"] = _deliver(delivery_cls, options, folder, [first, second], "two chunks in a row")
        return DeliveryCheck(result=results["a normal run"], output=delivered[1], results=results)


def _deliver(
    delivery_cls,
    options,
    folder: Path,
    chunks: list[pd.DataFrame],
    what: str,
    *,
    dry_run: bool = False,
    abort: bool = False,
) -> DeliveryResult | None:
    name = _name(delivery_cls)
    ctx = step_context(folder, step=name, stage="deliver", target="check")
    ctx.run.options.dry_run = dry_run
    d = _build(delivery_cls, options, ctx)
    snapshots = [(c.copy(deep=True), dict(c.attrs)) for c in chunks]
    d.open([str(c) for c in chunks[0].columns])
    for chunk in chunks:
        d.write(chunk)
    for chunk, (before, attrs) in zip(chunks, snapshots):
        try:
            pd.testing.assert_frame_equal(chunk, before, check_exact=True)
        except AssertionError as exc:
            raise AssertionError(f"{name}.write changed its chunk ({what}): copy before changing\n{exc}") from None
        if dict(chunk.attrs) != attrs:
            raise AssertionError(f"{name}.write changed its chunk's attrs ({what})")
    if abort:
        d.abort(RuntimeError("check_delivery: another target failed"))
        return None
    if callable(getattr(d, "prepare_commit", None)):
        d.prepare_commit()
    result = d.close()
    if not isinstance(result, DeliveryResult):
        raise AssertionError(
            f"{name}.close() returned {type(result).__name__} for {what}; it must return a DeliveryResult"
        )
    rows = sum(len(c) for c in chunks)
    if not dry_run and result.delivered + result.rejected != rows:
        raise AssertionError(
            f"{name}.close() reported {result.delivered} delivered and {result.rejected} "
            f"rejected for {what}, but {rows} rows were written"
        )
    return result


def _unchanged(name: str, before, after, what: str, rule: str) -> None:
    changed = _changed(before[0], after[0])
    if changed:
        raise AssertionError(f"{name} changed {', '.join(changed)} in {what}: {rule}")
    if before[1] is not None or after[1] is not None:
        try:
            if isinstance(before[1], pd.DataFrame) or isinstance(after[1], pd.DataFrame):
                pd.testing.assert_frame_equal(after[1], before[1])
            elif before[1] != after[1]:
                raise AssertionError(f"{after[1]!r} != {before[1]!r}")
        except AssertionError as exc:
            raise AssertionError(f"{name} changed the target in {what}: {rule}\n{exc}") from None

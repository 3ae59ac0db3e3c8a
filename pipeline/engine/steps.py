"""Rule steps over a stream of chunks: each step maps a chunk iterator to a chunk iterator.

A chunk rule sees one chunk at a time; a stream rule (dedupe, sort, aggregate) sees the whole
stream. Each step counts its rows in and out, its rejects and its own time (time spent waiting for
the steps before it is not its own), and an exception inside a step is wrapped once, at the stage
boundary, with the route file, the step, its line and the chunk's source lines.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import pandas as pd

from pipeline.basics.errors import RouteError, RunFailed, StepFailed
from pipeline.basics.plugins import KIND_WORD
from pipeline.engine.channels import Cancelled
from pipeline.engine.report import RunReport, StepStats
from pipeline.route.plan import Component, Plan


class Steps:
    """The steps of one run, with one StepStats each in the report, in the order of the route."""

    def __init__(self, plan: Plan, report: RunReport):
        self.plan = plan
        self._by_step: dict[int, StepStats] = {}
        comps = [(plan.source, None)] + [(s, None) for s in plan.steps]
        comps += [(s, t.name) for t in plan.targets for s in t.steps]
        for comp, target in comps:
            stats = StepStats(comp.ctx.stage, comp.label, comp.line, target)
            self._by_step[id(comp)] = stats
            report.steps.append(stats)

    def stats(self, comp: Component) -> StepStats:
        return self._by_step[id(comp)]

    def apply(self, steps: list[Component], chunks: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """`chunks` through `steps`, lazily."""
        it: Iterable[pd.DataFrame] = chunks
        for step in steps:
            it = self._chunk_step(step, it) if step.scope == "chunk" else self._stream_step(step, it)
        return iter(it)

    def _chunk_step(self, step: Component, chunks: Iterable[pd.DataFrame]):
        stats = self.stats(step)
        fn, options, ctx = step.impl, step.options, step.ctx
        for chunk in chunks:
            ctx.source_name = chunk.attrs.get("source")
            t0 = time.perf_counter()
            try:
                out = fn(chunk, options, ctx)
            except (Cancelled, GeneratorExit):
                raise
            except RouteError as exc:
                raise located(exc, self.plan, step, chunk) from exc
            except Exception as exc:
                raise wrapped(exc, self.plan, step, chunk) from exc
            stats.seconds += time.perf_counter() - t0
            if not out.attrs and chunk.attrs:
                out.attrs = dict(chunk.attrs)
            stats.rows_in += len(chunk)
            stats.rows_out += len(out)
            stats.rejected = ctx.rejected
            # Neither the input nor the output is held by this generator while it is suspended
            # (the output is yielded out of a one-item list): the consumer alone decides when a
            # chunk is freed, and the input goes as soon as the rule is done with it.
            box = [out]
            del chunk, out
            yield box.pop()

    def _stream_step(self, step: Component, chunks: Iterable[pd.DataFrame]):
        stats = self.stats(step)
        ctx = step.ctx
        upstream = _Timed(chunks, stats)
        try:
            for out in step.impl(upstream, step.options, ctx):
                stats.rows_out += len(out)
                stats.rejected = ctx.rejected
                box = [out]  # as in _chunk_step: not held here while suspended
                del out
                yield box.pop()
        except (Cancelled, GeneratorExit):
            raise
        except RouteError as exc:
            raise located(exc, self.plan, step) from exc
        except Exception as exc:
            raise wrapped(exc, self.plan, step, None) from exc
        stats.rejected = ctx.rejected


class _Timed:
    """Wraps a stream rule's input to count rows in and keep upstream time out of its own."""

    def __init__(self, chunks: Iterable[pd.DataFrame], stats: StepStats):
        self._it, self._stats = iter(chunks), stats

    def __iter__(self):
        return self

    def __next__(self) -> pd.DataFrame:
        chunk = next(self._it)
        self._stats.rows_in += len(chunk)
        return chunk


def _where(plan: Plan, comp: Component) -> str:
    return f"{plan.doc.file}:{comp.line}: {KIND_WORD[comp.kind]} '{comp.label}'"


def _rows(chunk: pd.DataFrame | None) -> str:
    if chunk is None or not len(chunk):
        return ""
    src = chunk.attrs.get("source")
    first, last = chunk.index[0], chunk.index[-1]
    return f" (rows at lines {first}-{last}{' of ' + str(src) if src else ''})"


def located(exc: RouteError, plan: Plan, comp: Component, chunk: pd.DataFrame | None = None) -> RouteError:
    """A component's own error, prefixed once with where in the route it happened."""
    text = str(exc)
    if text.startswith(plan.doc.file + ":"):
        return exc
    cls = type(exc) if isinstance(exc, RunFailed) else StepFailed
    new = cls.__new__(cls)
    RouteError.__init__(new, f"{_where(plan, comp)}: {text}")
    new.__dict__.update(exc.__dict__)
    return new


def wrapped(exc: BaseException, plan: Plan, comp: Component, chunk: pd.DataFrame | None) -> StepFailed:
    """An unexpected exception inside a component, as a StepFailed saying where and on which rows."""
    return StepFailed(f"{_where(plan, comp)} failed{_rows(chunk)}: {type(exc).__name__}: {exc}")


def message_of(exc: BaseException) -> str:
    """The text a user sees for an exception: its own message, or its type and message for a bug."""
    return str(exc) if isinstance(exc, RouteError) else f"{type(exc).__name__}: {exc}"

"""`route preview`: the first rows after every step, per target, and nothing delivered.

It runs the real plan on the first rows of the source, with each step's output captured, so what
it shows is exactly what `execute` would do to those rows. It writes nothing: rejected rows are
counted and the first few shown, with why. A step that fails ends the preview there: the steps
before it are drawn, then the error, and the command exits as `execute` would (1; 2 for a route
that does not check, before anything runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.basics.context import RunOptions
from pipeline.basics.errors import EXIT_FAILED, EXIT_OK
from pipeline.basics.plugins import Registry
from pipeline.basics.rejects import rejects_not_written
from pipeline.engine.channels import Cancelled
from pipeline.engine.executor import Executor
from pipeline.ops.console import rejects
from pipeline.route.plan import Component, build_plan


def preview_route(
    route: Path, *, rows: int, variables: Mapping[str, str], registry: Registry, state_dir=None, console: Console
) -> int:
    """Draw the rows after each step; the exit code (RouteInvalid, exit 2, when the route is invalid)."""
    plan = build_plan(
        route,
        variables=variables,
        registry=registry,
        state_dir=state_dir,
        options=RunOptions(limit=rows, preview=True, dry_run=True),
    )
    shown: dict[str, list[pd.DataFrame]] = {}
    order: list[str] = []
    failed: list[str] = []  # the title of the step that raised first

    def failing(title: str, exc: BaseException) -> None:
        if not isinstance(exc, Cancelled) and not failed:  # Cancelled: another step failed first
            failed.append(title)

    def capture(title: str, step: Component) -> None:
        inner = step.impl
        if step.scope != "chunk":
            # A stream rule (sort, dedupe, aggregate...) sees only the previewed rows: say so.
            title += f" [on the first {rows} rows only]"

            def streamed(chunks, options, ctx, _inner=inner, _title=title):
                try:
                    for out in _inner(chunks, options, ctx):
                        shown.setdefault(_title, []).append(out)
                        yield out
                except Exception as exc:
                    failing(_title, exc)
                    raise

            step.impl = streamed
            order.append(title)
            return

        def tapped(chunk, options, ctx, _inner=inner, _title=title):
            try:
                out = _inner(chunk, options, ctx)
            except Exception as exc:
                failing(_title, exc)
                raise
            shown.setdefault(_title, []).append(out)
            return out

        step.impl = tapped
        order.append(title)

    # the rows as the source read them first: the place to see a wrong header_row or encoding
    source_title = f"source {plan.source.label} (line {plan.source.line})"
    order.append(source_title)
    make_source = plan.source.impl

    def tapped_source(options, ctx):
        instance = make_source(options, ctx)
        chunks = instance.chunks

        def tapped_chunks():
            try:
                for chunk in chunks():
                    shown.setdefault(source_title, []).append(chunk)
                    yield chunk
            except Exception as exc:
                failing(source_title, exc)
                raise

        instance.chunks = tapped_chunks
        return instance

    plan.source.impl = tapped_source
    for i, step in enumerate(plan.steps):
        capture(f"source_transforms[{i}] {step.label} (line {step.line})", step)
    for target in plan.targets:
        for i, step in enumerate(target.steps):
            capture(f"target {target.name}: target_transforms[{i}] {step.label} (line {step.line})", step)
    captured: dict[str, list[pd.DataFrame]] = {}
    executor = Executor(plan, capture=captured)
    executor.prepare()
    with rejects_not_written():
        report = executor.execute()
    report.first_rejects = list(plan.run.rejects.first)
    for title in order:
        if failed and title == failed[0]:
            console.print(f"[red]{escape(title)}: failed[/]")
            break
        if report.error and title not in shown:
            break  # never reached: the run stopped before it (routing, the rejects limit)
        _show(console, title, shown.get(title, []), rows)
    if not report.error:
        for target in plan.targets:
            _show(
                console,
                f"target {target.name}: would deliver ({target.delivery.name})",
                captured.get(target.name, []),
                rows,
            )
    rejects(report, console, run="a preview")
    if report.error:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/] {escape(report.error)}")
        return EXIT_FAILED
    return EXIT_OK


def _show(console: Console, title: str, frames: list[pd.DataFrame], rows: int) -> None:
    frame = pd.concat(frames) if frames else pd.DataFrame()
    table = Table(title=escape(title), title_justify="left", header_style="bold")
    table.add_column("line", justify="right", style="dim")
    for c in frame.columns:
        table.add_column(f"{escape(str(c))}\n[dim]{_dtype(frame[c].dtype)}[/]")
    for idx, row in frame.head(rows).iterrows():
        table.add_row(str(idx), *["[dim]null[/]" if _is_null(v) else escape(str(v)) for v in row.tolist()])
    console.print(table)


def _is_null(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or dict held in a cell
        return False


def _dtype(dtype) -> str:
    from pipeline.basics.dtypes import route_type_of

    return route_type_of(dtype)

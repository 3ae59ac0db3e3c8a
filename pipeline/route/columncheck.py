"""Columns checked before the run: the source's columns, followed through every rule and target.

The planner asks the source for its columns when that is cheap (a CSV header, the columns an option
lists; a dataset's columns over the network unless offline), then lets each rule's column
declaration read, add, drop and rename them (pipeline.basics.columnflow). A column that a rule, a
`filter`/`derive` expression or a target's `when` reads but that is not there at that point is a
problem at its own line and column, with the nearest name: caught by `route validate` and before
`route execute` reads a row.

How hard the source is asked depends on who asks:
- "strict" (`route validate`): a source that cannot give its columns (a missing file, a header that
  cannot be decoded) is itself a problem at the source's line.
- "lenient" (execute, preview, the scheduler): only sources that answer cheaply from local files
  are asked (a CSV header, not a whole workbook), and one that fails is left to fail the run as it
  always has (a missing file is then a failed run, recorded and notified like any other).
- "off" (`route test`, whose cases read their own inputs): nothing is checked here.
"""

from __future__ import annotations

from typing import Literal

from pipeline.basics.columnflow import ColumnFlow
from pipeline.basics.errors import OptionError, Problem, RouteError
from pipeline.expressions.nodes import columns_of
from pipeline.route.yamlfile import Document
from pipeline.sources.base import as_source

Mode = Literal["strict", "lenient", "off"]


def column_problems(doc: Document, source, steps, targets, *, mode: Mode, offline: bool = False) -> list[Problem]:
    """Problems of columns read where they are not, through `steps` and each target's steps and `when`."""
    if mode == "off" or source is None:
        return []
    problems: list[Problem] = []
    flow = ColumnFlow(_source_columns(doc, source, mode, offline, problems))
    for step in steps:
        _follow(doc, step, flow, problems)
    for target in targets:
        branch = flow.copy()
        if target.when_text is not None and target.when is not None:
            for node in columns_of(target.when.tree):
                branch.read(node.name, (), offset=node.pos)
            _report(doc, target.path + ("when",), None, branch, problems)
        for step in target.steps:
            _follow(doc, step, branch, problems)
    return problems


def _source_columns(doc: Document, comp, mode: Mode, offline: bool, problems: list[Problem]) -> list[str] | None:
    """The source's columns, or None when it cannot say cheaply (or, leniently, at all)."""
    reach = getattr(comp.impl, "plan_columns", "never")
    if reach == "never" or (reach in ("network", "slow") and mode == "lenient") or (reach == "network" and offline):
        return None
    source = None
    options = comp.options
    if reach == "network" and isinstance(options, dict) and "retries" in options:
        options = {**options, "retries": 0}  # a look, not a run: one try, then a warning
    try:
        source = as_source(comp.impl(options, comp.ctx))
        names = source.columns()
    except OptionError:
        return None  # the run reports it at its option, as it always has
    except RouteError as exc:
        if reach == "network":  # unreachable now is not a mistake in the route: say so, check the rest
            comp.ctx.log.warning("could not check the source's columns: %s (--offline skips this)", exc)
        elif mode == "strict":
            where = comp.path + ("path",) if isinstance(comp.options, dict) and "path" in comp.options else comp.path
            problems.append(doc.problem(where, str(exc).removeprefix("error: ")))
        return None
    except Exception:  # noqa: BLE001 - a source's own failure belongs to the run, not the plan
        return None
    finally:
        if source is not None:
            try:
                source.close()
            except Exception:  # noqa: BLE001, S110 - closing after a look at the header
                pass
    return None if names is None else list(names)


def _follow(doc: Document, step, flow: ColumnFlow, problems: list[Problem]) -> None:
    """Apply one rule's declaration to the flow and report what it read that is not there."""
    declare = step.spec.columns
    if declare is None:
        flow.forget()
        return
    try:
        declare(step.raw, flow)
    except Exception:  # noqa: BLE001 - a plugin's declaration must never stop the route
        flow.forget()
    _report(doc, step.path, step.implied, flow, problems)


def _report(doc: Document, at: tuple, implied: str | None, flow: ColumnFlow, problems: list[Problem]) -> None:
    for unknown in flow.unknown_columns:
        where = unknown.where
        if implied and where[:1] == (implied,):
            where = where[1:]  # `trim: [facilty]`: the list is the options, there is no `columns:` key
        problems.append(doc.problem(at + where, unknown.message, at_key=unknown.at_key, offset=unknown.offset))
    flow.unknown_columns.clear()

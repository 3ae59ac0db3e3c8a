"""What the built-in rules whose options are not a plain `columns`/`column`/`into` do to the
columns, for the planner's column check (see pipeline.basics.columnflow). Each function gets the
rule's checked options (after its shorthand) and the flow at that step; the simple rules declare
theirs with `uses(...)` at the rule itself."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pipeline.basics.columnflow import ColumnFlow
from pipeline.expressions import ExpressionError, parse
from pipeline.expressions.nodes import columns_of


def _names(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value or []]


def read_expression(flow: ColumnFlow, text, where: tuple, condition: bool = False) -> None:
    """Every column an expression names must be there; the position points into the text."""
    try:
        expression = parse(str(text), condition=condition)
    except ExpressionError:
        return  # reported when the rule was bound
    for node in columns_of(expression.tree):
        flow.read(node.name, where, offset=node.pos)


def rename(options: Mapping, flow: ColumnFlow) -> None:
    flow.reads_keys(options)
    flow.rename({str(k): str(v) for k, v in options.items()})


def select(options: Mapping, flow: ColumnFlow) -> None:
    flow.reads(options, "columns")
    flow.keep(_names(options.get("columns")))


def drop(options: Mapping, flow: ColumnFlow) -> None:
    if not options.get("ignore_missing"):
        flow.reads(options, "columns")
    flow.drop(_names(options.get("columns")))


def filter(options: Mapping, flow: ColumnFlow) -> None:  # noqa: A001 - named after its rule
    read_expression(flow, options.get("expression"), ("expression",), condition=True)


def derive(options: Mapping, flow: ColumnFlow) -> None:
    for name, text in options.items():  # in order: a later column may use an earlier one
        read_expression(flow, text, (name,))
        flow.add(str(name))


def keys_are_columns(options: Mapping, flow: ColumnFlow) -> None:
    """cast, fill, replace: a mapping whose keys are the columns it works on."""
    flow.reads_keys(options)


def regex_extract(options: Mapping, flow: ColumnFlow) -> None:
    flow.reads(options, "column")
    if options.get("into"):
        flow.add(_names(options["into"]))
        return
    try:
        groups = list(re.compile(str(options.get("pattern", ""))).groupindex)
    except re.error:
        flow.forget()  # RE2 syntax Python cannot read: the new columns are not known here
        return
    flow.add(groups)


def join(options: Mapping, flow: ColumnFlow) -> None:
    flow.reads(options, "column")
    if options.get("columns"):
        prefix = str(options.get("prefix") or "")
        flow.add([prefix + c for c in _names(options["columns"])])
    else:
        flow.forget()  # every column of the table: known only once it is loaded


def jmespath(options: Mapping, flow: ColumnFlow) -> None:
    flow.reads(options, "column")
    flow.add([str(k) for k in options.get("extract") or {}])


def sort(options: Mapping, flow: ColumnFlow) -> None:
    flow.reads(options, "by")
    if isinstance(options.get("descending"), list):
        flow.reads(options, "descending")


def aggregate(options: Mapping, flow: ColumnFlow) -> None:
    flow.reads(options, "by")
    compute = options.get("compute") or {}
    for name, how in compute.items():
        if isinstance(how, Mapping):
            for fn, column in how.items():
                flow.read(column, ("compute", name, fn))
    flow.keep(_names(options.get("by")) + [str(k) for k in compute])


def unpivot(options: Mapping, flow: ColumnFlow) -> None:
    flow.reads(options, "columns")
    flow.drop(_names(options.get("columns")))
    flow.add(str(options.get("name", "name")), str(options.get("value", "value")))


def pivot(options: Mapping, flow: ColumnFlow) -> None:
    for key in ("index", "name", "value"):
        flow.reads(options, key)
    if options.get("names"):
        flow.keep(_names(options.get("index")) + _names(options["names"]))
    else:
        flow.forget()  # one column per value found in the data

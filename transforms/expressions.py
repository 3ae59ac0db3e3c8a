"""Rules built on the expression language: `filter` (keep rows) and `derive` (compute columns).

Both parse their expressions once, in `bind`, so a typo in a function name or a stray `.` is
reported with its route line and column before any row is read; per chunk they only evaluate,
over whole columns (pipeline.expressions). The language is described in that package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.plugins import rule
from pipeline.expressions import Expression, ExpressionError, parse
from transforms import column_use

if TYPE_CHECKING:
    import pandas as pd


FILTER_SCHEMA = {
    "type": "object",
    "required": ["expression"],
    "additionalProperties": False,
    "properties": {
        "expression": {"type": "string", "minLength": 1, "description": "a condition; rows where it is true are kept"},
        "reject": {
            "type": "boolean",
            "default": False,
            "description": "send the other rows to the rejects file instead of dropping them",
        },
    },
}

DERIVE_SCHEMA = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": {
        "type": "string",
        "minLength": 1,
        "description": "the expression that computes this column",
    },
}


@dataclass(frozen=True)
class FilterPlan:
    expression: Expression
    reject: bool = False


@dataclass(frozen=True)
class DerivePlan:
    columns: tuple[tuple[str, Expression], ...]


def _parse(text: str, path: tuple, condition: bool = False) -> Expression:
    try:
        return parse(text, condition=condition)
    except ExpressionError as exc:
        raise OptionError(exc.message, path, offset=exc.position) from None


def _failed(exc: ExpressionError, expr: Expression, prefix: str = "") -> RunFailed:
    """A run-time expression error, quoting the expression (one step may hold several)."""
    where = f" at column {exc.position + 1}" if exc.position is not None else ""
    return RunFailed(f'{prefix}"{expr.text}"{where}: {exc.message}')


def bind_filter(options, ctx=None) -> FilterPlan:
    if isinstance(options, FilterPlan):
        return options
    if not isinstance(options, dict):
        options = {"expression": options}
    return FilterPlan(
        _parse(options["expression"], ("expression",), condition=True), bool(options.get("reject", False))
    )


def bind_derive(options, ctx=None) -> DerivePlan:
    if isinstance(options, DerivePlan):
        return options
    return DerivePlan(tuple((str(name), _parse(text, (name,))) for name, text in options.items()))


@rule(FILTER_SCHEMA, shorthand="expression", bind=bind_filter, columns=column_use.filter)
def filter(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:  # noqa: A001 - the rule's YAML name
    """Keep the rows where a condition is true; the others are dropped (or rejected).

    A row whose condition is null (say `gross >= 0` where gross is empty) is not true, so it goes,
    as in SQL's WHERE: write `gross >= 0 or gross is null` to keep it. Dropped rows show in the
    step's rows in/out; with `reject: true` they go to the rejects file instead, with the reason
    "filter: <expression> is not true", and count against on_error.max_rejects.

    ```yaml
    - filter: "gross >= 0 and department is not null"
    - filter: "town in ['Hartford', 'New Haven'] and year(pay_date) >= 2020"
    - filter: {expression: "matches(zip, '^[0-9]{5}$')", reject: true}
    ```
    """
    plan = bind_filter(options, ctx)
    try:
        keep = plan.expression.mask(chunk)
    except ExpressionError as exc:
        raise _failed(exc, plan.expression) from exc
    if keep.all():
        return chunk
    if plan.reject:
        ctx.reject(chunk[~keep], f"filter: {plan.expression.text} is not true")
    out = chunk[keep]
    out.attrs = dict(chunk.attrs)
    return out


@rule(DERIVE_SCHEMA, bind=bind_derive, columns=column_use.derive)
def derive(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Add or replace columns computed from expressions over the row's other columns.

    Columns are computed in the order written, so a later one may use an earlier one. A literal
    (`"'portal'"`, `"2024"`) fills the whole column. Text is quoted inside the YAML string;
    column names with spaces go in backticks.

    ```yaml
    - derive:
        fiscal_year: "if(month(pay_date) >= 7, year(pay_date) + 1, year(pay_date))"
        label: "concat(`Last Name`, ', ', `First Name`)"
        net: "coalesce(gross, 0) - coalesce(deductions, 0)"
        source: "'portal'"
    ```
    """
    plan = bind_derive(options, ctx)
    out = chunk.copy(deep=False)
    for name, expr in plan.columns:
        try:
            out[name] = expr.evaluate(out)
        except ExpressionError as exc:
            raise _failed(exc, expr, f"{name}: ") from exc
    out.attrs = dict(chunk.attrs)
    return out

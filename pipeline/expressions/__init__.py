"""The expression language of `filter`, `derive` and target `when`: parsed once, run per chunk.

    from pipeline.expressions import parse, ExpressionError
    expr = parse("gross >= 0 and `Pay Date` is not null")   # ExpressionError(message, position)
    expr.columns                 # frozenset of the column names it reads
    expr.evaluate(chunk)         # pd.Series on chunk.index, Arrow-backed
    expr.mask(chunk)             # numpy bool array: True where a condition is true (null -> False)

The language: columns by bare name or in backticks (`` `Pay Date` ``); literals 12, 1.5, 'text' or
"text", true, false, null; `+ - * / %`; `== != < <= > >=`; `and or not`; `x in [1, 2]`,
`x not in [...]`; `x is null`, `x is not null`; parentheses; and the functions in
functions.FUNCTIONS. It is parsed by hand (never by Python's eval or ast), so there is no way to
reach attributes, imports, files or the network: only columns of the chunk and the listed
functions exist. Null behaves as in SQL; the type rules are in coerce.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.expressions.errors import NAMES, ExpressionError
from pipeline.expressions.functions import FUNCTIONS
from pipeline.expressions.nodes import (
    ARITHMETIC,
    Binary,
    Call,
    Column,
    InList,
    IsNull,
    Literal,
    Node,
    Unary,
    columns_of,
)
from pipeline.expressions.parser import TOO_DEEP, parse_tree

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["parse", "Expression", "ExpressionError", "FUNCTIONS"]


def parse(text: str, *, condition: bool = False) -> Expression:
    """Parse `text` once. With condition=True, refuse expressions that cannot give true/false
    (like `amount + 1`), as `filter` and `when` need a condition."""
    try:
        expr = Expression(text, parse_tree(text))
    except RecursionError:  # the parser bounds depth itself; this is the last line of defence
        raise ExpressionError(TOO_DEEP, 0) from None
    if condition and expr.kind not in ("boolean", "any", "null"):
        raise ExpressionError(
            f"this must be a condition (true or false for each row), but it gives "
            f"{NAMES.get(expr.kind, 'values')}; compare it, e.g. `... > 0`",
            0,
        )
    return expr


class Expression:
    """A parsed expression: which columns it reads, and how to compute it over a chunk."""

    def __init__(self, text: str, tree: Node):
        self.text = text
        self.tree = tree
        self.columns: frozenset[str] = frozenset(c.name for c in columns_of(tree))
        self.kind = static_kind(tree)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    # Evaluating needs pandas and Arrow (evaluator.py); parsing does not, so `route validate` and the
    # planner never load them for an expression.
    def evaluate(self, frame: pd.DataFrame) -> pd.Series:
        """The value for every row of `frame`, as an Arrow-backed Series on frame.index."""
        from pipeline.expressions.evaluator import evaluate

        return evaluate(self, frame)

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Where the condition is true (null and false are both False), for row selection."""
        from pipeline.expressions.evaluator import mask

        return mask(self, frame)


def static_kind(node: Node) -> str:
    """What an expression gives, as far as the text alone tells: "boolean", "number", "text",
    "date", "value" (some non-boolean) or "any" (depends on the columns)."""
    if isinstance(node, Literal):
        return "number" if node.kind == "integer" else node.kind
    if isinstance(node, Column):
        return "any"
    if isinstance(node, Unary):
        return "boolean" if node.op == "not" else "number"
    if isinstance(node, Binary):
        return "value" if node.op in ARITHMETIC else "boolean"
    if isinstance(node, (InList, IsNull)):
        return "boolean"
    if isinstance(node, Call):
        returns = FUNCTIONS[node.name].returns
        if returns != "any":
            return "number" if returns == "integer" else returns
        kinds = {static_kind(a) for a in (node.args[1:] if node.name == "if" else node.args)} - {"null"}
        if node.name == "nullif":
            kinds = {static_kind(node.args[0])}
        if kinds - {"boolean", "any"}:
            return "value"
        return "boolean" if kinds == {"boolean"} else "any"
    return "any"

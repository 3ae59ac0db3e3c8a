"""Evaluate a syntax tree over a whole chunk with pyarrow.compute: one kernel call per node.

No Python runs per row. Literals stay Arrow scalars (compute kernels broadcast them), and a
sub-expression written twice is computed once per chunk. Null follows SQL: arithmetic and
comparisons with null give null, `and`/`or` use three-valued (Kleene) logic, and division or
remainder by zero gives null rather than failing the run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics.dtypes import arrow
from pipeline.expressions import coerce
from pipeline.expressions.coerce import Datum, Subject
from pipeline.expressions.errors import NAMES, ExpressionError, nearest
from pipeline.expressions.kernels import KERNELS
from pipeline.expressions.nodes import (
    ARITHMETIC,
    COMPARISON,
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
from pipeline.expressions.parser import TOO_DEEP

if TYPE_CHECKING:
    from pipeline.expressions import Expression

_LITERAL_TYPES = {
    "integer": pa.int64(),
    "number": pa.float64(),
    "text": pa.string(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "null": pa.null(),
}
_COMPARE = {
    "==": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}
_ARITHMETIC = {"+": pc.add_checked, "-": pc.subtract_checked, "*": pc.multiply_checked}
_US_PER_DAY = 86_400_000_000


def evaluate(expr: Expression, frame: pd.DataFrame) -> pd.Series:
    """The value of `expr` for every row of `frame`, as an Arrow-backed Series on frame.index."""
    data = _values(expr, frame)
    if pa.types.is_null(data.type):
        data = data.cast(pa.string())  # an all-null column is text until something says otherwise
    return pd.Series(pd.arrays.ArrowExtensionArray(data), index=frame.index)


def mask(expr: Expression, frame: pd.DataFrame) -> np.ndarray:
    """Where the condition `expr` is true (null and false are both False), for row selection."""
    data = _values(expr, frame)
    cat = coerce.category(data)
    if cat == "null":
        return np.zeros(len(frame), dtype=bool)
    if cat != "boolean":
        raise ExpressionError(
            f"this must be a condition (true or false for each row), but it gives "
            f"{NAMES[cat]}; compare it, e.g. `... > 0`",
            0,
        )
    return pc.fill_null(data, False).to_numpy(zero_copy_only=False)


def _values(expr: Expression, frame: pd.DataFrame) -> pa.ChunkedArray | pa.Array:
    evaluator = Evaluator(expr.text, frame)
    for col in columns_of(expr.tree):  # the first unknown column, as written, is the one to name
        if col.name not in frame.columns:
            evaluator.column(col)
    try:
        return _full_column(evaluator.eval(expr.tree), len(frame))
    except RecursionError:
        raise ExpressionError(TOO_DEEP, 0) from None


def _full_column(value, n: int) -> pa.ChunkedArray | pa.Array:
    """A full-length column of a canonical type; literal results are repeated to n rows."""
    if isinstance(value, pa.Scalar):
        value = pa.nulls(n, value.type) if not value.is_valid else pa.repeat(value, n)
    return coerce.normalize(value)


def literal(node: Literal) -> pa.Scalar:
    return pa.scalar(node.value, _LITERAL_TYPES[node.kind])


class Evaluator:
    """One evaluation of one expression over one chunk."""

    def __init__(self, text: str, frame: pd.DataFrame):
        self.text = text
        self.frame = frame
        self.memo: dict[Node, Datum] = {}

    def subject(self, node: Node) -> Subject:
        if isinstance(node, Column):
            return Subject(f"column '{node.name}'", node.pos, self.frame.index)
        written = self.text[node.pos : node.end]
        if isinstance(node, Literal):
            return Subject(f"the text {written}" if node.kind == "text" else written, node.pos)
        return Subject(f"'{written}'", node.pos, self.frame.index)

    def eval(self, node: Node) -> Datum:
        if isinstance(node, Literal):
            return literal(node)
        if node in self.memo:
            return self.memo[node]
        try:
            value = self._dispatch(node)
        except pa.ArrowException as exc:  # a kernel refused: say where
            raise ExpressionError(f"cannot compute '{self.text[node.pos : node.end]}': {exc}", node.pos) from None
        self.memo[node] = value
        return value

    def _dispatch(self, node: Node) -> Datum:
        if isinstance(node, Column):
            return self.column(node)
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, InList):
            return self.in_list(node)
        if isinstance(node, IsNull):
            value = self.eval(node.operand)
            isnull = pc.is_null(value, nan_is_null=True)
            return pc.invert(isnull) if node.negated else isnull
        if isinstance(node, Call):
            args = [self.eval(a) for a in node.args]
            return KERNELS[node.name](self, node, args)
        raise AssertionError(f"unknown node {node!r}")

    def column(self, node: Column) -> Datum:
        if node.name not in self.frame.columns:
            raise ExpressionError(
                f"unknown column '{node.name}'{nearest(node.name, map(str, self.frame.columns))}", node.pos
            )
        series = self.frame[node.name]
        if isinstance(series, pd.DataFrame):
            raise ExpressionError(f"the chunk has more than one column named '{node.name}'", node.pos)
        return coerce.normalize(arrow(series))

    def unary(self, node: Unary) -> Datum:
        value = self.eval(node.operand)
        subject = self.subject(node.operand)
        if node.op == "not":
            return pc.invert(coerce.to_boolean(value, subject))
        number = coerce.to_number(value, subject)
        return pc.negate_checked(number) if node.op == "-" else number

    def binary(self, node: Binary) -> Datum:
        a, b = self.eval(node.left), self.eval(node.right)
        sa, sb = self.subject(node.left), self.subject(node.right)
        if node.op in ("and", "or"):
            a, b = coerce.to_boolean(a, sa), coerce.to_boolean(b, sb)
            return pc.and_kleene(a, b) if node.op == "and" else pc.or_kleene(a, b)
        if node.op in COMPARISON:
            a, b = coerce.comparable(a, sa, b, sb)
            return _COMPARE[node.op](a, b)
        assert node.op in ARITHMETIC
        temporal = {"date", "datetime"}
        if coerce.category(a) in temporal or coerce.category(b) in temporal:
            return self.date_arithmetic(node, a, sa, b, sb)
        hint = coerce.CAST_HINT + ("; to join text, use concat(a, b)" if node.op == "+" else "")
        a, b = coerce.to_number(a, sa, hint), coerce.to_number(b, sb, hint)
        if node.op in _ARITHMETIC:
            return _ARITHMETIC[node.op](a, b)
        b = pc.if_else(pc.equal(b, 0), pa.scalar(None, b.type), b)  # x / 0 and x % 0 are null
        if node.op == "/":
            return pc.divide(a.cast(pa.float64()), b.cast(pa.float64()))
        return pc.remainder(a, b)  # sign of the dividend, as in SQL

    def date_arithmetic(self, node: Binary, a, sa, b, sb) -> Datum:
        """date ± days, datetime ± days, date - date (whole days), datetime - datetime (days)."""
        ca, cb = coerce.category(a), coerce.category(b)
        temporal = ("date", "datetime")
        if node.op == "-" and {ca, cb} <= {"date", "datetime", "text", "null"}:
            a, b = coerce.comparable(a, sa, b, sb)
            if coerce.category(a) == "date":
                return pc.subtract(a.cast(pa.int32()).cast(pa.int64()), b.cast(pa.int32()).cast(pa.int64()))
            micros = pc.subtract(a, b).cast(pa.int64())
            return pc.divide(micros.cast(pa.float64()), float(_US_PER_DAY))
        if node.op in ("+", "-") and ca in temporal and cb not in temporal:
            return _shift(a, coerce.to_number(b, sb), node.op)
        if node.op == "+" and cb in temporal and ca not in temporal:
            return _shift(b, coerce.to_number(a, sa), "+")
        raise ExpressionError(
            f"cannot use '{node.op}' with {NAMES[ca]} and {NAMES[cb]}: dates take "
            f"'date + days', 'date - days' and 'date - date' (days between)",
            node.op_pos,
        )

    def in_list(self, node: InList) -> Datum:
        value = self.eval(node.operand)
        items = [i.value for i in node.items if i.kind != "null"]
        has_null = len(items) < len(node.items)
        if not items:  # x in [] is false; x in [null] is null
            result = pa.scalar(None if has_null else False, pa.bool_())
        else:
            kinds = {i.kind for i in node.items} - {"null"}
            kind = "number" if kinds == {"integer", "number"} else kinds.pop()
            where = Subject(f"the list [{self.text[node.items[0].pos : node.items[-1].end]}]", node.items[0].pos)
            if kind == "text" and coerce.category(value) in ("integer", "number"):
                values = _numbers_in_list(node, where, self.subject(node.operand))
            else:
                values = pa.array(items, _LITERAL_TYPES[kind])
            value, values = coerce.comparable(value, self.subject(node.operand), values, where)
            if values.type != value.type:
                value, values = value.cast(pa.float64()), values.cast(pa.float64())
            single = isinstance(value, pa.Scalar)
            found = pc.is_in(pa.array([value]) if single else value, value_set=values, skip_nulls=True)
            found = pc.if_else(pc.is_null(pa.array([value]) if single else value), None, found)
            if has_null:  # SQL: x in [1, null] is null, not false, when x is not 1
                found = pc.if_else(found, True, pa.scalar(None, pa.bool_()))
            result = found[0] if single else found
        return pc.invert(result) if node.negated else result


def _numbers_in_list(node: InList, where: Subject, operand: Subject) -> pa.Array:
    """A list of text compared with numbers: each item must read as a number."""
    numbers = []
    for item in node.items:
        try:
            numbers.append(None if item.value is None else float(item.value.strip()))
        except ValueError:
            raise ExpressionError(
                f"{where.label} holds '{item.value}', which is not a number, but "
                f"{operand.label} is a number: write the list as numbers, like [1, 2]",
                item.pos,
            ) from None
    return pa.array([n for n in numbers if n is not None], pa.float64())


def _shift(when: Datum, days: Datum, op: str) -> Datum:
    if op == "-":
        days = pc.negate_checked(days)
    if coerce.category(when) == "date":
        whole = pc.round(days).cast(pa.int64()) if pa.types.is_floating(days.type) else days
        return pc.add_checked(when.cast(pa.int32()).cast(pa.int64()), whole).cast(pa.int32()).cast(pa.date32())
    micros = pc.round(pc.multiply(days.cast(pa.float64()), float(_US_PER_DAY))).cast(pa.int64())
    return pc.add_checked(when, micros.cast(pa.duration("us")))

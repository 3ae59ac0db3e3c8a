"""The syntax tree of an expression: plain frozen records, each remembering where it was written.

`pos`/`end` are 0-based offsets into the expression text, so an error found while evaluating can
still point at the part of the text to blame. `key` is the node without positions: two identical
sub-expressions (`year(d)` written twice) share one evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Node:
    pos: int = field(compare=False)
    end: int = field(compare=False)


@dataclass(frozen=True)
class Literal(Node):
    value: Any = None  # int, float, str, bool, datetime.date or None
    kind: str = "null"  # "number", "text", "boolean", "date", "null"


@dataclass(frozen=True)
class Column(Node):
    name: str = ""


@dataclass(frozen=True)
class Unary(Node):
    op: str = ""  # "-", "+", "not"
    operand: Node | None = None


@dataclass(frozen=True)
class Binary(Node):
    op: str = ""  # "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or"
    left: Node | None = None
    right: Node | None = None
    op_pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class InList(Node):
    operand: Node | None = None
    items: tuple[Literal, ...] = ()
    negated: bool = False


@dataclass(frozen=True)
class IsNull(Node):
    operand: Node | None = None
    negated: bool = False


@dataclass(frozen=True)
class Call(Node):
    name: str = ""
    args: tuple[Node, ...] = ()


ARITHMETIC = ("+", "-", "*", "/", "%")
COMPARISON = ("==", "!=", "<", "<=", ">", ">=")
LOGIC = ("and", "or")


def columns_of(node: Node) -> list[Column]:
    """Every column reference in `node`, in the order written."""
    found: list[Column] = []

    def walk(n: Node) -> None:
        if isinstance(n, Column):
            found.append(n)
        elif isinstance(n, Unary):
            walk(n.operand)
        elif isinstance(n, Binary):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, (InList, IsNull)):
            walk(n.operand)
        elif isinstance(n, Call):
            for a in n.args:
                walk(a)

    walk(node)
    return found

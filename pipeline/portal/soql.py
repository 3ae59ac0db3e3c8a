"""SoQL parsing: $select, $where, $order, $group, $having and whole $query statements -> trees.

The grammar is the part of SoQL that publishers and clients use: column references (bare, in
backticks, or system fields such as `:id`), text/number/boolean/null literals, comparisons,
`and`/`or`/`not`, `is [not] null`, `[not] in (...)`, `[not] like`, `[not] between ... and ...`,
arithmetic, `||`, function calls (aggregates included), subfields (`location.latitude` is
`("sub", column, "latitude")`) and `$select=distinct ...` (`Parser.distinct`). Trees are plain tuples; query.py turns
them into SQL. A syntax error is a 400 `query.compiler.malformed` that quotes the clause.

Hostile input is bounded here, so that every wrong query is a 400 and none is a 500 or a
RecursionError: parentheses, function calls, `not` and signs nest at most MAX_NESTING deep (the
parser recurses once per level), a finished tree is at most MAX_DEPTH deep (the compiler recurses
once per level, SQLite refuses expressions deeper than 1000), and a literal is at most
MAX_NUMBER_CHARS / MAX_TEXT_CHARS long. `and`/`or` chains are not nesting: a flat chain of any
length becomes a balanced tree, so a 3,000-term `or` is only 12 levels deep and simply works.
"""

# Longer than 400 lines because it is the SoQL grammar, a hand-written parser whose rules read best
# together.

from __future__ import annotations

import re

from pipeline.portal.errors import bad_request

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<quoted>`(?:[^`]|``)*`)
  | (?P<sysstar>:\*)
  | (?P<ident>[A-Za-z_:@][A-Za-z0-9_:@]*)
  | (?P<op>>=|<=|!=|<>|==|\|\||[=<>+\-*/%(),.])
""",
    re.X,
)

MAX_NESTING = 40  # parentheses, calls, IN lists, NOT and signs inside one another
MAX_DEPTH = 100  # levels of the finished tree (a + b + c ... is one level per term)
MAX_NUMBER_CHARS = 100
MAX_TEXT_CHARS = 100_000
_INT64 = 2**63 - 1
_SHOWN = 200  # characters of a clause quoted in an error message

_KEYWORDS = {
    "and",
    "or",
    "not",
    "is",
    "null",
    "in",
    "like",
    "between",
    "as",
    "asc",
    "desc",
    "true",
    "false",
    "distinct",
    "select",
    "where",
    "group",
    "having",
    "order",
    "by",
    "limit",
    "offset",
    "search",
    "first",
    "last",
    "nulls",
}


class Token:
    __slots__ = ("kind", "value", "pos")

    def __init__(self, kind, value, pos):
        self.kind, self.value, self.pos = kind, value, pos

    def word(self) -> str | None:
        return self.value.lower() if self.kind == "ident" else None


def tokenize(text: str, clause: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise malformed(clause, text, f"unexpected character {text[pos]!r} at position {pos + 1}")
        kind = m.lastgroup
        if kind != "ws":
            value = m.group()
            if kind == "str":
                value = value[1:-1].replace(value[0] * 2, value[0])
            elif kind == "quoted":
                value, kind = value[1:-1].replace("``", "`"), "ident_q"
            tokens.append(Token(kind, value, pos))
        pos = m.end()
    return tokens


def malformed(clause: str, text: str, why: str):
    shown = text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
    return bad_request(
        "query.compiler.malformed", f"Could not parse SoQL {clause} '{shown}': {why}", query=text, clause=clause
    )


def depth(node) -> int:
    """Levels of a tree, counted without recursion (the tree may be the thing that is too deep)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        deepest = max(deepest, d)
        for part in n[1:]:
            if isinstance(part, tuple) and part and isinstance(part[0], str):
                stack.append((part, d + 1))
            elif isinstance(part, list):
                stack.extend((p, d + 1) for p in part if isinstance(p, tuple))
    return deepest


def _balanced(op: str, items: list):
    """`a op b op c ...` as a balanced tree: same meaning for AND and OR, log2(n) levels deep."""
    while len(items) > 1:
        pairs = [("bin", op, items[k], items[k + 1]) for k in range(0, len(items) - 1, 2)]
        items = pairs + ([items[-1]] if len(items) % 2 else [])
    return items[0]


class Parser:
    def __init__(self, text: str, clause: str):
        self.text, self.clause = text, clause
        self.tokens = tokenize(text, clause)
        self.i = 0
        self.nesting = 0
        self.distinct = False  # `$select=distinct a, b`

    # -- helpers
    def peek(self, ahead: int = 0) -> Token | None:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def word(self, *words) -> bool:
        t = self.peek()
        return t is not None and t.word() in words

    def op(self, *ops) -> bool:
        t = self.peek()
        return t is not None and t.kind == "op" and t.value in ops

    def take(self) -> Token:
        t = self.peek()
        if t is None:
            raise self.error("unexpected end")
        self.i += 1
        return t

    def expect_op(self, op: str) -> None:
        if not self.op(op):
            raise self.error(f"expected '{op}'")
        self.i += 1

    def expect_word(self, word: str) -> None:
        if not self.word(word):
            raise self.error(f"expected {word.upper()}")
        self.i += 1

    def error(self, why: str):
        t = self.peek()
        if t is None:
            return malformed(self.clause, self.text, why + " at the end")
        value = t.value if len(t.value) <= 40 else t.value[:40] + "..."
        return malformed(self.clause, self.text, f"{why} at position {t.pos + 1} ('{value}')")

    def done(self) -> None:
        if self.peek() is not None:
            raise self.error("unexpected text")

    def nest(self) -> None:
        """One level deeper; refused past MAX_NESTING (the caller undoes it with `self.nesting -= 1`)."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error(
                f"nested more than {MAX_NESTING} levels deep (parentheses, function calls, IN lists, NOT and signs)"
            )

    def checked(self, node):
        """A finished expression, refused when deeper than MAX_DEPTH."""
        if depth(node) > MAX_DEPTH:
            raise malformed(
                self.clause,
                self.text,
                f"the expression is more than {MAX_DEPTH} levels deep; "
                "write long chains of + - * / || with fewer terms",
            )
        return node

    # -- clauses
    def select_list(self) -> list:
        items = []
        if self.word("distinct") and not (self.peek(1) is not None and self.peek(1).value == "("):
            self.i += 1
            self.distinct = True
        while True:
            if self.op("*"):
                self.i += 1
                items.append(("all", None))
            elif self.peek() is not None and self.peek().kind == "sysstar":
                self.i += 1
                items.append(("system", None))
            else:
                start = self.i
                node = self.checked(self.expr())
                alias = None
                if self.word("as"):
                    self.i += 1
                    t = self.take()
                    if t.kind not in ("ident", "ident_q"):
                        raise self.error("expected an alias after AS")
                    alias = t.value
                items.append(("expr", (node, alias, self.tokens[start : self.i])))
            if not self.op(","):
                break
            self.i += 1
        self.done()
        return items

    def order_list(self) -> list:
        items = []
        while True:
            node = self.checked(self.expr())
            desc = False
            if self.word("asc", "desc"):
                desc = self.take().word() == "desc"
            if self.word("nulls"):
                self.i += 1
                if not self.word("first", "last"):
                    raise self.error("expected FIRST or LAST")
                self.i += 1
            items.append((node, desc))
            if not self.op(","):
                break
            self.i += 1
        self.done()
        return items

    def expr_list(self) -> list:
        items = [self.checked(self.expr())]
        while self.op(","):
            self.i += 1
            items.append(self.checked(self.expr()))
        self.done()
        return items

    def condition(self):
        node = self.checked(self.expr())
        self.done()
        return node

    # -- expressions, lowest precedence first
    def expr(self):
        self.nest()
        node = self.or_()
        self.nesting -= 1
        return node

    def or_(self):
        items = [self.and_()]
        while self.word("or"):
            self.i += 1
            items.append(self.and_())
        return _balanced("OR", items)

    def and_(self):
        items = [self.not_()]
        while self.word("and"):
            self.i += 1
            items.append(self.not_())
        return _balanced("AND", items)

    def not_(self):
        if self.word("not"):
            self.i += 1
            self.nest()
            node = ("not", self.not_())
            self.nesting -= 1
            return node
        return self.compare()

    def compare(self):
        node = self.concat()
        if self.op("=", "==", "!=", "<>", "<", "<=", ">", ">="):
            op = self.take().value
            op = {"==": "=", "!=": "<>"}.get(op, op)
            return ("bin", op, node, self.concat())
        if self.word("is"):
            self.i += 1
            negated = self.word("not")
            if negated:
                self.i += 1
            self.expect_word("null")
            return ("isnull", node, negated)
        negated = False
        if self.word("not") and self.peek(1) is not None and self.peek(1).word() in ("in", "like", "between"):
            self.i += 1
            negated = True
        if self.word("in"):
            self.i += 1
            self.expect_op("(")
            items = [self.expr()]
            while self.op(","):
                self.i += 1
                items.append(self.expr())
            self.expect_op(")")
            return ("in", node, items, negated)
        if self.word("like"):
            self.i += 1
            return ("like", node, self.concat(), negated)
        if self.word("between"):
            self.i += 1
            low = self.concat()
            self.expect_word("and")
            return ("between", node, low, self.concat(), negated)
        if negated:
            raise self.error("expected IN, LIKE or BETWEEN after NOT")
        return node

    def concat(self):
        node = self.additive()
        while self.op("||"):
            self.i += 1
            node = ("bin", "||", node, self.additive())
        return node

    def additive(self):
        node = self.term()
        while self.op("+", "-"):
            node = ("bin", self.take().value, node, self.term())
        return node

    def term(self):
        node = self.unary()
        while self.op("*", "/", "%"):
            node = ("bin", self.take().value, node, self.unary())
        return node

    def unary(self):
        if self.op("-", "+"):
            sign = self.take().value
            self.nest()
            node = self.unary()
            self.nesting -= 1
            return ("neg", node) if sign == "-" else node
        return self.primary()

    def primary(self):
        """A value, then any `::type` casts after it (`amount::number`, `'2024-01-05'::floating_timestamp`)."""
        node = self.value()
        while self.peek() is not None and self.peek().kind == "ident" and self.peek().value.startswith("::"):
            node = self.cast(node, self.take().value[2:])
        return node

    def cast(self, node, types: str):
        for name in types.split("::"):
            if not name:
                raise self.error("expected a type after '::'")
            node = ("cast", node, name.lower())
        return node

    def value(self):
        t = self.take()
        if t.kind == "ident" and "::" in t.value.lstrip(":")[1:] and not t.value.startswith("::"):
            head, _, types = t.value.partition("::") if not t.value.startswith(":") else self._system_cast(t.value)
            return self.cast(self.subfields(("col", head)), types)
        if t.kind == "str":
            if len(t.value) > MAX_TEXT_CHARS:
                self.i -= 1
                raise self.error(f"a text literal longer than {MAX_TEXT_CHARS:,} characters")
            return ("lit", t.value, "text")
        if t.kind == "num":
            return ("lit", self.number(t), "number")
        if t.kind == "op" and t.value == "(":
            node = self.expr()
            self.expect_op(")")
            return node
        if t.kind == "ident_q":
            return self.subfields(("col", t.value))
        if t.kind == "ident":
            w = t.word()
            if w in ("true", "false"):
                return ("lit", w == "true", "bool")
            if w == "null":
                return ("lit", None, "null")
            if self.op("("):
                return self.call(t.value.lower())
            if w in _KEYWORDS and w not in (
                "first",
                "last",
                "search",
                "limit",
                "offset",
                "order",
                "group",
                "having",
                "select",
                "where",
                "by",
                "nulls",
            ):
                self.i -= 1
                raise self.error("expected a value")
            return self.subfields(("col", t.value))
        self.i -= 1
        raise self.error("expected a value")

    @staticmethod
    def _system_cast(value: str):
        head, sep, types = value[1:].partition("::")
        return ":" + head, sep, types

    def subfields(self, node):
        """`location.latitude`, `url.description`: a column's subfield."""
        while self.op(".") and self.peek(1) is not None and self.peek(1).kind == "ident":
            self.i += 1
            node = ("sub", node, self.take().value.lower())
        return node

    def number(self, t: Token):
        """A number literal: an int when it fits SQLite's 64 bits, else a float (numbers compare as
        REAL in the SQL anyway); longer than MAX_NUMBER_CHARS is refused, not rounded to infinity."""
        if len(t.value) > MAX_NUMBER_CHARS:
            self.i -= 1
            raise self.error(f"a number literal longer than {MAX_NUMBER_CHARS} characters")
        if not any(c in t.value for c in ".eE"):
            value = int(t.value)
            if value <= _INT64:
                return value
        value = float(t.value)
        if value in (float("inf"), float("-inf")):
            self.i -= 1
            raise self.error("a number literal too large for a double")
        return value

    def call(self, name: str):
        self.expect_op("(")
        distinct = False
        args = []
        if self.op("*"):
            self.i += 1
            args.append(("star",))
        elif not self.op(")"):
            if self.word("distinct"):
                self.i += 1
                distinct = True
            args.append(self.expr())
            while self.op(","):
                self.i += 1
                args.append(self.expr())
        self.expect_op(")")
        return ("func", name, args, distinct)


_CLAUSES = [
    ("select",),
    ("where",),
    ("group", "by"),
    ("having",),
    ("order", "by"),
    ("limit",),
    ("offset",),
    ("search",),
]


def split_query(text: str) -> dict[str, str]:
    """A whole `$query` statement -> {"$select": ..., "$where": ..., ...}."""
    tokens = tokenize(text, "$query")
    marks, depth, i = [], 0, 0
    while i < len(tokens):
        t = tokens[i]
        if t.kind == "op" and t.value == "(":
            depth += 1
        elif t.kind == "op" and t.value == ")":
            depth -= 1
        elif depth == 0 and t.kind == "ident":
            for words in _CLAUSES:
                if all(i + k < len(tokens) and tokens[i + k].word() == w for k, w in enumerate(words)):
                    end = tokens[i + len(words) - 1]
                    marks.append(("$" + words[0], t.pos, end.pos + len(end.value)))
                    i += len(words) - 1
                    break
        i += 1
    if not marks or marks[0][1] != 0:
        raise malformed("$query", text, "expected SELECT, WHERE, ORDER BY, ... clauses")
    out = {}
    for j, (name, _start, body_start) in enumerate(marks):
        stop = marks[j + 1][1] if j + 1 < len(marks) else len(text)
        out["$q" if name == "$search" else name] = text[body_start:stop].strip()
    for name in ("$search",):
        out.pop(name, None)
    if "$q" in out:
        out["$q"] = out["$q"].strip("'\"")
    return out

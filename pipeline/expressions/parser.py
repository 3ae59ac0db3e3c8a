"""A recursive-descent parser from tokens to the syntax tree in nodes.py.

Precedence, loosest first: `or`, `and`, `not`, comparisons (`== != < <= > >=`, `in`, `not in`,
`is [not] null`; not chained), `+ -`, `* / %`, unary `- +`, then values: literals, columns,
function calls and parentheses. Keywords are case-insensitive (`AND`, `NULL`); a column whose name
is a keyword is written in backticks. Function calls are checked against the fixed list here, so a
route with an unknown function or a wrong argument count never starts running.

Depth is bounded here, not left to Python's stack: parentheses, calls and unary operators nest at
most MAX_NESTING deep (each level is a few frames of this parser), and the tree at most MAX_DEPTH
deep (`a + a + a + ...` parses in a loop but is evaluated recursively), so hostile text gets an
ExpressionError at the place where it goes too deep instead of a RecursionError.
"""

from __future__ import annotations

import keyword

from pipeline.expressions import functions
from pipeline.expressions.errors import ExpressionError, nearest
from pipeline.expressions.lexer import Token, tokenize
from pipeline.expressions.nodes import Binary, Call, Column, InList, IsNull, Literal, Node, Unary

KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false"}
# Python's own words mean someone is writing code, not an expression: refuse them outright.
PYTHON_WORDS = {w.lower() for w in keyword.kwlist} - KEYWORDS - {"if"}
MAX_NESTING = 50  # parentheses, calls and unary operators inside each other
MAX_DEPTH = 100  # levels of the syntax tree, counting every operator
TOO_DEEP = "the expression is nested too deeply; split it into several derive steps"

HINTS = {
    "none": "write null",
    "elif": "nest if(cond, a, if(cond2, b, c))",
    "else": "use if(cond, a, b)",
    "import": "expressions cannot import anything",
    "lambda": "expressions cannot define functions",
}


def parse_tree(text: str) -> Node:
    """The syntax tree of `text`; ExpressionError with the position of the first problem."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, not {type(text).__name__}", None)
    if not text.strip():
        raise ExpressionError("the expression is empty", 0)
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self._stream = tokenize(text)
        self.tokens: list[Token] = []
        self.i = 0
        self.nesting = 0
        # id(node) -> (depth of its tree, node); the node is kept so that its id is not reused
        self.depths: dict[int, tuple[int, Node]] = {}

    # -- token helpers -------------------------------------------------------------------------
    def peek(self, ahead: int = 0) -> Token:
        while len(self.tokens) <= self.i + ahead:
            if self.tokens and self.tokens[-1].kind == "end":
                return self.tokens[-1]
            self.tokens.append(next(self._stream))
        return self.tokens[self.i + ahead]

    @property
    def tok(self) -> Token:
        return self.peek()

    def advance(self) -> Token:
        tok = self.peek()
        self.i += 1
        return tok

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.value in ops

    def is_word(self, *words: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok.kind == "name" and tok.value.lower() in words

    def describe(self, tok: Token) -> str:
        if tok.kind == "end":
            return "the end of the expression"
        written = self.text[tok.pos : tok.end]
        return f"the text {written}" if tok.kind == "string" else f"'{written}'"

    def expect_op(self, op: str, opened: Token | None = None) -> Token:
        if self.is_op(op):
            return self.advance()
        hint = f" to close the '{opened.value}' at column {opened.pos + 1}" if opened else ""
        raise ExpressionError(f"expected '{op}'{hint} but found {self.describe(self.tok)}", self.tok.pos)

    # -- depth ---------------------------------------------------------------------------------
    def made(self, node: Node, at: int, *children: Node) -> Node:
        """`node`, built from `children`, once its tree is known not to be too deep."""
        depth = 1 + max((self.depths.get(id(c), (1,))[0] for c in children), default=0)
        if depth > MAX_DEPTH:
            raise ExpressionError(TOO_DEEP, at)
        self.depths[id(node)] = (depth, node)
        return node

    def enter(self, tok: Token) -> None:
        """One more level of recursion in the parser; `leave()` undoes it."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise ExpressionError(TOO_DEEP, tok.pos)

    def leave(self) -> None:
        self.nesting -= 1

    # -- grammar -------------------------------------------------------------------------------
    def parse(self) -> Node:
        node = self.or_expr()
        if self.is_word("if"):
            raise ExpressionError("'a if b else c' is written if(b, a, c) here", self.tok.pos)
        if self.tok.kind != "end":
            raise ExpressionError(
                f"found {self.describe(self.tok)} after a complete expression; "
                f"is an operator (and, or, ==, +) or a comma missing?",
                self.tok.pos,
            )
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.is_word("or"):
            op = self.advance()
            right = self.and_expr()
            node = self.made(Binary(node.pos, right.end, "or", node, right, op.pos), op.pos, node, right)
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.is_word("and"):
            op = self.advance()
            right = self.not_expr()
            node = self.made(Binary(node.pos, right.end, "and", node, right, op.pos), op.pos, node, right)
        return node

    def not_expr(self) -> Node:
        if self.is_word("not"):
            op = self.advance()
            self.enter(op)
            operand = self.not_expr()
            self.leave()
            return self.made(Unary(op.pos, operand.end, "not", operand), op.pos, operand)
        return self.comparison()

    def comparison(self) -> Node:
        node = self.additive()
        if self.is_op("==", "!=", "<", "<=", ">", ">="):
            op = self.advance()
            right = self.additive()
            node = self.made(Binary(node.pos, right.end, op.value, node, right, op.pos), op.pos, node, right)
        elif self.is_word("in") or (self.is_word("not") and self.is_word("in", ahead=1)):
            negated = self.is_word("not")
            if negated:
                self.advance()
            self.advance()
            items, end = self.literal_list()
            node = self.made(InList(node.pos, end, node, items, negated), node.pos, node)
        elif self.is_word("is"):
            self.advance()
            negated = self.is_word("not")
            if negated:
                self.advance()
            if not self.is_word("null"):
                raise ExpressionError(
                    f"expected 'null' after 'is{' not' if negated else ''}' but found "
                    f"{self.describe(self.tok)}; compare values with == or !=",
                    self.tok.pos,
                )
            end = self.advance().end
            node = self.made(IsNull(node.pos, end, node, negated), node.pos, node)
        else:
            return node
        if self.is_op("==", "!=", "<", "<=", ">", ">=") or self.is_word("in", "is"):
            raise ExpressionError(
                "comparisons cannot be chained: write 'a < b and b < c', or use parentheses", self.tok.pos
            )
        return node

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.is_op("+", "-"):
            op = self.advance()
            right = self.multiplicative()
            node = self.made(Binary(node.pos, right.end, op.value, node, right, op.pos), op.pos, node, right)
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self.is_op("*", "/", "%"):
            op = self.advance()
            right = self.unary()
            node = self.made(Binary(node.pos, right.end, op.value, node, right, op.pos), op.pos, node, right)
        return node

    def unary(self) -> Node:
        if self.is_op("-", "+"):
            op = self.advance()
            self.enter(op)
            operand = self.unary()
            self.leave()
            if isinstance(operand, Literal) and operand.kind in ("integer", "number"):
                value = -operand.value if op.value == "-" else operand.value
                return Literal(op.pos, operand.end, value, operand.kind)
            return self.made(Unary(op.pos, operand.end, op.value, operand), op.pos, operand)
        return self.primary()

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind == "number":
            self.advance()
            return Literal(tok.pos, tok.end, tok.value, "integer" if isinstance(tok.value, int) else "number")
        if tok.kind == "string":
            self.advance()
            return Literal(tok.pos, tok.end, tok.value, "text")
        if tok.kind == "quoted":
            self.advance()
            return Column(tok.pos, tok.end, tok.value)
        if self.is_op("("):
            opened = self.advance()
            self.enter(opened)
            node = self.or_expr()
            self.leave()
            close = self.expect_op(")", opened)
            # Keep the parenthesised span so messages quote what the user wrote.
            return node if not isinstance(node, Literal) else Literal(opened.pos, close.end, node.value, node.kind)
        if tok.kind == "name":
            return self.name()
        if self.is_op("["):
            raise ExpressionError("a list [...] is only allowed after 'in' or 'not in'", tok.pos)
        raise ExpressionError(
            f"expected a value (a column, a literal or a function call) but found {self.describe(tok)}", tok.pos
        )

    def name(self) -> Node:
        tok = self.advance()
        word = tok.value.lower()
        if word in ("true", "false"):
            return Literal(tok.pos, tok.end, word == "true", "boolean")
        if word == "null":
            return Literal(tok.pos, tok.end, None, "null")
        if word in KEYWORDS:
            raise ExpressionError(
                f"expected a value but found the keyword '{tok.value}'; "
                f"a column with this name must be written in backticks: `{tok.value}`",
                tok.pos,
            )
        if word in PYTHON_WORDS:
            hint = HINTS.get(word, "expressions are not Python")
            raise ExpressionError(
                f"'{tok.value}' is not allowed here: {hint}; a column with this name "
                f"must be written in backticks: `{tok.value}`",
                tok.pos,
            )
        if self.is_op("("):
            return self.call(tok)
        return Column(tok.pos, tok.end, tok.value)

    def call(self, name: Token) -> Node:
        fname = name.value.lower()
        if fname not in functions.FUNCTIONS:
            suggestion = nearest(fname, functions.FUNCTIONS)
            if not suggestion:
                suggestion = "; the functions are: " + ", ".join(sorted(functions.FUNCTIONS))
            raise ExpressionError(f"unknown function '{name.value}'{suggestion}", name.pos)
        opened = self.advance()
        self.enter(opened)
        args: list[Node] = []
        if not self.is_op(")"):
            args.append(self.or_expr())
            while self.is_op(","):
                self.advance()
                args.append(self.or_expr())
        self.leave()
        close = self.expect_op(")", opened)
        call = self.made(Call(name.pos, close.end, fname, tuple(args)), name.pos, *args)
        return functions.check_call(call)

    def literal_list(self) -> tuple[tuple[Literal, ...], int]:
        if not self.is_op("["):
            raise ExpressionError(
                f"expected a list like [1, 2] after 'in' but found {self.describe(self.tok)}", self.tok.pos
            )
        opened = self.advance()
        items: list[Literal] = []
        while not self.is_op("]"):
            if items:
                self.expect_op(",", None)
                if self.is_op("]"):  # a trailing comma is fine
                    break
            start = self.tok.pos
            item = self.unary()
            if not isinstance(item, Literal):
                raise ExpressionError(
                    "the items of an 'in' list must be literals (numbers, 'text', "
                    "true, false, null); compare with == and 'or' for anything else",
                    start,
                )
            items.append(item)
        close = self.expect_op("]", opened)
        kinds = {("number" if i.kind == "integer" else i.kind) for i in items} - {"null"}
        if len(kinds) > 1:
            raise ExpressionError(
                "the items of an 'in' list must all be numbers, all text or all true/false", opened.pos
            )
        return tuple(items), close.end

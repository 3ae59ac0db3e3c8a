"""Turn expression text into tokens, refusing anything that looks like Python reaching outside.

The tokenizer is hand-written so that nothing in the text is ever handed to Python's own parser:
a dot after a name is attribute access and is refused here, as are dunder names and the
characters of other languages' operators (`&&`, `||`, `!`, `=`), each with what to write instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.expressions.errors import ExpressionError

OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "(", ")", "[", "]", ",")

# Operators from other languages: say what this language spells instead of "unexpected character".
FOREIGN = {
    "&&": "use 'and' to combine conditions",
    "||": "use 'or' to combine conditions (and concat() to join text)",
    "<>": "use '!=' for 'not equal'",
    "=": "use '==' to compare values",
    "!": "use 'not' to negate a condition",
    "&": "use 'and' to combine conditions",
    "|": "use 'or' to combine conditions",
    "**": "there is no power operator",
    "//": "there is no floor division operator; use floor(a / b)",
}

ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "`": "`", "0": "\0"}


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "string", "name", "quoted", "op", "end"
    value: object  # int | float | str
    pos: int  # 0-based offset of the first character
    end: int  # offset just past the last character


def tokenize(text: str) -> Iterator[Token]:
    """The tokens of `text`, ending with an "end" token; ExpressionError at the first bad one.

    A generator, so that the parser reports problems in the order they are written."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            token = _number(text, i)
            yield token
            i = token.end
        elif c in "'\"":
            token = _string(text, i)
            yield token
            i = token.end
        elif c == "`":
            token = _quoted_name(text, i)
            yield token
            i = token.end
        elif c.isalpha() or c == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            name = text[i:j]
            if name.startswith("__"):
                raise ExpressionError(
                    f"names starting with '__' are not allowed ('{name}'); "
                    f"a column with this name must be written in backticks: `{name}`",
                    i,
                )
            yield Token("name", name, i, j)
            i = j
        elif c == ".":
            raise ExpressionError(
                "'.' is not allowed: expressions have no attribute access; "
                "write a column whose name holds a dot in backticks, like `a.b`",
                i,
            )
        else:
            for foreign in sorted(FOREIGN, key=len, reverse=True):
                if text.startswith(foreign, i) and not any(
                    text.startswith(op, i) and len(op) >= len(foreign) for op in OPERATORS
                ):
                    raise ExpressionError(f"'{foreign}' is not an operator here: {FOREIGN[foreign]}", i)
            op = next((op for op in OPERATORS if text.startswith(op, i)), None)
            if op is None:
                raise ExpressionError(f"unexpected character {c!r}", i)
            yield Token("op", op, i, i + len(op))
            i += len(op)
    yield Token("end", None, n, n)


def _number(text: str, start: int) -> Token:
    i, n = start, len(text)
    while i < n and text[i].isdigit():
        i += 1
    is_float = False
    if i < n and text[i] == "." and i + 1 < n and text[i + 1].isdigit():
        is_float = True
        i += 1
        while i < n and text[i].isdigit():
            i += 1
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j < n and text[j].isdigit():
            is_float = True
            i = j
            while i < n and text[i].isdigit():
                i += 1
    if i < n and (text[i].isalpha() or text[i] == "_"):
        raise ExpressionError(
            f"'{text[start : i + 1]}' is not a number; a column whose name starts with a digit "
            f"must be written in backticks",
            start,
        )
    raw = text[start:i]
    # Past 19 digits a whole number is beyond a 64-bit integer column: read it as a decimal, which
    # float() does for any length (int() refuses more than 4,300 digits).
    value = float(raw) if is_float or len(raw) > 19 else int(raw)
    if isinstance(value, int) and value >= 2**63:
        value = float(value)
    if value == float("inf"):
        raise ExpressionError(f"the number {_shorten(raw)} is too large; the largest is about 1.8e308", start)
    return Token("number", value, start, i)


def _shorten(raw: str) -> str:
    return raw if len(raw) <= 24 else f"{raw[:10]}...{raw[-6:]} ({len(raw):,} characters)"


def _string(text: str, start: int) -> Token:
    """'text' or "text"; a quote is escaped by doubling it or with a backslash."""
    quote = text[start]
    out: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == quote:
            if i + 1 < n and text[i + 1] == quote:
                out.append(quote)
                i += 2
                continue
            return Token("string", "".join(out), start, i + 1)
        if c == "\\" and i + 1 < n:
            esc = text[i + 1]
            if esc not in ESCAPES:
                raise ExpressionError(f"unknown escape '\\{esc}' in text; write '\\\\' for a backslash", i)
            out.append(ESCAPES[esc])
            i += 2
            continue
        out.append(c)
        i += 1
    raise ExpressionError(f"text starting here is not closed: add the closing {quote}", start)


def _quoted_name(text: str, start: int) -> Token:
    """`Column Name`; a backtick inside is written twice."""
    out: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        if text[i] == "`":
            if i + 1 < n and text[i + 1] == "`":
                out.append("`")
                i += 2
                continue
            if not out:
                raise ExpressionError("empty column name ``", start)
            return Token("quoted", "".join(out), start, i + 1)
        out.append(text[i])
        i += 1
    raise ExpressionError("column name starting here is not closed: add the closing `", start)

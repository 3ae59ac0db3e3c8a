"""The one error the expression language raises, at parse time and at evaluation time."""

from __future__ import annotations

import difflib

from pipeline.basics.errors import RouteError

# What a value of each type category (coerce.category) is called in messages.
NAMES = {
    "null": "null",
    "boolean": "true/false",
    "integer": "a number",
    "number": "a number",
    "text": "text",
    "date": "a date",
    "datetime": "a date and time",
    "other": "an unsupported type",
}


class ExpressionError(RouteError):
    """An expression is wrong (syntax, unknown name) or cannot be evaluated on a chunk.

    `message` says what to do; `position` is the 0-based offset into the expression text of the
    part at fault (None when no part is to blame). `str()` shows it 1-based, as "at column N: ...",
    because that is how a user counts characters in the route file.
    """

    def __init__(self, message: str, position: int | None = None):
        self.message = message
        self.position = position
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.position is None:
            return self.message
        return f"at column {self.position + 1}: {self.message}"


def nearest(name: str, known, what: str = "") -> str:
    """ "; did you mean 'x'?" for the closest known name, or "" when nothing is close."""
    known = list(known)
    by_case = [k for k in known if k.lower() == name.lower()]
    close = by_case or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not close:
        lowered = {k.lower(): k for k in known}
        close = [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)]
    return f"; did you mean {what}'{close[0]}'?" if close else ""

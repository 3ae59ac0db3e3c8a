"""What the fuzz tests share: hypothesis profiles, and mutations of valid input.

The default profile keeps each fuzz test to a few seconds in CI; `ROUTE_FUZZ=long` picks the long
profile (many more examples) for a run by hand, like a benchmark. Mutations start from real input
(the example routes, a well-formed CSV) because random bytes rarely get past the first line: a
mutated file reaches the deep corners of the parser while staying almost valid.
"""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

LONG = os.environ.get("ROUTE_FUZZ") == "long"

settings.register_profile(
    "route-fuzz",
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "route-fuzz-long",
    max_examples=20_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
FUZZ = settings.get_profile("route-fuzz-long" if LONG else "route-fuzz")


def scaled(default: int, long: int) -> int:
    """How many cases a loop-based fuzz test runs: `long` under ROUTE_FUZZ=long."""
    return long if LONG else default


# Pieces that mean something to YAML, to CSV or to the expression parser, and some that break them.
SPICE = [
    "\x00",
    "\x07",
    "\x1b",
    "\x7f",
    "\ufeff",
    "\u2028",
    "\r",
    "\r\n",
    "\t",
    "\n",
    " ",
    "'",
    '"',
    "`",
    "\\",
    ":",
    ": ",
    "- ",
    "-",
    ",",
    ";",
    "|",
    ">",
    "#",
    "&a ",
    "*a",
    "<<: *a",
    "!!python/object:os.system",
    "!!binary",
    "!!int",
    "!!float",
    "!!timestamp",
    "? ",
    "---",
    "...",
    "%YAML 1.1",
    "{",
    "}",
    "[",
    "]",
    "${HOME}",
    "${MISSING_VAR}",
    "$${X}",
    "9" * 5000,
    "0x" + "f" * 400,
    "1e999",
    "-.inf",
    ".nan",
    "2024-13-45",
    "1:2:3",
    "0o777",
    "~",
    "null",
    "yes",
    "((((",
    "))))",
    "not not",
    "__class__",
    "a.b",
    "if(",
    "coalesce(",
    "in [",
    "is null",
    "é",
    "中",
]


def mutate(text: str, rnd: random.Random, times: int = 3) -> str:
    """`text` with a few random edits: delete, duplicate, swap or cut a span; insert a spice."""
    for _ in range(times):
        if not text:
            text = rnd.choice(SPICE)
            continue
        i = rnd.randrange(len(text))
        j = min(len(text), i + rnd.choice([1, 1, 2, 5, 20, 200]))
        op = rnd.randrange(6)
        if op == 0:
            text = text[:i] + text[j:]
        elif op == 1:
            text = text[:j] + text[i:j] * rnd.choice([1, 2, 50]) + text[j:]
        elif op == 2:
            k = rnd.randrange(len(text))
            text = text[:i] + text[k] + text[i + 1 :]
        elif op == 3:
            text = text[:i]
        else:
            spice = rnd.choice(SPICE)
            text = text[:i] + spice * rnd.choice([1, 1, 1, 3, 200]) + text[i:]
    return text


def mutations(seeds: list[str]):
    """A hypothesis strategy: one of `seeds`, mutated 1 to 6 times."""
    return st.tuples(st.sampled_from(seeds), st.integers(0, 2**32), st.integers(1, 6)).map(
        lambda t: mutate(t[0], random.Random(t[1]), t[2])
    )

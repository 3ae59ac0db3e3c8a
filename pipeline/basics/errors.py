"""Errors a user can cause, and what the command line does with them.

Every exception that reaches the command line is a RouteError; anything else is a bug and is the
only thing that may show a traceback (and only with --debug).

    RouteError                      base: has a user-facing message
    ├── RouteInvalid                the route or command line is wrong; nothing ran (exit 2)
    │                               carries every Problem found, sorted by file and line
    ├── OptionError                 raised by a component while binding its options; the planner
    │                               turns it into a Problem at the option's line
    └── RunFailed                   the run started and failed (exit 1)
        ├── StepFailed              an exception inside a step, wrapped once at the stage boundary
        │                           with the route, the step, its line and the chunk's rows
        ├── DeliveryFailed          a delivery refused or broke; says what was and was not delivered
        ├── RunCancelled            Ctrl+C (exit 130); the run is recorded as cancelled, not failed
        └── TooManyRejects          on_error.max_rejects was exceeded

Components raise RouteError subclasses with messages that say what to do; the executor wraps
anything else with `raise StepFailed(...) from exc`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_CANCELLED = 130  # as a shell reports a command stopped by Ctrl+C


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a route, positioned like a compiler diagnostic (1-based line, column)."""

    file: str
    line: int
    col: int
    path: str = ""
    message: str = field(default="", compare=False)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class RouteError(Exception):
    """Base of every error a user can cause; its message is meant to be shown as it is."""

    exit_code = EXIT_FAILED


class RouteInvalid(RouteError):
    """The route (or the command line) is invalid; nothing was run."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: Sequence[Problem] | str):
        if isinstance(problems, str):
            self.problems: list[Problem] = []
            super().__init__(problems)
            return
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class OptionError(RouteError):
    """A component's option is wrong; `path` is relative to the component's options mapping."""

    exit_code = EXIT_INVALID

    def __init__(self, message: str, path: Sequence[Any] = (), offset: int | None = None):
        super().__init__(message)
        self.path = tuple(path)
        # For errors inside a text option (an expression): 0-based offset into that text, so the
        # planner can point at the exact column when the text sits on one line of the route file.
        self.offset = offset


class RunFailed(RouteError):
    """The run started and did not complete; the message says what was delivered, if anything."""

    exit_code = EXIT_FAILED


class RunCancelled(RunFailed):
    """The person running the route pressed Ctrl+C: nothing more was sent, nothing committed."""

    exit_code = EXIT_CANCELLED


class StepFailed(RunFailed):
    """An exception inside a step, with where it happened."""


class DeliveryFailed(RunFailed):
    """A delivery failed. `delivered` counts rows that certainly arrived, `uncertain` rows that may have.

    The rows not sent are only known once the executor has counted the rest of the input, so a
    delivery leaves that sentence to it: `message` goes first, then the executor's `not sent`
    sentence (see `count_not_sent`), then `advice`.
    """

    def __init__(self, message: str, delivered: int = 0, uncertain: int = 0, advice: str = ""):
        super().__init__(" ".join(p for p in (message, advice) if p))
        self.message, self.advice = message, advice
        self.delivered = delivered
        self.uncertain = uncertain

    def count_not_sent(self, sentence: str) -> None:
        """Put the true `Not sent: ...` sentence between the message and the advice."""
        message = self.message if self.message.endswith((".", "!", "?")) else self.message + "."
        self.args = (" ".join(p for p in (message, sentence, self.advice) if p),)


class TooManyRejects(RunFailed):
    """More rows were rejected than on_error.max_rejects allows."""


def suggest(name: str, known: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the nearest known name, or '' (for messages about unknown names)."""
    match = difflib.get_close_matches(str(name), sorted(set(known)), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""

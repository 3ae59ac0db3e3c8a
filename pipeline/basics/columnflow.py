"""The columns known at each point of a route, before a row is read.

A source that can know its columns cheaply (a CSV header, a table's columns) starts the flow; each
rule says, through the `columns=` of its marker, which columns it reads, adds, drops or renames; the
planner follows the flow through every step and every target. A column read that is not there is
a problem at the rule's option, with the nearest name, so a misspelt column is caught by
`route validate` instead of by the first chunk.

A rule that does not declare its columns (an older plugin), or whose columns depend on the data
(a pivot without `names`), makes the flow unknown from there on: nothing later is checked until a
rule fixes the columns again (`select`). Being silent is always allowed; a false alarm never is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.basics.errors import suggest


@dataclass(frozen=True)
class UnknownColumn:
    """A column a step reads that the flow does not have at that point."""

    name: str
    where: tuple  # the path inside the step's options
    offset: int | None  # within an expression's text, when the name is in one
    at_key: bool  # the name is a mapping key (cast, rename...), not a value
    message: str


class ColumnFlow:
    """The column names at one point of a route (None: not known), and what was read that is not there."""

    def __init__(self, names: Iterable[str] | None):
        self.names: list[str] | None = None if names is None else [str(n) for n in names]
        self.unknown_columns: list[UnknownColumn] = []

    @property
    def known(self) -> bool:
        return self.names is not None

    def copy(self) -> ColumnFlow:
        """The same columns, for a branch (a target) that changes them on its own."""
        return ColumnFlow(self.names)

    # -- reading ---------------------------------------------------------------------------

    def read(self, name: Any, where: tuple = (), *, offset: int | None = None, at_key: bool = False) -> None:
        """`name` must be a column here; `where` is its option path, for the message's position."""
        if self.names is None or not isinstance(name, str) or name in self.names:
            return
        message = f"unknown column '{name}'{suggest(name, self.names)}{self._listing()}"
        self.unknown_columns.append(UnknownColumn(name, tuple(where), offset, at_key, message))

    def reads(self, options: Mapping, key: str) -> None:
        """The column or columns named by option `key` (a name or a list of names) must be here."""
        value = options.get(key) if isinstance(options, Mapping) else None
        if isinstance(value, str):
            self.read(value, (key,))
        elif isinstance(value, list):
            for i, name in enumerate(value):
                self.read(name, (key, i))

    def reads_keys(self, options: Mapping, within: tuple = ()) -> None:
        """The keys of a mapping of column names (`cast: {gross: number}`) must be columns."""
        if isinstance(options, Mapping):
            for name in options:
                self.read(str(name), within + (name,), at_key=True)

    def _listing(self) -> str:
        names = self.names or []
        if not names:
            return " (there are no columns here)"
        shown = ", ".join(names[:12]) + (f", … ({len(names)} in all)" if len(names) > 12 else "")
        return f" (columns here: {shown})"

    # -- changing --------------------------------------------------------------------------

    def add(self, *names: Any) -> None:
        """New columns (or existing ones replaced in place, which changes nothing here)."""
        if self.names is None:
            return
        for group in names:
            for name in [group] if isinstance(group, str) else list(group or []):
                if isinstance(name, str) and name not in self.names:
                    self.names.append(name)

    def drop(self, names: Iterable[str]) -> None:
        if self.names is not None:
            gone = set(names)
            self.names = [n for n in self.names if n not in gone]

    def rename(self, mapping: Mapping[str, str]) -> None:
        if self.names is not None:
            self.names = [str(mapping.get(n, n)) for n in self.names]

    def keep(self, names: Iterable[str]) -> None:
        """Exactly these columns from here on, in this order (select, aggregate): known again."""
        self.names = [str(n) for n in names]

    def forget(self) -> None:
        """The columns depend on the data: nothing after this point is checked until `keep`."""
        self.names = None


ColumnsOf = Callable[[Any, ColumnFlow], None]
"""A rule's column declaration: called with the rule's checked options (after `shorthand`, before
`bind`) and the flow at that step; it calls flow.read/reads and flow.add/drop/rename/keep."""


def uses(reads: Iterable[str] = (), adds: Iterable[str] = ()) -> ColumnsOf:
    """The common declaration: options `reads` name columns that must exist, options `adds` name
    columns the rule creates. `uses(reads=["columns"])` fits trim, upper, pattern...;
    `uses(reads=["column"], adds=["into"])` fits split, lookup with `into`, and the like."""
    reads, adds = tuple(reads), tuple(adds)

    def columns(options: Any, flow: ColumnFlow) -> None:
        for key in reads:
            flow.reads(options, key)
        for key in adds:
            flow.add(options.get(key) if isinstance(options, Mapping) else None)

    return columns

"""Column rules: rename, select and drop, the shape of the table rather than its values.

Column names are only known when a chunk arrives, so a column that is not there is a RunFailed
naming it and the nearest existing one; option mistakes that need no data (two columns renamed to
one name, a column listed twice) are OptionErrors when the route is planned. The helpers at the
bottom are shared by the other rule families for the same "which column did you mean" message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.plugins import rule
from transforms import column_use

if TYPE_CHECKING:
    import pandas as pd


_NAME = {"type": "string", "minLength": 1}
# The schema of a column list option (a name or a list of names), shared by the rules that take one.
NAMES_OPTION = {"oneOf": [_NAME, {"type": "array", "items": _NAME, "minItems": 1}]}


@dataclass(frozen=True)
class Renames:
    mapping: dict[str, str]


@dataclass(frozen=True)
class Columns:
    names: tuple[str, ...]
    ignore_missing: bool = False


def _bind_rename(options, ctx=None) -> Renames:
    if isinstance(options, Renames):
        return options
    if not isinstance(options, dict) or not options:
        raise OptionError("expected a mapping of old column names to new ones, e.g. {EMP_ID: employee_id}")
    mapping: dict[str, str] = {}
    seen: dict[str, str] = {}
    for old, new in options.items():
        if old is None:
            raise OptionError("a column name cannot be empty (null)", path=(old,))
        if not isinstance(new, str) or not new:
            raise OptionError(f"the new name for '{old}' must be a non-empty text", path=(old,))
        # YAML reads a header like 2019 as a number; column names are text, so compare as text.
        old = str(old)
        if new in seen:
            raise OptionError(f"'{seen[new]}' and '{old}' are both renamed to '{new}'", path=(old,))
        seen[new] = old
        mapping[old] = new
    return Renames(mapping)


@rule(
    {"type": "object", "minProperties": 1, "additionalProperties": _NAME}, bind=_bind_rename, columns=column_use.rename
)
def rename(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Give columns new names, usually the canonical or the portal's field names.

    Every listed column must exist; renaming onto a column that stays is refused rather than
    leaving two columns with one name. Names can be swapped in one step.

    ```yaml
    - rename: {EMP_ID: employee_id, "Pay Date": pay_date}
    ```
    """
    plan = _bind_rename(options, ctx)
    require(chunk, plan.mapping, "rename")
    staying = set(chunk.columns) - set(plan.mapping)
    for old, new in plan.mapping.items():
        if new in staying:
            raise RunFailed(
                f"rename: cannot rename '{old}' to '{new}': a column named '{new}' already "
                f"exists; drop or rename it first"
            )
    return chunk.rename(columns=plan.mapping)


def _bind_columns(options, ctx=None) -> Columns:
    if isinstance(options, Columns):
        return options
    names = options.get("columns") if isinstance(options, dict) else options
    names = as_names(names)
    for i, name in enumerate(names):
        if name in names[:i]:
            raise OptionError(f"column '{name}' is listed twice", path=("columns", i))
    return Columns(tuple(names), bool(options.get("ignore_missing", False)) if isinstance(options, dict) else False)


@rule(
    {"type": "object", "required": ["columns"], "additionalProperties": False, "properties": {"columns": NAMES_OPTION}},
    shorthand="columns",
    bind=_bind_columns,
    columns=column_use.select,
)
def select(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Keep only the listed columns, in the order listed: the shape a target expects.

    A listed column that is not in the data fails the run (with the nearest name), because a
    target silently missing a field is worse than a stopped run.

    ```yaml
    - select: [employee_id, pay_date, department, gross]
    ```
    """
    plan = _bind_columns(options, ctx)
    require(chunk, plan.names, "select")
    return chunk.loc[:, list(plan.names)]


@rule(
    {
        "type": "object",
        "required": ["columns"],
        "additionalProperties": False,
        "properties": {"columns": NAMES_OPTION, "ignore_missing": {"type": "boolean"}},
    },
    shorthand="columns",
    bind=_bind_columns,
    columns=column_use.drop,
)
def drop(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Remove columns a target must not receive (internal ids, personal data).

    A listed column that is not in the data fails the run, so a typo cannot leave personal data
    in place; `ignore_missing: true` allows columns that only some inputs have.

    ```yaml
    - drop: [ssn, internal_note]
    - drop: {columns: [legacy_code], ignore_missing: true}
    ```
    """
    plan = _bind_columns(options, ctx)
    if not plan.ignore_missing:
        require(chunk, plan.names, "drop")
    present = set(chunk.columns)
    return chunk.drop(columns=[c for c in plan.names if c in present])


def as_names(value) -> list[str]:
    """A column option given as one name or a list of names, as a list of text names."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise OptionError("expected a column name or a list of column names", path=("columns",))
    out = []
    for i, name in enumerate(value):
        if name is None or isinstance(name, (bool, dict, list)) or name == "":
            raise OptionError(f"expected a column name, got {name!r}", path=("columns", i))
        out.append(str(name))
    return out


def nearest(name: str, known: Iterable[str]) -> str | None:
    """The existing column name closest to `name` (also catching case differences), or None."""
    known = [str(k) for k in known]
    folded = {k.casefold(): k for k in known}
    if name.casefold() in folded:
        return folded[name.casefold()]
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return match[0] if match else None


def missing_message(name: str, columns: Sequence[str], rule_name: str) -> str:
    """`rule: no column 'x' in the data; did you mean 'y'? (columns: ...)`."""
    hint = nearest(name, columns)
    shown = ", ".join(map(str, list(columns)[:12])) + (", ..." if len(columns) > 12 else "")
    text = f"{rule_name}: no column '{name}' in the data"
    if hint is not None:
        text += f"; did you mean '{hint}'?"
    return f"{text} (columns: {shown or 'none'})"


def require(chunk: pd.DataFrame, names: Iterable[str], rule_name: str) -> None:
    """Fail the run if any of `names` is not a column of `chunk`, naming the first missing one."""
    present = set(chunk.columns)
    for name in names:
        if name not in present:
            raise RunFailed(missing_message(name, list(chunk.columns), rule_name))

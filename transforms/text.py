"""Text rules: trim, upper, lower and title, vectorised with pyarrow.compute's utf8 kernels.

Each takes the columns to change as `trim: [a, b]`, `trim: {columns: [a, b]}`, or `trim: all`
(also `"*"`) for every text column of the chunk; `trim: [all]` is the column named "all". A named
column that is not text fails the run, naming it and its type: changing the case of a number is
always a mistake in the route, and `cast` it to text first says what was meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.basics.columnflow import ColumnFlow
from pipeline.basics.errors import RunFailed
from pipeline.basics.plugins import rule
from transforms.columns import NAMES_OPTION, as_names, require

if TYPE_CHECKING:
    import pandas as pd

# pandas and Arrow are imported in the functions that touch a chunk: binding these rules, which
# `route validate` does, needs neither.

ALL = ("all", "*")


@dataclass(frozen=True)
class TextPlan:
    columns: tuple[str, ...] | None  # None: every text column
    collapse: bool = False
    keep_empty: bool = False


def _bind(options, ctx=None) -> TextPlan:
    if isinstance(options, TextPlan):
        return options
    if not isinstance(options, dict):
        options = {"columns": options}
    cols = options.get("columns")
    columns = None if isinstance(cols, str) and cols in ALL else tuple(as_names(cols))
    return TextPlan(columns, bool(options.get("collapse", False)), bool(options.get("keep_empty", False)))


def _reads(options: dict, flow: ColumnFlow) -> None:
    """The named columns must be there; `all` names none in particular."""
    if not (isinstance(options.get("columns"), str) and options["columns"] in ALL):
        flow.reads(options, "columns")


def _schema(**extra) -> dict:
    return {
        "type": "object",
        "required": ["columns"],
        "additionalProperties": False,
        "properties": {"columns": NAMES_OPTION, **extra},
    }


def _apply(chunk: pd.DataFrame, plan: TextPlan, name: str, fn) -> pd.DataFrame:
    """A new frame with `fn` applied to the Arrow data of each chosen text column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.basics import dtypes

    if plan.columns is None:
        columns = [c for c in chunk.columns if dtypes.route_type_of(chunk[c].dtype) == "text"]
    else:
        require(chunk, plan.columns, name)
        columns = list(plan.columns)
        for c in columns:
            kind = dtypes.route_type_of(chunk[c].dtype)
            if kind != "text":
                raise RunFailed(
                    f"{name}: column '{c}' is {kind}, not text; {name} changes text columns "
                    f"only (cast it to text first if that is what you mean)"
                )
    out = chunk.copy(deep=False)
    for c in columns:
        data = dtypes.contiguous(dtypes.arrow(chunk[c]))
        if not pa.types.is_string(data.type):
            data = pc.cast(data, pa.string())
        out[c] = dtypes.series(fn(data), chunk[c])
    return out


@rule(
    _schema(collapse={"type": "boolean"}, keep_empty={"type": "boolean"}),
    shorthand="columns",
    bind=_bind,
    columns=_reads,
)
def trim(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Remove leading and trailing whitespace, which breaks joins, grouping and equality filters.

    Whitespace is Unicode whitespace (spaces, tabs, newlines, no-break and other wide spaces; not
    zero-width characters). A value that was only whitespace becomes null, as an empty cell is,
    unless `keep_empty: true`. `collapse: true` also turns every inner run of whitespace into
    one space.

    ```yaml
    - trim: [department, town]
    - trim: all
    - trim: {columns: [address], collapse: true}
    ```
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    plan = _bind(options, ctx)

    def fn(data):
        data = pc.utf8_trim_whitespace(data)
        if plan.collapse:
            data = pc.replace_substring_regex(data, r"[\s\p{Zs}]+", " ")
        if not plan.keep_empty:
            data = pc.if_else(pc.equal(data, ""), pa.scalar(None, pa.string()), data)
        return data

    return _apply(chunk, plan, "trim", fn)


@rule(_schema(), shorthand="columns", bind=_bind, columns=_reads)
def upper(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Upper-case text (codes, states, plate numbers) so that values compare equal.

    Each character maps to one character (Unicode simple case mapping): "é" becomes "É", and
    "ß" becomes "ẞ" rather than "SS".

    ```yaml
    - upper: [state, plate]
    ```
    """
    import pyarrow.compute as pc

    return _apply(chunk, _bind(options, ctx), "upper", pc.utf8_upper)


@rule(_schema(), shorthand="columns", bind=_bind, columns=_reads)
def lower(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Lower-case text (emails, categories) so that values compare equal.

    ```yaml
    - lower: [email]
    ```
    """
    import pyarrow.compute as pc

    return _apply(chunk, _bind(options, ctx), "lower", pc.utf8_lower)


# Title case starts a word after any character that is not a letter, which capitalises what
# follows an apostrophe or a digit. Keep that for names (O'Brien, D'Angelo) but put back the
# English contractions and ordinals: Don't, McDonald's, 3rd, 21st.
_AFTER_APOSTROPHE = [("S", "s"), ("T", "t"), ("D", "d"), ("M", "m"), ("Re", "re"), ("Ve", "ve"), ("Ll", "ll")]
_AFTER_DIGIT = [("St", "st"), ("Nd", "nd"), ("Rd", "rd"), ("Th", "th")]


def _fix(data, marker: str, pairs, prefix: str):
    """Apply the lower-casing `pairs` only to the values that contain `marker` (usually few)."""
    import pyarrow.compute as pc

    mask = pc.fill_null(pc.match_substring_regex(data, marker), False)
    if not pc.any(mask).as_py():
        return data
    part = pc.filter(data, mask)
    for wrong, right in pairs:
        part = pc.replace_substring_regex(part, prefix + wrong + r"(\PL|$)", r"\1" + right + r"\2")
    return pc.replace_with_mask(data, mask, part)


def _title_case(data):
    import pyarrow.compute as pc

    data = pc.utf8_title(data)
    data = _fix(data, r"\pL['’]\pL", _AFTER_APOSTROPHE, r"(\pL['’])")
    return _fix(data, r"\d(St|Nd|Rd|Th)", _AFTER_DIGIT, r"(\d)")


@rule(_schema(), shorthand="columns", bind=_bind, columns=_reads)
def title(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Title-case names and places typed in capitals ("NEW HAVEN" -> "New Haven").

    Each word gets an upper-case first letter and lower-case others, in any script ("ÉCOLE" ->
    "École"); a word starts after a space, a hyphen or any other non-letter, so "jean-luc" is
    "Jean-Luc" and "o'brien" is "O'Brien", but English contractions and ordinals stay lower-case
    ("don't" -> "Don't", "MCDONALD'S" -> "Mcdonald's", "3RD ST" -> "3rd St"). Name prefixes such as
    Mc and Mac are not special-cased.

    ```yaml
    - title: [town, employee_name]
    ```
    """
    return _apply(chunk, _bind(options, ctx), "title", _title_case)

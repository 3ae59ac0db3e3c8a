"""JSON records to chunks: selecting the records, naming the columns, writing values as text.

Shared by the file and HTTP readers of the json source. Every value becomes TEXT (see the json
source's docstring for why and how), and the column set is fixed before the first chunk so that it
never changes between chunks: deliveries refuse a chunk whose columns differ from the first one's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import jmespath
import orjson
from jmespath.exceptions import LexerError, ParseError

from pipeline.basics.errors import OptionError, RunFailed

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

# pandas, Arrow and numpy are imported where records become a frame: planning a route with a json
# source (its records and paging expressions compiled) loads none of them.

_KIND = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


def kind_of(value: Any) -> str:
    return _KIND.get(type(value), type(value).__name__)


def compile_expression(text: str, path: tuple):
    """A compiled JMESPath expression, or an OptionError pointing into the text (as the jmespath rule does)."""
    try:
        return jmespath.compile(text)
    except LexerError as exc:
        raise OptionError(
            f"invalid JMESPath expression {text!r}: {exc.message} at position {exc.lex_position}",
            path,
            offset=exc.lex_position,
        ) from None
    except ParseError as exc:
        detail = "the expression is incomplete" if exc.msg == "Invalid jmespath expression" else exc.msg
        raise OptionError(
            f"invalid JMESPath expression {text!r}: {detail} at position {exc.lex_position}",
            path,
            offset=exc.lex_position,
        ) from None


def select(document: Any, expression, written: str | None, where: str) -> list | None:
    """The list of records in `document`; None when `expression` finds nothing.

    `where` names the document in messages ("data.json", "page 2 of https://..."). A selection
    that is not a list stops the run with a hint at what to write instead.
    """
    found = document if expression is None else expression.search(document)
    if isinstance(found, list) or found is None and expression is not None:
        return found
    if expression is None:
        if isinstance(found, dict):
            lists = [k for k, v in found.items() if isinstance(v, list)]
            hint = (
                f"; to read the list under '{lists[0]}', add records: {_quoted(lists[0])}"
                if lists
                else '; give records: with the JMESPath to the list of records, or records: "[@]" to '
                "read the object as one record"
            )
            raise RunFailed(f"{where} is an object (keys: {_keys_text(found)}), not a list of records{hint}")
        raise RunFailed(f"{where} is {kind_of(found)}, not a list of records (or an object holding one)")
    if isinstance(found, dict):
        raise RunFailed(
            f"records {written!r} selects an object (keys: {_keys_text(found)}) in {where}, "
            f'not a list; to read it as one record write records: "[{written}]"'
        )
    raise RunFailed(f"records {written!r} selects {kind_of(found)} in {where}, not a list of records")


def missing(document: Any, written: str, where: str) -> RunFailed:
    """The error for a `records` expression that finds nothing."""
    keys = (
        f" (its keys: {_keys_text(document)})"
        if isinstance(document, dict)
        else f" (the document is {kind_of(document)})"
    )
    return RunFailed(f"records {written!r} finds nothing in {where}{keys}; check the expression")


def _keys_text(obj: dict, most: int = 12) -> str:
    keys = list(obj)
    text = ", ".join(map(str, keys[:most]))
    return text + (f", ... ({len(keys)} in all)" if len(keys) > most else "") if keys else "none"


def _quoted(key: str) -> str:
    return key if key.isidentifier() else orjson.dumps(key).decode()


def flat(record: dict, prefix: str = "", out: dict | None = None) -> dict:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; lists stay values, an empty object gives no column."""
    out = {} if out is None else out
    for key, value in record.items():
        name = prefix + key
        if value.__class__ is dict:
            flat(value, name + ".", out)
        else:
            out[name] = value
    return out


def _text(value: Any) -> str:
    return orjson.dumps(value).decode()


def text_array(values: list) -> pa.Array:
    """Values as Arrow text: strings as they are, null as null, anything else as its JSON text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pa.array(values, pa.string())  # all strings or nulls: the usual case, no Python loop
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    try:  # all integers, or all booleans: Arrow writes them exactly as JSON does
        typed = pa.array(values)
        if pa.types.is_int64(typed.type) or pa.types.is_boolean(typed.type):
            return pc.cast(typed, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid, OverflowError):
        pass
    # Floats too: Arrow switches to exponents (6.0012e+11) where JSON writes 600120765194.0.
    return pa.array([v if v is None or v.__class__ is str else _text(v) for v in values], pa.string())


class Framer:
    """Turns lists of records into chunks with one fixed set of TEXT columns.

    The columns are the `columns` option (other fields ignored), or learned before the first
    chunk with `learn()` (every record of a file), or from the first page of HTTP answers (then
    `checked` is set): a field first seen later with a value stops the run, since the chunks
    already sent had no such column. A field first seen later holding null is no loss and ignored.
    """

    def __init__(self, ctx, shown: str, *, flatten: bool, columns: list[str] | None):
        self.ctx, self.shown, self.flatten = ctx, shown, flatten
        self.names: dict[str, None] | None = dict.fromkeys(columns) if columns is not None else None
        self.checked = False  # True when the first chunk fixed the columns: later fields are checked

    def learn(self, records: Iterable, *, flattened: bool = False) -> None:
        """Add the fields of `records` (objects; anything else is skipped) to the columns."""
        names = {} if self.names is None else self.names
        for record in records:
            if record.__class__ is dict:
                if self.flatten and not flattened:
                    record = flat(record)
                if not record.keys() <= names.keys():
                    names.update(dict.fromkeys(record))
        self.names = names

    def columns(self) -> list[str] | None:
        return list(self.names) if self.names is not None else None

    def frame(self, records: list, index: pd.Index, *, flattened: bool = False, where: str = "") -> pd.DataFrame:
        """One chunk of `records` (index: their lines or record numbers); non-objects are rejected."""
        import pandas as pd
        import pyarrow as pa

        from pipeline.basics.dtypes import frame_from_arrow

        objects = [r.__class__ is dict for r in records]
        if not all(objects):
            records, index = self._reject(records, index, objects)
        if self.flatten and not flattened:
            records = [flat(r) for r in records]
        if self.names is None:  # HTTP: the first page decides
            self.learn(records, flattened=True)
            self.checked = True
        elif self.checked:
            self._check_new(records, index, where)
        names = list(self.names)
        if names:
            table = pa.Table.from_arrays([text_array([r.get(k) for r in records]) for k in names], names=names)
            frame = frame_from_arrow(table, index=index)
        else:
            frame = pd.DataFrame(index=index)
        frame.attrs["source"] = self.shown
        return frame

    def empty(self) -> pd.DataFrame:
        import pandas as pd

        from pipeline.basics.dtypes import TEXT

        frame = pd.DataFrame({n: pd.Series([], dtype=TEXT) for n in self.columns() or []})
        frame.attrs["source"] = self.shown
        return frame

    def _reject(self, records: list, index: pd.Index, objects: list[bool]) -> tuple[list, pd.Index]:
        import numpy as np
        import pandas as pd

        from pipeline.basics.dtypes import TEXT

        keep = np.array(objects, dtype=bool)
        bad = [r for r, ok in zip(records, objects) if not ok]
        texts = [_text(r) for r in bad]
        rows = pd.DataFrame({"record": pd.array(texts, dtype=TEXT)}, index=index[~keep])
        rows.attrs["source"] = self.shown
        reasons = [f"the record is {kind_of(r)}, not an object (a record must be a JSON object)" for r in bad]
        self.ctx.reject(rows, pd.Series(reasons, index=rows.index), value=pd.Series(texts, index=rows.index))
        return [r for r, ok in zip(records, objects) if ok], index[keep]

    def _check_new(self, records: list, index: pd.Index, where: str) -> None:
        names = self.names
        for pos, record in enumerate(records):
            if record.keys() <= names.keys():
                continue
            new = [k for k, v in record.items() if k not in names and v is not None]
            if new:
                listing = ", ".join(_quoted(n) for n in list(names) + new)
                raise RunFailed(
                    f"record {index[pos]}{' (' + where + ')' if where else ''} has a field '{new[0]}' that the "
                    f"records before it did not have; the columns are fixed by the first page so that they "
                    f"stay the same in every chunk. List the fields to read: columns: [{listing}]"
                )

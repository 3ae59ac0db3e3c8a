"""What a delivery would do, counted without writing: rows to create, update, delete, reject.

The dataset's row identifiers are read once (one column, page by page) and every chunk's keys are
looked up in them with vectorised set membership; keys seen earlier in the run count as updates.
`describe` puts the plan in words for the dry run's summary (a sync's counts and samples come from
socrata/sync.py).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics.dtypes import contiguous
from pipeline.socrata.views import socrata_type

NUMERIC = ("number", "money", "double")


def normalise(keys: pa.Array, stype: str) -> pa.Array:
    """Keys in one comparable form: numbers as float64 (so 42, "42" and "42.0" agree), else text."""
    keys = contiguous(keys)
    if socrata_type(stype) in NUMERIC:
        return pc.cast(keys, pa.float64())
    if not pa.types.is_string(keys.type):
        return pc.cast(keys, pa.string())
    return keys


class Plan:
    """Counts for one target; `existing` is None when nothing is keyed (append without a key)."""

    def __init__(self, mode: str, existing: pa.Array | None, existing_rows: int | None, key_type: str = "text"):
        self.mode = mode
        self.key_type = key_type
        self.known = existing.unique() if existing is not None else None
        self.existing = self.known
        self.existing_rows = existing_rows
        self.create = self.update = self.delete = self.not_found = self.rows = 0
        self.route_keys: list[pa.Array] = []  # replace: every key the new rows carry

    def add(self, keys: pa.Array | None, rows: int) -> None:
        self.rows += rows
        if keys is None or self.known is None:
            self.create += rows if self.mode != "delete" else 0
            return
        keys = normalise(keys, self.key_type)
        if self.mode == "delete":
            hit = pc.is_in(keys, value_set=self.known)
            found = keys.filter(hit).unique()
            self.delete += len(found)
            self.not_found += rows - len(found)
            # A key deleted once is gone: later deletes of it find nothing.
            self.known = pc.filter(self.known, pc.invert(pc.is_in(self.known, value_set=found)))
            return
        if self.mode == "replace":
            self.route_keys.append(keys)
        new = keys.filter(pc.invert(pc.is_in(keys, value_set=self.known))).unique()
        self.create += len(new)
        self.update += rows - len(new)
        self.known = pa.concat_arrays([self.known, new.cast(self.known.type)])

    def finish(self) -> dict:
        if self.mode == "replace":
            if self.existing is not None:
                carried = pa.concat_arrays(self.route_keys) if self.route_keys else self.existing.slice(0, 0)
                kept = int(pc.sum(pc.is_in(self.existing, value_set=carried)).as_py() or 0)
                return {
                    "create": self.create,
                    "update": self.update,
                    "delete": len(self.existing) - kept,
                    "rows_after": self.rows,
                }
            return {"create": self.rows, "update": 0, "delete": self.existing_rows or 0, "rows_after": self.rows}
        out = {"create": self.create, "update": self.update, "delete": self.delete}
        if self.mode == "delete":
            out["not_found"] = self.not_found
        return out


def describe(details: dict) -> str:
    """A dry run's plan for a socrata target in words, from its details: the mode, the dataset
    (or the one it would create first) and the portal; what a replace leaves, what a delete misses."""
    portal = "the local portal" if details.get("domain") == "local" else details.get("domain")
    name, dataset = details.get("dataset_name"), details.get("dataset")
    if dataset == "(new)":
        where = f'a new dataset "{name}" on {portal}'
    else:
        where = f'"{name}" ({dataset}) on {portal}' if name else f"{dataset} on {portal}"
    mode = details.get("mode")
    text = {
        "upsert": f"upsert into {where}",
        "append": f"append to {where}",
        "replace": f"replace every row of {where}",
        "delete": f"delete rows of {where}",
        "sync": f"sync {where}",
    }.get(mode, f"{mode} {where}")
    if mode == "replace" and isinstance(details.get("rows_after"), int):
        text += f", leaving {details['rows_after']:,} rows"
    if mode == "sync":
        text += _sync_text(details)
    if mode == "delete" and details.get("not_found"):
        text += f"; {details['not_found']:,} of the keys are not there"
    return text


def _sync_text(details: dict) -> str:
    """A sync's plan: the rows it leaves, a few keys of each change (socrata/sync.py's `plan`)."""
    text = ""
    if isinstance(details.get("rows_after"), int):
        text += f", leaving {details['rows_after']:,} rows ({details.get('unchanged', 0):,} unchanged, not sent)"
    for kind, keys in (details.get("samples") or {}).items():
        count = details.get(kind, len(keys))
        more = ", ..." if isinstance(count, int) and count > len(keys) else ""
        text += f"; {kind} {', '.join(map(str, keys))}{more}"
    if details.get("read_dataset"):
        text += "; no hashes kept from a last sync matched the dataset, so its rows were read to compare"
    return text

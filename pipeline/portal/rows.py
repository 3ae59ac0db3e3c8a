"""Row writes: upsert, replace and single-row delete, with Socrata's semantics (§2.2 - 2.4).

A request is checked whole before anything is written (unknown field or wrong type: 400, nothing
written), then applied in one transaction. Rows are grouped into runs of the same action and the
same fields, and each run is one `executemany`: with a row identifier, new keys insert and known keys
update only the fields the row carries (merge); without one, rows append unless they carry `:id`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from pipeline.portal import behaviour, rowids
from pipeline.portal.batches import KEY, Batch
from pipeline.portal.batches import batch_from_csv as batch_from_csv  # re-exported: callers parse through rows
from pipeline.portal.batches import batch_from_json as batch_from_json
from pipeline.portal.bulk import SERIAL, drop_columns, insert_many, insert_rows
from pipeline.portal.errors import Maltyped, bad_request
from pipeline.portal.storage import Dataset, quote, reserve_sids, touch

_SPECIAL = {":id", ":deleted", KEY}


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    errors: int = 0
    by_ri: int = 0
    by_sid: int = 0
    error_list: list = field(default_factory=list)

    def error(self, index: int, code: str, key) -> None:
        self.errors += 1
        self.error_list.append({"error": code, "input_index": index, "primary_key": key})


@dataclass
class Run:
    action: str  # upsert | insert | update_sid | delete_ri | delete_sid | error
    fields: tuple
    rows: list


@dataclass
class Prepared:
    signature: tuple
    n: int
    values: dict[str, list]
    keys: list | None
    sids: list | None
    runs: list[Run]
    flat: list | None = None  # the values of the one run, row by row, when the batch had them so


# ---- Batch -> Prepared (checks; nothing is written) ---------------------------------------------------


def prepare(ds: Dataset, batch: Batch, replace: bool = False) -> Prepared:
    fields = ds.by_field()
    for name in batch.columns:
        if name not in fields and name not in _SPECIAL and name not in behaviour.IGNORED_SYSTEM_FIELDS:
            raise bad_request(
                "soda.row.column-not-found",
                f"One or more rows expected column '{name}' which was not found on the dataset",
                column=name,
                dataset=ds.id,
            )
    ri = ds.ri
    values: dict[str, list] = {}
    try:
        for name, raw in batch.columns.items():
            col = fields.get(name)
            if col is None:
                continue
            if batch.text:
                raw = col.type.from_text(raw, name)
            values[name] = col.type.key(raw, name) if col is ri else col.type.store(raw, name)
    except Maltyped as exc:
        got = exc.got if isinstance(exc.got, (str, int, float)) else str(exc.got)
        raise bad_request(
            "soda.column.maltyped", f"Column is maltyped; {exc}", field=exc.field, expected=exc.expected, got=got
        ) from None
    deleted = _deleted(batch)
    sids = None
    if not (replace or ri is not None):
        raw = batch.columns.get(":id") or batch.columns.get(KEY)
        if raw is not None:
            if ":id" in batch.columns and KEY in batch.columns:
                raw = [k if i is None else i for i, k in zip(batch.columns[":id"], batch.columns[KEY])]
            sids = [None if v is None else (rowids.decode(v) or -1) for v in raw]
    keys = None
    if ri is not None and batch.n:
        keys = _keys(ds, batch, values.get(ri.field))
    runs = _runs(ds, batch, values, keys, sids, deleted, replace)
    return Prepared(ds.signature, batch.n, values, keys, sids, runs, _flat(batch, values, runs))


def _flat(batch: Batch, values: dict, runs: list) -> list | None:
    """The batch's row-by-row values with the checked values in place, when one run writes every
    field of every row (as most requests do); None otherwise."""
    if (
        batch.flat is None
        or len(runs) != 1
        or runs[0].fields != batch.order
        or runs[0].action not in ("upsert", "insert")
    ):
        return None
    width = len(batch.order)
    changed = [(i, values[f]) for i, f in enumerate(batch.order) if values[f] is not batch.columns[f]]
    if not changed:
        return batch.flat
    flat = batch.flat.copy()  # the batch stays as sent: it is checked again if the columns change
    for i, column in changed:
        flat[i::width] = column
    return flat


def _deleted(batch: Batch) -> list | None:
    raw = batch.columns.get(":deleted")
    if raw is None:
        return None
    if batch.text:
        raw = [(v or "").strip().lower() == "true" for v in raw]
    return [v is True for v in raw]


def _keys(ds: Dataset, batch: Batch, keys: list | None) -> list:
    ri = ds.ri
    if KEY in batch.columns:  # [key] delete rows: the key arrives outside any field
        raw = batch.columns[KEY]
        given = ri.type.key(raw, ri.field)
        base = keys or [None] * batch.n
        keys = [g if r is not None else k for r, g, k in zip(raw, given, base)]
    if keys is None or None in keys:
        index = 0 if keys is None else keys.index(None)
        raise bad_request(
            behaviour.MISSING_KEY_CODE,
            f"Row {index} has no value in the row identifier column '{ri.field}'",
            index=index,
            column=ri.field,
        )
    return keys


def _runs(ds, batch, values, keys, sids, deleted, replace) -> list[Run]:
    n = batch.n
    data_fields = tuple(f for f in values)
    has_ri = ds.ri is not None
    if replace and deleted is not None and behaviour.REPLACE_DROPS_DELETED:
        keep = [i for i in range(n) if not deleted[i]]
        if len(keep) < n:
            return _group(ds, batch, values, keep, lambda i: "upsert" if has_ri else "insert", data_fields)
        deleted = None
    if deleted is None and sids is None and batch.keysets is None:
        return [Run("upsert" if has_ri else "insert", data_fields, range(n))] if n else []

    def action(i):
        gone = deleted is not None and deleted[i]
        if has_ri:
            return "delete_ri" if gone else "upsert"
        sid = sids[i] if sids is not None else None
        if gone:
            return "delete_sid" if sid is not None else "error"
        return "update_sid" if sid is not None else "insert"

    return _group(ds, batch, values, range(n), action, data_fields)


def _group(ds, batch, values, indices, action, data_fields) -> list[Run]:
    runs: list[Run] = []
    for i in indices:
        act = action(i)
        if act in ("upsert", "insert", "update_sid"):
            fields = data_fields if batch.keysets is None else tuple(f for f in data_fields if f in batch.keysets[i])
        else:
            fields = ()
        if runs and runs[-1].action == act and runs[-1].fields == fields:
            runs[-1].rows.append(i)
        else:
            runs.append(Run(act, fields, [i]))
    return runs


# ---- Prepared -> the table (inside a write transaction) -----------------------------------------------


def _run_columns(ds: Dataset, prep: Prepared, run: Run) -> tuple[list[list], list[str]]:
    """The values (by column) and the physical columns an insert or upsert run writes."""
    fields = ds.by_field()
    rows = run.rows
    whole = isinstance(rows, range) and len(rows) == prep.n
    cols = [prep.values[f] if whole else [prep.values[f][i] for i in rows] for f in run.fields]
    phys = [quote(fields[f].phys) for f in run.fields]
    ri = ds.ri
    if run.action == "upsert" and ri.field not in run.fields:
        cols.append(prep.keys if whole else [prep.keys[i] for i in rows])
        phys.append(quote(ri.phys))
    return cols, phys


def apply(conn, ds: Dataset, prep: Prepared, now: str, counts: Counts | None = None) -> Counts:
    counts = counts or Counts()
    table = quote(ds.table)
    fields = ds.by_field()
    ri = ds.ri
    for run in prep.runs:
        rows = run.rows
        if run.action in ("upsert", "insert"):
            cols, phys = _run_columns(ds, prep, run)
            first = reserve_sids(conn, ds.id, len(rows))
            conflict = ""
            if run.action == "upsert":
                key = quote(ri.phys)
                sets = ", ".join(["_updated=excluded._updated"] + [f"{p}=excluded.{p}" for p in phys if p != key])
                conflict = f" ON CONFLICT ({key}) DO UPDATE SET {sets}"
            head = f"INSERT INTO {table} (_sid, _created, _updated{''.join(', ' + p for p in phys)}) VALUES "
            row = [SERIAL, "?1", "?1"] + [None] * len(phys)
            if prep.flat is not None and len(phys) == len(run.fields):
                _insert_flat(conn, head, row, conflict, prep.flat, cols, len(rows), now, first)
            else:
                insert_many(conn, head, row, conflict, cols, lead=(now,), serial=first)
            # rows that were inserted kept the keys reserved for them; updated rows kept their own
            created = conn.execute(
                f"SELECT count(*) FROM {table} WHERE _sid >= ? AND _sid < ?", (first, first + len(rows))
            ).fetchone()[0]
            counts.created += created
            if run.action == "upsert":
                counts.updated += len(rows) - created
                counts.by_ri += len(rows) - created
            continue
        whole = isinstance(rows, range) and len(rows) == prep.n
        cols = [prep.values[f] if whole else [prep.values[f][i] for i in rows] for f in run.fields]
        phys = [quote(fields[f].phys) for f in run.fields]
        if run.action == "update_sid":
            sids = [prep.sids[i] for i in rows]
            found = _existing(conn, table, "_sid", sids)
            sets = ", ".join([f"_updated='{now}'"] + [f"{p}=?" for p in phys])
            todo = []
            for j, (i, sid) in enumerate(zip(rows, sids)):
                if sid in found:
                    todo.append(tuple(c[j] for c in cols) + (sid,))
                else:
                    counts.error(i, "no_such_row_to_update", batch_id(prep, i))
            conn.executemany(f"UPDATE {table} SET {sets} WHERE _sid=?", todo)
            counts.updated += len(todo)
            counts.by_sid += len(todo)
        elif run.action in ("delete_ri", "delete_sid"):
            by_ri = run.action == "delete_ri"
            keys = [prep.keys[i] for i in rows] if by_ri else [prep.sids[i] for i in rows]
            column = quote(ri.phys) if by_ri else "_sid"
            found = _existing(conn, table, column, keys)
            todo = []
            for i, key in zip(rows, keys):
                if key in found:
                    found.discard(key)
                    todo.append((key,))
                else:
                    counts.error(i, "no_such_row_to_delete", key if by_ri else batch_id(prep, i))
            conn.executemany(f"DELETE FROM {table} WHERE {column}=?", todo)
            counts.deleted += len(todo)
            if by_ri:
                counts.by_ri += len(todo)
            else:
                counts.by_sid += len(todo)
        else:
            for i in rows:
                counts.error(i, "no_primary_key", None)
    touch(conn, ds.id)
    return counts


def _insert_flat(conn, head, row, tail, flat, cols, count, now, first) -> None:
    """insert_rows over the batch's row-by-row values; a column null in every row is written as
    NULL, not bound (binding a null costs as much as binding a value)."""
    nulls = [i for i, c in enumerate(cols) if type(c) is list and c[0] is None and c.count(None) == count]
    if nulls:
        flat = flat.copy()
        drop_columns(flat, len(cols), nulls)
        for i in nulls:
            row[3 + i] = "NULL"
    insert_rows(conn, head, row, tail, flat, count, (now,), first)


def batch_id(prep: Prepared, i: int):
    sid = prep.sids[i] if prep.sids else None
    return rowids.encode(sid) if sid and sid > 0 else None


def _existing(conn, table: str, column: str, keys: list) -> set:
    rows = conn.execute(
        f"SELECT {column} FROM {table} WHERE {column} IN (SELECT value FROM json_each(?))",
        (orjson.dumps([k for k in keys if k is not None]),),
    ).fetchall()
    return {r[0] for r in rows}


# ---- single rows ----------------------------------------------------------------------------------------


def find_sid(conn, ds: Dataset, row_id: str) -> int | None:
    """The key of the row named by a row-identifier value or an internal id."""
    table = quote(ds.table)
    ri = ds.ri
    if ri is not None:
        try:
            key = ri.type.key([row_id], ri.field)[0]
        except Maltyped:
            key = None
        if key is not None:
            row = conn.execute(f"SELECT _sid FROM {table} WHERE {quote(ri.phys)}=?", (key,)).fetchone()
            if row:
                return row[0]
    sid = rowids.decode(row_id)
    if sid is not None and (ri is None or not row_id.isdigit()):
        row = conn.execute(f"SELECT _sid FROM {table} WHERE _sid=?", (sid,)).fetchone()
        if row:
            return row[0]
    return None


def delete_one(conn, ds: Dataset, row_id: str) -> None:
    sid = find_sid(conn, ds, row_id)
    if sid is None:
        raise behaviour.missing_row(ds.id, row_id)
    conn.execute(f"DELETE FROM {quote(ds.table)} WHERE _sid=?", (sid,))
    touch(conn, ds.id)

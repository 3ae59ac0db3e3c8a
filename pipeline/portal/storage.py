"""The portal's SQLite file: connections, transactions, and the catalog of datasets and columns.

One file in WAL mode. Readers run in a read transaction, so a request sees one snapshot even while a
replace is being applied. Writers take a process-wide lock and `BEGIN IMMEDIATE` (plus a busy
timeout for other processes, such as `route portal create` beside a running server), so concurrent
writers queue instead of failing, and a request that fails rolls back everything it did.

Each dataset's rows live in their own table (`r<n>`: `_sid` integer key, `_created`, `_updated`,
then one column per dataset column, named `c<n>`); the catalog row names the table, so a replace
revision can swap in a new table in one commit.
"""

# Longer than 400 lines because it is the portal's whole SQLite schema and the only code that writes
# it.

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from pipeline.portal import behaviour
from pipeline.portal.errors import PortalError, bad_request
from pipeline.portal.wire import ColumnType, column_type

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS datasets (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
  category TEXT, tags TEXT NOT NULL DEFAULT '[]', private INTEGER NOT NULL DEFAULT 0,
  stage TEXT NOT NULL DEFAULT 'unpublished', ri INTEGER, rows_table TEXT NOT NULL,
  next_sid INTEGER NOT NULL DEFAULT 1, owner TEXT, created_at INTEGER NOT NULL,
  rows_updated_at INTEGER NOT NULL, view_updated_at INTEGER NOT NULL, extra TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS columns (
  id INTEGER PRIMARY KEY, dataset TEXT NOT NULL, field TEXT NOT NULL, name TEXT NOT NULL,
  type TEXT NOT NULL, position INTEGER NOT NULL, description TEXT NOT NULL DEFAULT '',
  format TEXT NOT NULL DEFAULT '{}', phys TEXT NOT NULL, UNIQUE (dataset, field));
CREATE TABLE IF NOT EXISTS dsm (
  kind TEXT NOT NULL, id INTEGER NOT NULL, dataset TEXT, parent INTEGER, body TEXT NOT NULL,
  PRIMARY KEY (kind, id));
CREATE INDEX IF NOT EXISTS dsm_parent ON dsm (kind, parent);
CREATE TABLE IF NOT EXISTS dsm_chunks (
  source INTEGER NOT NULL, seq INTEGER NOT NULL, offset INTEGER NOT NULL, data BLOB NOT NULL,
  PRIMARY KEY (source, seq));
-- uploads are read back in byte order: without this index SQLite sorted every chunk of an upload
-- in a temporary b-tree first
CREATE INDEX IF NOT EXISTS dsm_chunks_offset ON dsm_chunks (source, offset);
CREATE TABLE IF NOT EXISTS dsm_row_errors (
  schema INTEGER NOT NULL, row_index INTEGER NOT NULL, cells TEXT NOT NULL, PRIMARY KEY (schema, row_index));
"""

# Binding None takes sqlite3's slow adaptation path (an attribute lookup that fails) for every
# null cell; an adapter makes it a dict hit. `{}.get` returns None for None, as an identity lambda
# would, but is a C call (a third cheaper per null cell). It changes nothing else for any caller.
sqlite3.register_adapter(type(None), {}.get)

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_FOURFOUR_CHARS = "abcdefghijkmnpqrstuvwxyz23456789"


@dataclass
class Column:
    id: int
    field: str
    name: str
    type_name: str
    position: int
    phys: str
    description: str = ""
    format: dict = field(default_factory=dict)

    @property
    def type(self) -> ColumnType:
        return column_type(self.type_name)


@dataclass
class Dataset:
    id: str
    name: str
    description: str
    category: str | None
    tags: list
    private: bool
    stage: str
    ri_id: int | None
    table: str
    next_sid: int
    owner: str | None
    created_at: int
    rows_updated_at: int
    view_updated_at: int
    extra: dict
    columns: list[Column]

    @property
    def ri(self) -> Column | None:
        return next((c for c in self.columns if c.id == self.ri_id), None)

    def by_field(self) -> dict[str, Column]:
        return {c.field: c for c in self.columns}

    @property
    def signature(self) -> tuple:
        """Changes whenever the physical layout a prepared write depends on changes."""
        return (self.table, self.ri_id, tuple((c.id, c.field, c.type_name, c.phys) for c in self.columns))


class Store:
    """Connections to one portal file (a small pool) and its transactions."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pool: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self.write_lock = threading.RLock()
        self._writer: sqlite3.Connection | None = None  # the one connection that writes (see write)
        conn = self._connect()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
        self._release(conn)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA case_sensitive_like=ON")
        # Temporary tables, sorts and statement journals in files (SQLite's default), not in memory:
        # in memory, a 2M-row replace revision peaked at 760 MB in the portal's process (its
        # uploaded chunks sorted, then deleted under a statement journal) and a 10M-row one passed
        # 6 GB; in files, 397 MB, at the same speed, and upserts alike (bench_portal --baseline).
        conn.execute("PRAGMA temp_store=FILE")
        conn.execute("PRAGMA cache_size=-65536")
        # Checkpoint every 64 MB of WAL rather than every 4 MB: bulk inserts grow the file in fewer,
        # larger steps (measured ~15% more inserts/s); readers are not affected.
        conn.execute("PRAGMA wal_autocheckpoint=16384")
        return conn

    def _acquire(self) -> sqlite3.Connection:
        with self._pool_lock:
            if self._pool:
                return self._pool.pop()
        return self._connect()

    def _release(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.rollback()
        with self._pool_lock:
            if len(self._pool) < 16:
                self._pool.append(conn)
                return
        conn.close()

    @contextmanager
    def read(self):
        """A read transaction: every query inside sees the same snapshot."""
        conn = self._acquire()
        try:
            conn.execute("BEGIN")
            yield conn
            conn.execute("COMMIT")
        finally:
            self._release(conn)

    @contextmanager
    def write(self):
        """A write transaction: all of it commits, or none of it does.

        Every write goes through one connection (under the write lock): SQLite keeps a
        connection's page cache across its transactions only while no other connection has written,
        so with one writer the pages of the tables and their row-identifier indexes stay cached
        from one request to the next, instead of being read again by whichever pooled connection
        comes next."""
        with self.write_lock:
            if self._writer is None:
                self._writer = self._connect()
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:  # the body or the commit failed: leave the connection clean
                    conn.execute("ROLLBACK")

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, []
        for conn in pool:
            conn.close()
        with self.write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None


# ---- counters and ids -------------------------------------------------------------------------------


def next_id(conn, name: str, start: int = 1, count: int = 1) -> int:
    """Reserve `count` ids from a named counter; returns the first."""
    row = conn.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
    first = row[0] if row else start
    conn.execute(
        "INSERT INTO counters(name, value) VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
        (name, first + count),
    )
    return first


def new_fourfour(conn) -> str:
    while True:
        ff = "".join(secrets.choice(_FOURFOUR_CHARS) for _ in range(8))
        ff = ff[:4] + "-" + ff[4:]
        if not conn.execute("SELECT 1 FROM datasets WHERE id=?", (ff,)).fetchone():
            return ff


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---- loading --------------------------------------------------------------------------------------


def _dataset(row, columns) -> Dataset:
    (
        id_,
        name,
        description,
        category,
        tags,
        private,
        stage,
        ri,
        table,
        next_sid,
        owner,
        created_at,
        rows_updated_at,
        view_updated_at,
        extra,
    ) = row
    return Dataset(
        id_,
        name,
        description,
        category,
        orjson.loads(tags),
        bool(private),
        stage,
        ri,
        table,
        next_sid,
        owner,
        created_at,
        rows_updated_at,
        view_updated_at,
        orjson.loads(extra),
        columns,
    )


_DATASET_COLUMNS = (
    "id, name, description, category, tags, private, stage, ri, rows_table, next_sid, "
    "owner, created_at, rows_updated_at, view_updated_at, extra"
)


def _columns(conn, fourfour) -> list[Column]:
    rows = conn.execute(
        "SELECT id, field, name, type, position, phys, description, format FROM columns "
        "WHERE dataset=? ORDER BY position, id",
        (fourfour,),
    ).fetchall()
    return [Column(r[0], r[1], r[2], r[3], r[4], r[5], r[6], orjson.loads(r[7])) for r in rows]


def load(conn, fourfour: str) -> Dataset | None:
    row = conn.execute(f"SELECT {_DATASET_COLUMNS} FROM datasets WHERE id=?", (fourfour,)).fetchone()
    return _dataset(row, _columns(conn, fourfour)) if row else None


def require(conn, fourfour: str) -> Dataset:
    ds = load(conn, fourfour)
    if ds is None:
        raise PortalError(404, "not_found", f"Cannot find view with id {fourfour}", {"id": fourfour})
    return ds


def all_datasets(conn) -> list[Dataset]:
    rows = conn.execute(f"SELECT {_DATASET_COLUMNS} FROM datasets ORDER BY created_at, id").fetchall()
    return [_dataset(r, _columns(conn, r[0])) for r in rows]


def row_count(conn, ds: Dataset) -> int:
    return conn.execute(f"SELECT count(*) FROM {quote(ds.table)}").fetchone()[0]


# ---- changing the catalog ---------------------------------------------------------------------------


def check_column_spec(spec: dict, taken: set[str]) -> tuple[str, str, str, str]:
    """(field, name, type, description) from an /api/views column object; 400 when it is wrong."""
    if not isinstance(spec, dict):
        raise bad_request("invalid_column", "Each column must be an object with fieldName, name and dataTypeName")
    name = spec.get("name") or spec.get("fieldName")
    field_ = spec.get("fieldName") or (behaviour.field_name_for(name) if name else None)
    if not field_ or not isinstance(field_, str) or not _FIELD.fullmatch(field_):
        raise bad_request(
            "invalid_column",
            f"Column field name {field_!r} is not valid: use letters, digits and _ (starting with a letter or _)",
            fieldName=field_,
        )
    if field_ in taken:
        raise bad_request("invalid_column", f"Column field name '{field_}' is used twice", fieldName=field_)
    type_name = spec.get("dataTypeName") or spec.get("renderTypeName") or "text"
    ctype = column_type(type_name)
    if ctype is None:
        from pipeline.portal.wire import type_names

        raise bad_request(
            "invalid_column",
            f"Column '{field_}' has unknown dataTypeName '{type_name}'; use one of: {', '.join(type_names())}",
            fieldName=field_,
        )
    return field_, str(name or field_), ctype.name, str(spec.get("description") or "")


def new_rows_table(conn, phys_columns: list[str]) -> str:
    table = f"r{next_id(conn, 'table')}"
    cols = "".join(f", {quote(p)}" for p in phys_columns)
    conn.execute(f"CREATE TABLE {quote(table)} (_sid INTEGER PRIMARY KEY, _created TEXT, _updated TEXT{cols})")
    return table


def ri_index(conn, table: str, phys: str) -> None:
    """The unique index that makes a column the row identifier; 400 when values repeat or are null."""
    if conn.execute(f"SELECT 1 FROM {quote(table)} WHERE {quote(phys)} IS NULL LIMIT 1").fetchone():
        raise bad_request("invalid_row_identifier", "The row identifier column has empty values")
    try:
        conn.execute(f"CREATE UNIQUE INDEX {quote(table + '_ri')} ON {quote(table)} ({quote(phys)})")
    except sqlite3.IntegrityError:
        raise bad_request("invalid_row_identifier", "The row identifier column has repeated values") from None


def create_dataset(
    conn,
    name: str,
    columns: list[dict],
    row_identifier=None,
    description: str = "",
    private: bool | None = None,
    category=None,
    tags=None,
    owner=None,
    extra: dict | None = None,
) -> Dataset:
    """Create a dataset (unpublished, as the API does); `row_identifier` is a field name or column id."""
    if not name or not isinstance(name, str):
        raise bad_request("invalid_view", "A dataset needs a name")
    specs, taken = [], set()
    for spec in columns or []:
        checked = check_column_spec(spec, taken)
        taken.add(checked[0])
        specs.append(checked)
    ff = new_fourfour(conn)
    now = int(time.time())
    first = next_id(conn, "column", start=1001, count=max(1, len(specs)))
    cols = [Column(first + i, f, n, t, i + 1, f"c{first + i}", d) for i, (f, n, t, d) in enumerate(specs)]
    table = new_rows_table(conn, [c.phys for c in cols])
    if private is None:
        private = not behaviour.NEW_DATASETS_PUBLIC
    conn.execute(
        f"INSERT INTO datasets({_DATASET_COLUMNS}) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            ff,
            name,
            description or "",
            category,
            orjson.dumps(list(tags or [])).decode(),
            int(bool(private)),
            "unpublished",
            None,
            table,
            1,
            owner,
            now,
            now,
            now,
            orjson.dumps(extra or {}).decode(),
        ),
    )
    for c in cols:
        insert_column(conn, ff, c)
    ds = load(conn, ff)
    if row_identifier not in (None, ""):
        set_row_identifier(conn, ds, row_identifier)
        ds = load(conn, ff)
    return ds


def insert_column(conn, fourfour: str, c: Column) -> None:
    conn.execute(
        "INSERT INTO columns(id, dataset, field, name, type, position, description, format, phys) "
        "VALUES(?,?,?,?,?,?,?,?,?)",
        (
            c.id,
            fourfour,
            c.field,
            c.name,
            c.type_name,
            c.position,
            c.description,
            orjson.dumps(c.format).decode(),
            c.phys,
        ),
    )


def find_column(ds: Dataset, ref) -> Column | None:
    """A column by id (int or digits) or field name."""
    for c in ds.columns:
        if c.field == ref or c.id == ref or (isinstance(ref, str) and ref.isdigit() and c.id == int(ref)):
            return c
    return None


def set_row_identifier(conn, ds: Dataset, ref) -> None:
    """Make a column (field name or id) the row identifier, or clear it with None."""
    conn.execute(f"DROP INDEX IF EXISTS {quote(ds.table + '_ri')}")
    if ref in (None, "", 0):
        conn.execute("UPDATE datasets SET ri=NULL WHERE id=?", (ds.id,))
        return
    col = find_column(ds, ref)
    if col is None:
        raise bad_request("invalid_row_identifier", f"Row identifier '{ref}' is not a column of {ds.id}")
    # keys are stored in canonical form so that equal keys compare equal
    rows = conn.execute(f"SELECT _sid, {quote(col.phys)} FROM {quote(ds.table)}").fetchall()
    if rows:
        from pipeline.portal.errors import Maltyped

        try:
            keys = col.type.key([r[1] for r in rows], col.field)
        except Maltyped as exc:
            raise bad_request("invalid_row_identifier", str(exc)) from None
        conn.executemany(
            f"UPDATE {quote(ds.table)} SET {quote(col.phys)}=? WHERE _sid=?",
            [(k, r[0]) for k, r in zip(keys, rows) if k != r[1]],
        )
    ri_index(conn, ds.table, col.phys)
    conn.execute("UPDATE datasets SET ri=? WHERE id=?", (col.id, ds.id))


def add_column(conn, ds: Dataset, spec: dict) -> Column:
    field_, name, type_name, description = check_column_spec(spec, {c.field for c in ds.columns})
    cid = next_id(conn, "column", start=1001)
    col = Column(
        cid, field_, name, type_name, max([c.position for c in ds.columns], default=0) + 1, f"c{cid}", description
    )
    conn.execute(f"ALTER TABLE {quote(ds.table)} ADD COLUMN {quote(col.phys)}")
    insert_column(conn, ds.id, col)
    touch(conn, ds.id, rows=False)
    return col


def drop_column(conn, ds: Dataset, col: Column) -> None:
    if ds.ri_id == col.id:
        conn.execute(f"DROP INDEX IF EXISTS {quote(ds.table + '_ri')}")
        conn.execute("UPDATE datasets SET ri=NULL WHERE id=?", (ds.id,))
    conn.execute(f"ALTER TABLE {quote(ds.table)} DROP COLUMN {quote(col.phys)}")
    conn.execute("DELETE FROM columns WHERE id=?", (col.id,))
    touch(conn, ds.id, rows=False)


def delete_dataset(conn, ds: Dataset) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {quote(ds.table)}")
    for (table,) in conn.execute(
        "SELECT json_extract(body, '$._table') FROM dsm WHERE dataset=? AND kind='output_schema'", (ds.id,)
    ).fetchall():
        if table:
            conn.execute(f"DROP TABLE IF EXISTS {quote(table)}")
    conn.execute("DELETE FROM columns WHERE dataset=?", (ds.id,))
    conn.execute("DELETE FROM datasets WHERE id=?", (ds.id,))
    conn.execute("DELETE FROM dsm WHERE dataset=?", (ds.id,))


def touch(conn, fourfour: str, rows: bool = True) -> None:
    now = int(time.time())
    if rows:
        conn.execute("UPDATE datasets SET rows_updated_at=?, view_updated_at=? WHERE id=?", (now, now, fourfour))
    else:
        conn.execute("UPDATE datasets SET view_updated_at=? WHERE id=?", (now, fourfour))


def reserve_sids(conn, fourfour: str, count: int) -> int:
    """Reserve `count` row ids for a dataset (never reused, also across replaces); returns the first."""
    first = conn.execute("SELECT next_sid FROM datasets WHERE id=?", (fourfour,)).fetchone()[0]
    conn.execute("UPDATE datasets SET next_sid=? WHERE id=?", (first + count, fourfour))
    return first

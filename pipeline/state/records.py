"""The small records of a database state: incremental marks, created datasets, notices, blobs.

Each mirrors what the folder state keeps in a file of its own (state.sqlite, datasets.json,
notices.json, sync/...parquet), with the same meaning; the callers choose by `shared(state_dir)`.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline.state import tables as T
from pipeline.state.database import engine_for, insert_for
from pipeline.state.place import SharedState


def _upsert(con, table, values: dict, keys: list[str]) -> None:
    """Insert a row, or update it where its key is already there (PostgreSQL and SQLite alike)."""
    stmt = insert_for(con)(table).values(values)
    con.execute(
        stmt.on_conflict_do_update(index_elements=keys, set_={k: stmt.excluded[k] for k in values if k not in keys})
    )


# -- incremental marks (pipeline/basics/marks.py) -------------------------------------------------


def mark_get(state: SharedState, route: str, key: str) -> tuple[str, str] | None:
    from sqlalchemy import select

    with engine_for(state).connect() as con:
        row = con.execute(
            select(T.marks.c.type, T.marks.c.value).where(T.marks.c.route == route, T.marks.c.key == key)
        ).first()
    return (row[0], row[1]) if row else None


def marks_put(state: SharedState, rows: list[dict[str, Any]]) -> None:
    """Write marks in one transaction (all or none)."""
    with engine_for(state).begin() as con:
        for row in rows:
            _upsert(con, T.marks, row, ["route", "key"])


def marks_forget(state: SharedState, route: str, key: str | None) -> int:
    with engine_for(state).begin() as con:
        where = T.marks.c.route == route
        if key is not None:
            where = where & (T.marks.c.key == key)
        rows = con.execute(T.marks.delete().where(where).returning(T.marks.c.key)).all()
    return len(rows)


# -- datasets route created (pipeline/socrata/state.py) ------------------------------------------


def datasets_of(state: SharedState, portal: str) -> dict[str, dict]:
    from sqlalchemy import select

    with engine_for(state).connect() as con:
        rows = con.execute(select(T.datasets).where(T.datasets.c.portal == portal)).mappings()
        return {r["key"]: {"id": r["id"], "name": r["name"]} for r in rows}


def dataset_put(state: SharedState, portal: str, key: str, dataset_id: str, name: str) -> None:
    with engine_for(state).begin() as con:
        _upsert(con, T.datasets, {"portal": portal, "key": key, "id": dataset_id, "name": name}, ["portal", "key"])


def dataset_forget(state: SharedState, portal: str, key: str) -> None:
    with engine_for(state).begin() as con:
        con.execute(T.datasets.delete().where(T.datasets.c.portal == portal, T.datasets.c.key == key))


# -- notices (pipeline/ops/notify/events.py) ------------------------------------------------------


def notices_of(state: SharedState, route: str) -> dict[str, str]:
    from sqlalchemy import select

    with engine_for(state).connect() as con:
        rows = con.execute(select(T.notices.c.kind, T.notices.c.said).where(T.notices.c.route == route))
        return {kind: said for kind, said in rows}


def notice_put(state: SharedState, route: str, kind: str, said: str) -> None:
    with engine_for(state).begin() as con:
        _upsert(con, T.notices, {"route": route, "kind": kind, "said": said}, ["route", "kind"])


def notices_clear(state: SharedState, route: str) -> None:
    with engine_for(state).begin() as con:
        con.execute(T.notices.delete().where(T.notices.c.route == route))


# -- blobs: a file's bytes kept whole (the sync hashes of pipeline/socrata/sync_state.py) ---------


def blob_get(state: SharedState, name: str) -> bytes | None:
    from sqlalchemy import select

    with engine_for(state).connect() as con:
        data = con.execute(select(T.blobs.c.data).where(T.blobs.c.name == name)).scalar()
    return bytes(data) if data is not None else None


def blob_put(state: SharedState, name: str, data: bytes) -> None:
    with engine_for(state).begin() as con:
        _upsert(con, T.blobs, {"name": name, "data": data, "updated": time.time()}, ["name"])


def blob_drop(state: SharedState, name: str) -> None:
    with engine_for(state).begin() as con:
        con.execute(T.blobs.delete().where(T.blobs.c.name == name))

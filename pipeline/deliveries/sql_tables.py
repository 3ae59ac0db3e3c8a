"""Tables for the sql delivery: what exists, what a route's columns need, how to create them.

A missing table is created from the route's column types (the dtypes of the first chunk):

    text -> TEXT (VARCHAR(255) for a key column, which MySQL must index)
    integer -> BIGINT        number -> DOUBLE PRECISION     boolean -> BOOLEAN
    date -> DATE             datetime -> TIMESTAMP / DATETIME(6) (WITH TIME ZONE when the column has one)
with a primary key on `key` when the route gives one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.basics.errors import DeliveryFailed

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class TableInfo:
    """An existing table as reflected: its columns and the column sets that are unique."""

    name: str
    schema: str | None
    columns: list[str] = field(default_factory=list)
    unique: list[set[str]] = field(default_factory=list)


def reflect(conn, name: str, schema: str | None) -> TableInfo | None:
    """The table's columns and unique keys, or None when it does not exist."""
    from sqlalchemy import inspect

    insp = inspect(conn)
    if not insp.has_table(name, schema=schema):
        return None
    info = TableInfo(name, schema, [c["name"] for c in insp.get_columns(name, schema=schema)])
    pk = insp.get_pk_constraint(name, schema=schema).get("constrained_columns") or []
    if pk:
        info.unique.append(set(pk))
    for uc in insp.get_unique_constraints(name, schema=schema):
        info.unique.append(set(uc["column_names"]))
    for ix in insp.get_indexes(name, schema=schema):
        if ix.get("unique"):
            info.unique.append({c for c in ix["column_names"] if c})
    return info


def sql_type(dtype, dialect: str, is_key: bool):
    """The SQLAlchemy type for a column of pandas dtype `dtype`."""
    import pandas as pd
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql

    from pipeline.basics.dtypes import route_type_of

    kind = route_type_of(dtype)
    if kind == "integer":
        return sa.BigInteger()
    if kind == "number":
        return sa.Double()
    if kind == "boolean":
        return sa.Boolean()
    if kind == "date":
        return sa.Date()
    if kind == "datetime":
        tz = isinstance(dtype, pd.ArrowDtype) and getattr(dtype.pyarrow_dtype, "tz", None) is not None
        return sa.DateTime(timezone=tz).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    return sa.String(255) if is_key else sa.Text()


def table_for(name: str, schema: str | None, chunk: pd.DataFrame, columns: list[str], key: list[str], dialect: str):
    """A SQLAlchemy Table with the route's columns, to create."""
    import sqlalchemy as sa

    cols = [
        sa.Column(
            c,
            sql_type(chunk[c].dtype, dialect, c in key),
            primary_key=c in key,
            nullable=c not in key,
            autoincrement=False,
        )
        for c in columns
    ]
    return sa.Table(name, sa.MetaData(), *cols, schema=schema)


def create(conn, name: str, schema: str | None, chunk: pd.DataFrame, columns: list[str], key: list[str]) -> None:
    table_for(name, schema, chunk, columns, key, conn.dialect.name).create(conn)


def check_columns(info: TableInfo, columns: list[str], mode: str, key: list[str], mysql: bool = False) -> None:
    """Refuse, before any row is sent, a route whose columns the table cannot take.

    ON CONFLICT (PostgreSQL, SQLite) needs a unique index on exactly the key columns; MySQL's
    ON DUPLICATE KEY fires on any unique index, so one within the key is enough there.
    """
    where = f"{info.schema}.{info.name}" if info.schema else info.name
    needed = key if mode == "delete" else columns
    missing = [c for c in needed if c not in info.columns]
    if missing:
        raise DeliveryFailed(
            f"table {where} has no column {', '.join(missing)} (it has "
            f"{', '.join(info.columns)}); add the column, or select and rename the "
            "route's columns to match; nothing was delivered"
        )
    wanted = set(key)
    if mode in ("upsert", "sync") and not any(u and (u <= wanted if mysql else u == wanted) for u in info.unique):
        raise DeliveryFailed(
            f"{mode} into {where} needs a primary key or unique index on "
            f"({', '.join(key)}); the table has none; nothing was delivered"
        )


def qualified(dialect, name: str, schema: str | None) -> str:
    """The quoted, schema-qualified table name for raw SQL."""
    q = dialect.identifier_preparer
    return f"{q.quote_schema(schema)}.{q.quote(name)}" if schema else q.quote(name)


def side_name(name: str, suffix: str, limit: int = 60) -> str:
    """A name beside `name` (staging, old copy) that fits the database's identifier length."""
    return f"{name[: limit - len(suffix)]}{suffix}"

"""Database column types to the route's canonical dtypes, for the sql source.

A column's kind comes from what the database declares: the reflected SQLAlchemy type for a
`table`, the driver's cursor description for a `query` (PostgreSQL type OIDs, MySQL field
types). SQLite declares nothing for a query's columns, so those take the kind of the first
non-null values read, and keep it for the rest of the run.

    integers                    -> integer          decimals, floats    -> number (float64)
    booleans                    -> boolean          dates               -> date
    timestamps                  -> datetime         with a time zone    -> datetime in UTC
    text, and anything else (JSON, UUID, time, interval, bytes) -> text
MySQL's BOOLEAN is TINYINT(1), so it arrives as an integer 0/1.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import orjson
import pyarrow as pa

TEXT, INTEGER, NUMBER, BOOLEAN, DATE, DATETIME, DATETIME_TZ, UNKNOWN = (
    "text",
    "integer",
    "number",
    "boolean",
    "date",
    "datetime",
    "datetime_tz",
    "unknown",
)

ARROW = {
    TEXT: pa.string(),
    INTEGER: pa.int64(),
    NUMBER: pa.float64(),
    BOOLEAN: pa.bool_(),
    DATE: pa.date32(),
    DATETIME: pa.timestamp("us"),
    DATETIME_TZ: pa.timestamp("us", tz="UTC"),
    UNKNOWN: pa.string(),
}

# PostgreSQL type OIDs (pg_type), as psycopg reports them
_PG = {
    16: BOOLEAN,
    20: INTEGER,
    21: INTEGER,
    23: INTEGER,
    26: INTEGER,
    700: NUMBER,
    701: NUMBER,
    1700: NUMBER,
    1082: DATE,
    1114: DATETIME,
    1184: DATETIME_TZ,
}
# MySQL field types (pymysql.constants.FIELD_TYPE)
_MYSQL = {
    0: NUMBER,
    246: NUMBER,
    4: NUMBER,
    5: NUMBER,
    1: INTEGER,
    2: INTEGER,
    3: INTEGER,
    8: INTEGER,
    9: INTEGER,
    13: INTEGER,
    10: DATE,
    14: DATE,
    7: DATETIME,
    12: DATETIME,
    6: UNKNOWN,
}


def decimals_as_floats(conn) -> None:
    """Have the driver parse NUMERIC/DECIMAL straight to float (3x faster than Decimal objects)."""
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql" and hasattr(raw, "adapters"):  # psycopg 3
        from psycopg.types.numeric import FloatLoader

        raw.adapters.register_loader("numeric", FloatLoader)
    elif conn.dialect.name in ("mysql", "mariadb") and isinstance(getattr(raw, "decoders", None), dict):
        raw.decoders[0] = raw.decoders[246] = float  # PyMySQL: FIELD_TYPE.DECIMAL, NEWDECIMAL


def kind_of_type(sa_type) -> str:
    """The kind of a SQLAlchemy column type."""
    from sqlalchemy import types as t

    if isinstance(sa_type, t.NullType):
        return UNKNOWN
    if isinstance(sa_type, t.Boolean):
        return BOOLEAN
    if isinstance(sa_type, t.Integer):
        return INTEGER
    if isinstance(sa_type, (t.Numeric, t.Float)):  # Float is not a Numeric in SQLAlchemy 2.1
        return NUMBER
    if isinstance(sa_type, t.DateTime):
        return DATETIME_TZ if getattr(sa_type, "timezone", False) else DATETIME
    if isinstance(sa_type, t.Date):
        return DATE
    return TEXT


def kind_of_description(dialect: str, type_code) -> str:
    """The kind of a result column from the DBAPI cursor description's type code."""
    if type_code is None:
        return UNKNOWN
    if dialect == "postgresql":
        return _PG.get(type_code, TEXT)
    if dialect in ("mysql", "mariadb"):
        return _MYSQL.get(type_code, TEXT)
    return UNKNOWN


def infer(values: list) -> str:
    """The kind of values whose column declared nothing (UNKNOWN while all are null)."""
    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return TEXT
    t = arr.type
    if pa.types.is_null(t):
        return UNKNOWN
    if pa.types.is_boolean(t):
        return BOOLEAN
    if pa.types.is_integer(t):
        return INTEGER
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return NUMBER
    if pa.types.is_date(t):
        return DATE
    if pa.types.is_timestamp(t):
        return DATETIME_TZ if t.tz else DATETIME
    return TEXT


def render(value) -> str | None:
    """A value of a type the route has no dtype for, as text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.hex()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def raw_array(values: list, kind: str) -> pa.Array:
    """Arrow data of `values` as read (decimals stay decimal, for an exact incremental mark).

    Raises ValueError naming a value that does not fit the declared kind.
    """
    try:
        if kind in (TEXT, UNKNOWN):
            try:
                return pa.array(values, pa.string())
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                return pa.array([render(v) for v in values], pa.string())
        if kind == NUMBER:
            first = next((v for v in values if v is not None), None)
            if isinstance(first, Decimal):
                try:
                    return pa.array(values)
                except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                    return pa.array([None if v is None else float(v) for v in values], pa.float64())
            return pa.array(values, pa.float64())
        return pa.array(values, ARROW[kind])
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as exc:
        bad = next((v for v in values if v is not None and not _fits(v, kind)), None)
        raise ValueError(f"{bad!r}" if bad is not None else str(exc)) from None


def _fits(value, kind: str) -> bool:
    if kind == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == NUMBER:
        return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)
    if kind == BOOLEAN:
        return isinstance(value, bool)
    if kind == DATE:
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if kind in (DATETIME, DATETIME_TZ):
        return isinstance(value, dt.datetime)
    return True


def canonical(arr: pa.Array, kind: str) -> pa.Array:
    """The array in the route's dtype for `kind` (decimals to float64)."""
    target = ARROW[kind]
    if arr.type == target:
        return arr
    if pa.types.is_decimal(arr.type):  # through text: Arrow's decimal->double is not correctly rounded
        return arr.cast(pa.string()).cast(target)
    return arr.cast(target)

"""Compiled SoQL expressions (SQL text plus the SoQL type it has) and Socrata's type refusals.

Each compiled expression knows its `kind` (how SQLite holds it: text, number, double, bool,
float_ts, fixed_ts, row_id, json, null), its SoQL type name (`soql`: what type checks and
`X-SODA2-Types` use, such as `point` or `location` for a json kind), the columns it reads outside
aggregates (`free`, for the $group checks) and whether it holds an aggregate.

Error codes are Socrata's: query-coordinator's QueryCoordinatorErrors.scala
(socrata-platform/query-coordinator) names `query.soql.type-mismatch`, `query.soql.no-such-function`,
`query.soql.column-not-in-group-bys`, `query.soql.aggregate-in-ungrouped-context` and
`query.soql.non-boolean-where`; soql-reference's Exceptions.scala has the same names without the
`query.soql.` prefix. Messages follow Socrata's ("Type mismatch for sum, is text").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.portal.errors import bad_request

SOQL_TYPES = {
    "text": "text",
    "number": "number",
    "double": "double",
    "bool": "boolean",
    "float_ts": "floating_timestamp",
    "fixed_ts": "fixed_timestamp",
    "row_id": "row_identifier",
    "json": "text",
    "null": "null",
}
NUMERIC = {"number", "double"}
TIMESTAMPS = {"float_ts", "fixed_ts"}
GEOMETRY = {"point", "multipoint", "line", "multiline", "polygon", "multipolygon", "location"}

UNSUPPORTED = "the local portal does not support"


@dataclass
class Expr:
    sql: str
    kind: str
    col: object = None  # the dataset Column when the expression is a bare column
    agg: bool = False
    literal: object = None  # ("text", value) for literals, so comparisons can coerce them
    soql: str | None = None  # the SoQL type, when it is not the kind's (geometry, url, location...)
    free: frozenset = field(default_factory=frozenset)  # columns read outside an aggregate
    ctype: object = None  # the ColumnType that writes its values out (computed geometries)

    @property
    def type(self) -> str:
        if self.soql:
            return self.soql
        if self.col is not None:
            return self.col.type.soql
        return SOQL_TYPES.get(self.kind, "text")


def merged(sql: str, kind: str, *parts: Expr, **kw) -> Expr:
    """A new expression made of `parts`: aggregate if any is, reading the columns they read."""
    free = frozenset().union(*(p.free for p in parts)) if parts else frozenset()
    return Expr(sql, kind, agg=any(p.agg for p in parts), free=free, **kw)


def mismatch(function: str, e: Expr):
    """Socrata's refusal of an argument of the wrong type."""
    shown = {"=": "op$=", "<>": "op$<>"}.get(function, function)
    return bad_request(
        "query.soql.type-mismatch", f"Type mismatch for {shown}, is {e.type}", function=shown, type=e.type
    )


def no_such_function(name: str, count: int):
    return bad_request(
        "query.soql.no-such-function",
        f"No such function '{name}' with {count} argument(s)",
        function=name,
        arity=count,
    )


def unsupported(what: str, **data):
    return bad_request("query.soql.not-supported", f"{UNSUPPORTED} {what}", **data)


def is_null(e: Expr) -> bool:
    return e.kind == "null"


def is_text(e: Expr) -> bool:
    return e.kind in ("text", "null") and e.type in ("text", "null")


def is_number(e: Expr) -> bool:
    return e.kind in NUMERIC or e.kind == "null"


def is_geo(e: Expr) -> bool:
    return e.type in GEOMETRY

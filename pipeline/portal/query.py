"""SODA reads: SoQL trees -> one SQLite query -> rows in Socrata's wire format (§2.1).

Columns keep their Socrata types through the translation: a number column compares and sorts as a
number (its stored text is CAST), a text literal compared with a timestamp, number, checkbox or `:id`
is read as that type, and each output column is written back with its type's wire format. Null cells
are left out of row objects, as Socrata does.
"""

# Longer than 400 lines because it translates every SoQL clause into SQL in one pass, and the
# clauses depend on each other.

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pipeline.portal import behaviour, rowids
from pipeline.portal.errors import Maltyped, bad_request
from pipeline.portal.numbers import number_text
from pipeline.portal.soql import Parser, split_query
from pipeline.portal.storage import Dataset, quote

_SYSTEM = {":id": ("_sid", "row_id"), ":created_at": ("_created", "fixed_ts"), ":updated_at": ("_updated", "fixed_ts")}
_SOQL_TYPES = {
    "text": "text",
    "number": "number",
    "double": "double",
    "bool": "boolean",
    "float_ts": "floating_timestamp",
    "fixed_ts": "fixed_timestamp",
    "row_id": "row_identifier",
    "json": "text",
    "null": "text",
}
_AGGREGATES = {"count", "sum", "avg", "min", "max"}


@dataclass
class Expr:
    sql: str
    kind: str
    col: object = None  # the dataset Column when the expression is a bare column
    agg: bool = False
    literal: object = None  # ("text", value) for literals, so comparisons can coerce them


@dataclass
class Output:
    name: str
    expr: Expr
    system: str | None = None

    @property
    def soql_type(self) -> str:
        if self.expr.col is not None:
            return self.expr.col.type.soql
        return _SOQL_TYPES.get(self.expr.kind, "text")

    def wire(self, values: list) -> list:
        e = self.expr
        if e.col is not None:
            return e.col.type.wire(values)
        if e.kind == "row_id":
            return rowids.encode_all(values)
        if e.kind == "number":
            return [_number_out(v) for v in values]
        if e.kind == "bool":
            return [v if v is None else bool(v) for v in values]
        if e.kind == "double":
            return [v if v is None else float(v) for v in values]
        if e.kind == "text":
            return [v if v is None or type(v) is str else str(v) for v in values]
        return values

    def cells(self, values: list) -> list:
        e = self.expr
        if e.col is not None:
            return e.col.type.cell(values)
        out = self.wire(values)
        if e.kind == "bool":
            return ["" if v is None else ("true" if v else "false") for v in out]
        return ["" if v is None else str(v) for v in out]


def _number_out(v):
    if v is None or type(v) is str:
        return v
    if type(v) is float:
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        if v != v or v in (math.inf, -math.inf):  # arithmetic beyond a double: behaviour.NON_FINITE
            return behaviour.NON_FINITE["nan" if v != v else ("inf" if v > 0 else "-inf")]
    return number_text(v)


class Compiler:
    def __init__(self, ds: Dataset):
        self.ds = ds
        self.fields = ds.by_field()
        self.params: dict = {}
        self.aliases: dict[str, Expr] = {}

    def param(self, value) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return ":" + name

    # ---- leaves
    def column(self, name: str) -> Expr:
        if name in self.aliases:
            return self.aliases[name]
        col = self.fields.get(name)
        if col is not None:
            return Expr(quote(col.phys), col.type.kind, col)
        if name in _SYSTEM:
            sql, kind = _SYSTEM[name]
            return Expr(sql, kind)
        raise bad_request("query.soql.no-such-column", f"No such column: {name}", column=name, dataset=self.ds.id)

    def literal(self, value, kind) -> Expr:
        if kind == "null":
            return Expr("NULL", "null")
        if kind == "bool":
            return Expr("1" if value else "0", "bool")
        return Expr(self.param(value), kind, literal=(kind, value))

    # ---- type helpers
    @staticmethod
    def num(e: Expr) -> str:
        if e.kind in ("number", "double") and e.col is not None:
            return f"CAST({e.sql} AS REAL)"
        return e.sql

    def coerce(self, lit: Expr, other: Expr) -> Expr:
        """A text literal compared with a typed value becomes that type (as Socrata casts it)."""
        if lit.literal is None or lit.literal[0] != "text" or other.kind in ("text", "null", "json"):
            return lit
        text = lit.literal[1]
        try:
            if other.kind in ("number", "double"):
                return Expr(self.param(float(number_text(text.strip()))), "number")
            if other.kind == "float_ts" or other.kind == "fixed_ts":
                ctype = other.col.type if other.col is not None else None
                if ctype is None:
                    from pipeline.portal.wire import fixed_text

                    return Expr(self.param(fixed_text(text.strip())), other.kind)
                return Expr(self.param(ctype.literal(text)), other.kind)
            if other.kind == "bool":
                from pipeline.portal.wire import TYPES

                return Expr(str(TYPES["checkbox"].literal(text)), "bool")
            if other.kind == "row_id":
                sid = rowids.decode(text.strip())
                return Expr(self.param(sid if sid is not None else -1), "row_id")
        except (Maltyped, ValueError):
            raise bad_request(
                "query.soql.type-mismatch", f"'{text}' is not a valid {_SOQL_TYPES[other.kind]}", value=text
            ) from None
        return lit

    def compare(self, op: str, a: Expr, b: Expr) -> Expr:
        a, b = self.coerce(a, b), self.coerce(b, a)
        numeric = {a.kind, b.kind} & {"number", "double"}
        left, right = (self.num(a), self.num(b)) if numeric else (a.sql, b.sql)
        return Expr(f"({left} {op} {right})", "bool", agg=a.agg or b.agg)

    # ---- trees
    def compile(self, node) -> Expr:
        kind = node[0]
        if kind == "col":
            return self.column(node[1])
        if kind == "lit":
            return self.literal(node[1], node[2])
        if kind == "bin":
            op, a, b = node[1], self.compile(node[2]), self.compile(node[3])
            if op in ("AND", "OR"):
                return Expr(f"({a.sql} {op} {b.sql})", "bool", agg=a.agg or b.agg)
            if op in ("=", "<>", "<", "<=", ">", ">="):
                return self.compare(op, a, b)
            if op == "||":
                return Expr(f"({a.sql} || {b.sql})", "text", agg=a.agg or b.agg)
            right = self.num(b)
            left = f"{self.num(a)} * 1.0" if op == "/" else self.num(a)
            return Expr(f"({left} {op} {right})", "number", agg=a.agg or b.agg)
        if kind == "not":
            a = self.compile(node[1])
            return Expr(f"(NOT {a.sql})", "bool", agg=a.agg)
        if kind == "neg":
            a = self.compile(node[1])
            return Expr(f"(- {self.num(a)})", "number", agg=a.agg)
        if kind == "isnull":
            a = self.compile(node[1])
            return Expr(f"({a.sql} IS {'NOT ' if node[2] else ''}NULL)", "bool", agg=a.agg)
        if kind == "in":
            a = self.compile(node[1])
            items = [self.coerce(self.compile(n), a) for n in node[2]]
            numeric = a.kind in ("number", "double")
            left = self.num(a) if numeric else a.sql
            values = ", ".join(self.num(i) if numeric else i.sql for i in items)
            return Expr(f"({left} {'NOT ' if node[3] else ''}IN ({values}))", "bool", agg=a.agg)
        if kind == "like":
            a, b = self.compile(node[1]), self.compile(node[2])
            return Expr(f"({a.sql} {'NOT ' if node[3] else ''}LIKE {b.sql})", "bool", agg=a.agg)
        if kind == "between":
            a = self.compile(node[1])
            low, high = self.coerce(self.compile(node[2]), a), self.coerce(self.compile(node[3]), a)
            numeric = a.kind in ("number", "double")
            f = self.num if numeric else (lambda e: e.sql)
            return Expr(f"({f(a)} {'NOT ' if node[4] else ''}BETWEEN {f(low)} AND {f(high)})", "bool", agg=a.agg)
        if kind == "func":
            return self.function(node[1], node[2], node[3])
        raise bad_request("query.compiler.malformed", "Could not compile the query")

    def function(self, name: str, args: list, distinct: bool) -> Expr:
        if name == "count":
            if args == [("star",)]:
                return Expr("COUNT(*)", "number", agg=True)
            a = self.compile(self._one(name, args))
            return Expr(f"COUNT({'DISTINCT ' if distinct else ''}{a.sql})", "number", agg=True)
        if ("star",) in args:
            raise bad_request("query.compiler.malformed", f"{name}(*) is not a function call SoQL knows")
        if name in ("sum", "avg"):
            a = self.compile(self._one(name, args))
            return Expr(f"{name.upper()}({'DISTINCT ' if distinct else ''}{self.num(a)})", "number", agg=True)
        if name in ("min", "max"):
            a = self.compile(self._one(name, args))
            if a.kind in ("number", "double"):
                return Expr(f"{name.upper()}({self.num(a)})", a.kind if a.kind == "double" else "number", agg=True)
            return Expr(f"{name.upper()}({a.sql})", a.kind, a.col, agg=True)
        compiled = [self.compile(a) for a in args]
        agg = any(c.agg for c in compiled)
        if name in ("upper", "lower") and len(compiled) == 1:
            return Expr(f"{name.upper()}({compiled[0].sql})", "text", agg=agg)
        if name == "length" and len(compiled) == 1:
            return Expr(f"LENGTH({compiled[0].sql})", "number", agg=agg)
        if name == "starts_with" and len(compiled) == 2:
            a, b = (c.sql for c in compiled)
            return Expr(f"(substr({a}, 1, length({b})) = {b})", "bool", agg=agg)
        if name == "contains" and len(compiled) == 2:
            a, b = (c.sql for c in compiled)
            return Expr(f"(instr({a}, {b}) > 0)", "bool", agg=agg)
        if name == "coalesce" and compiled:
            return Expr(f"COALESCE({', '.join(c.sql for c in compiled)})", compiled[0].kind, agg=agg)
        if name.startswith("date_trunc_") and len(compiled) == 1:
            cut = {
                "date_trunc_ymd": (10, "T00:00:00.000"),
                "date_trunc_ym": (7, "-01T00:00:00.000"),
                "date_trunc_y": (4, "-01-01T00:00:00.000"),
            }.get(name)
            if cut:
                return Expr(f"(substr({compiled[0].sql}, 1, {cut[0]}) || '{cut[1]}')", "float_ts", agg=agg)
        if name.startswith("date_extract_") and len(compiled) == 1:
            part = {
                "date_extract_y": (1, 4),
                "date_extract_m": (6, 2),
                "date_extract_d": (9, 2),
                "date_extract_hh": (12, 2),
                "date_extract_mm": (15, 2),
                "date_extract_ss": (18, 2),
            }.get(name)
            if part:
                return Expr(f"CAST(substr({compiled[0].sql}, {part[0]}, {part[1]}) AS INTEGER)", "number", agg=agg)
        if name == "within_box" and len(compiled) == 5:
            g = compiled[0].sql
            lat1, lon1, lat2, lon2 = (self.num(c) for c in compiled[1:])
            lat, lon = f"json_extract({g}, '$.coordinates[1]')", f"json_extract({g}, '$.coordinates[0]')"
            return Expr(
                f"({lat} BETWEEN min({lat1}, {lat2}) AND max({lat1}, {lat2}) AND "
                f"{lon} BETWEEN min({lon1}, {lon2}) AND max({lon1}, {lon2}))",
                "bool",
                agg=agg,
            )
        raise bad_request(
            "query.soql.no-such-function", f"No such function '{name}' with {len(args)} argument(s)", function=name
        )

    @staticmethod
    def _one(name, args):
        if len(args) != 1:
            raise bad_request("query.soql.no-such-function", f"{name} takes one argument", function=name)
        return args[0]


def _auto_name(node, tokens, taken: set) -> str:
    if node[0] == "col":
        name = node[1]
    elif node[0] == "func" and node[2] == [("star",)]:
        name = behaviour.COUNT_STAR_NAME if node[1] == "count" else node[1]
    elif node[0] == "func" and len(node[2]) == 1 and node[2][0][0] == "col":
        name = f"{node[1]}_{node[2][0][1]}"
    else:
        words = [t.value.lower() for t in tokens if t.kind in ("ident", "ident_q", "num")]
        name = "_".join(w.strip(":") for w in words) or "expr"
    base, n = name, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


@dataclass
class Query:
    sql: str
    params: dict
    outputs: list


def build(
    ds: Dataset,
    params: dict[str, str],
    *,
    extra_where: str | None = None,
    extra_params: dict | None = None,
    default_limit: int | None = behaviour.DEFAULT_LIMIT,
) -> Query:
    """The SQL for a SODA read of `ds` with these query parameters (first value of each)."""
    try:
        return _build(ds, params, extra_where, extra_params, default_limit)
    except RecursionError:  # soql.py bounds nesting and depth; this is the net under that bound
        raise bad_request("query.compiler.malformed", "The query is nested too deeply") from None


def _build(ds, params, extra_where, extra_params, default_limit) -> Query:
    params = dict(params)
    if params.get("$query"):
        params.update(split_query(params.pop("$query")))
    c = Compiler(ds)
    if extra_params:
        c.params.update(extra_params)
    user = [c.column(col.field) for col in ds.columns]
    outputs: list[Output] = []

    def add_system():
        for name, (_sql, _kind) in _SYSTEM.items():
            outputs.append(Output(name, c.column(name), name))

    select = params.get("$select")
    if not select:
        if params.get("$$exclude_system_fields", "").lower() == "false":
            add_system()
        outputs += [Output(col.field, e) for col, e in zip(ds.columns, user)]
    else:
        taken: set[str] = set()
        for kind, item in Parser(select, "$select").select_list():
            if kind == "all":
                outputs += [Output(col.field, e) for col, e in zip(ds.columns, user)]
            elif kind == "system":
                add_system()
            else:
                node, alias, tokens = item
                e = c.compile(node)
                name = alias or _auto_name(node, tokens, taken)
                outputs.append(Output(name, e))
            taken.update(o.name for o in outputs)
    for o in outputs:  # aliases may be used in $order, $group and $having
        if o.name not in c.fields and o.name not in _SYSTEM:
            c.aliases.setdefault(o.name, o.expr)

    where = []
    if params.get("$where"):
        where.append(c.compile(Parser(params["$where"], "$where").condition()).sql)
    for key, value in params.items():
        if key.startswith("$"):
            continue
        e = c.column(key)
        where.append(c.compare("=", e, c.literal(value, "text")).sql)
    if params.get("$q"):
        texts = [e.sql for e in user if e.kind == "text"]
        if texts:
            p = c.param(params["$q"].lower())
            where.append("(" + " OR ".join(f"instr(lower({t}), {p}) > 0" for t in texts) + ")")
        else:
            where.append("0")
    if extra_where:
        where.append(extra_where)

    group = [c.compile(n) for n in Parser(params["$group"], "$group").expr_list()] if params.get("$group") else []
    having = c.compile(Parser(params["$having"], "$having").condition()).sql if params.get("$having") else None
    aggregate = bool(group) or any(o.expr.agg for o in outputs)
    order = []
    if params.get("$order"):
        for node, desc in Parser(params["$order"], "$order").order_list():
            e = c.compile(node)
            order.append(f"{c.num(e) if e.kind in ('number', 'double') else e.sql}{' DESC' if desc else ''}")
    if not aggregate and behaviour.DEFAULT_ORDER_BY_ID:
        order.append("_sid")

    limit = _count(params.get("$limit"), "$limit", default_limit)
    offset = _count(params.get("$offset"), "$offset", 0)
    sql = f"SELECT {', '.join(o.expr.sql for o in outputs) or 'NULL'} FROM {quote(ds.table)}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if group:
        sql += " GROUP BY " + ", ".join(g.sql for g in group)
    if having:
        sql += " HAVING " + having
    if order:
        sql += " ORDER BY " + ", ".join(order)
    if limit is not None:
        sql += f" LIMIT {limit}"
    if offset:
        sql += f" LIMIT -1 OFFSET {offset}" if limit is None else f" OFFSET {offset}"
    return Query(sql, c.params, outputs)


_WHOLE = re.compile(r"\s*\+?([0-9]+)\s*")
_INT64 = 2**63 - 1


def _count(text, name, default):
    """$limit / $offset: a whole number, 0 or more. One beyond SQLite's 64 bits means "all rows" for
    $limit and "past the end" for $offset (behaviour.HUGE_COUNTS); never a 500."""
    if text in (None, ""):
        return default
    m = _WHOLE.fullmatch(text)
    if not m:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise bad_request("query.compiler.malformed", f"{name} must be a whole number, 0 or more; got '{shown}'")
    digits = m.group(1).lstrip("0") or "0"
    if len(digits) > 19 or int(digits) > _INT64:
        if not behaviour.HUGE_COUNTS:
            raise bad_request("query.compiler.malformed", f"{name} must be at most {_INT64}")
        return None if name == "$limit" else _INT64
    value = int(digits)
    if name == "$limit" and behaviour.MAX_LIMIT is not None:
        value = min(value, behaviour.MAX_LIMIT)
    return value


def run(conn, q: Query) -> tuple[list[str], list[list]]:
    """Execute; returns output names and columns of stored values (see `wire`)."""
    import sqlite3

    try:
        rows = conn.execute(q.sql, q.params).fetchall()
    except (sqlite3.OperationalError, sqlite3.IntegrityError, sqlite3.DataError, OverflowError) as exc:
        # SQLite's own limits (too many terms, expression too deep, a value out of range) are the
        # query's fault: 400. Anything else (a broken file) stays a 500.
        raise bad_request("query.compiler.malformed", f"Could not run the query: {exc}") from None
    names = [o.name for o in q.outputs]
    if not rows:
        return names, [[] for _ in names]
    return names, [list(values) for values in zip(*rows)]


def wire(q: Query, columns: list[list]) -> list[list]:
    """Stored values -> each output column's JSON wire values."""
    return [o.wire(values) for o, values in zip(q.outputs, columns)]


def row_objects(names: list[str], columns: list[list]) -> list[dict]:
    """Row objects with null cells left out."""
    if not columns or not columns[0]:
        return []
    return [{k: v for k, v in zip(names, values) if v is not None} for values in zip(*columns)]

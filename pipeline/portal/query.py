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
from dataclasses import dataclass, field

from pipeline.portal import behaviour, rowids, soql_functions, soql_geo, soql_text
from pipeline.portal.errors import Maltyped, bad_request
from pipeline.portal.numbers import number_text
from pipeline.portal.soql import Parser, split_query
from pipeline.portal.soql_expr import NUMERIC, SOQL_TYPES, Expr, merged, mismatch
from pipeline.portal.storage import Dataset, quote

_SYSTEM = {":id": ("_sid", "row_id"), ":created_at": ("_created", "fixed_ts"), ":updated_at": ("_updated", "fixed_ts")}


@dataclass
class Output:
    name: str
    expr: Expr
    system: str | None = None

    @property
    def soql_type(self) -> str:
        t = self.expr.type
        return "text" if t == "null" else t

    def wire(self, values: list) -> list:
        e = self.expr
        if e.ctype is not None:
            return e.ctype.wire(values)
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
        if e.ctype is not None:
            return e.ctype.cell(values)
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
        self.jobs: list = []  # geo computations to run before the SQL (soql_geo)

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
            return Expr(quote(col.phys), col.type.kind, col, free=frozenset([name]))
        if name in _SYSTEM:
            sql, kind = _SYSTEM[name]
            return Expr(sql, kind, free=frozenset([name]))
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
                    from pipeline.portal.wire import fixed_text, floating_text

                    read = fixed_text if other.kind == "fixed_ts" else floating_text
                    return Expr(self.param(read(text.strip())), other.kind, literal=(other.kind, text))
                return Expr(self.param(ctype.literal(text)), other.kind)
            if other.kind == "bool":
                from pipeline.portal.wire import TYPES

                return Expr(str(TYPES["checkbox"].literal(text)), "bool")
            if other.kind == "row_id":
                sid = rowids.decode(text.strip())
                return Expr(self.param(sid if sid is not None else -1), "row_id")
        except (Maltyped, ValueError, TypeError):
            raise bad_request(
                "query.soql.type-mismatch", f"'{text}' is not a valid {SOQL_TYPES[other.kind]}", value=text
            ) from None
        return lit

    def compare(self, op: str, a: Expr, b: Expr) -> Expr:
        a, b = self.coerce(a, b), self.coerce(b, a)
        self.comparable(op, a, b)
        numeric = {a.kind, b.kind} & {"number", "double"}
        left, right = (self.num(a), self.num(b)) if numeric else (a.sql, b.sql)
        return merged(f"({left} {op} {right})", "bool", a, b)

    @staticmethod
    def comparable(op: str, a: Expr, b: Expr) -> None:
        """Socrata compares values of one type (numbers with doubles); else a type mismatch."""
        if a.kind == "null" or b.kind == "null" or (a.kind in NUMERIC and b.kind in NUMERIC):
            return
        if a.kind == b.kind and a.type == b.type:
            return
        raise mismatch(op, b if a.literal is None else a)

    def boolean(self, op: str, e: Expr) -> Expr:
        if e.kind not in ("bool", "null"):
            raise mismatch(op, e)
        return e

    # ---- trees
    def compile(self, node) -> Expr:
        kind = node[0]
        if kind == "col":
            return self.column(node[1])
        if kind == "lit":
            return self.literal(node[1], node[2])
        if kind == "sub":
            return soql_text.subfield(self.compile(node[1]), node[2])
        if kind == "cast":
            return soql_functions.cast(self, self.compile(node[1]), node[2])
        if kind == "bin":
            op, a, b = node[1], self.compile(node[2]), self.compile(node[3])
            if op in ("AND", "OR"):
                a, b = self.boolean(op.lower(), a), self.boolean(op.lower(), b)
                return merged(f"({a.sql} {op} {b.sql})", "bool", a, b)
            if op in ("=", "<>", "<", "<=", ">", ">="):
                return self.compare(op, a, b)
            if op == "||":
                return merged(f"({a.sql} || {b.sql})", "text", a, b)
            a, b = self.numeric(op, a), self.numeric(op, b)
            right = self.num(b)
            left = f"{self.num(a)} * 1.0" if op == "/" else self.num(a)
            out = "double" if "double" in (a.kind, b.kind) else "number"
            return merged(f"({left} {op} {right})", out, a, b)
        if kind == "not":
            a = self.boolean("not", self.compile(node[1]))
            return merged(f"(NOT {a.sql})", "bool", a)
        if kind == "neg":
            a = self.numeric("-", self.compile(node[1]))
            if a.literal is not None and a.col is None and type(a.literal[1]) in (int, float):
                return self.literal(-a.literal[1], a.kind)
            return merged(f"(- {self.num(a)})", a.kind, a)
        if kind == "isnull":
            a = self.compile(node[1])
            return merged(f"({a.sql} IS {'NOT ' if node[2] else ''}NULL)", "bool", a)
        if kind == "in":
            a = self.compile(node[1])
            items = [self.coerce(self.compile(n), a) for n in node[2]]
            for i in items:
                self.comparable("in", a, i)
            numeric = a.kind in NUMERIC
            left = self.num(a) if numeric else a.sql
            values = ", ".join(self.num(i) if numeric else i.sql for i in items)
            return merged(f"({left} {'NOT ' if node[3] else ''}IN ({values}))", "bool", a, *items)
        if kind == "like":
            a, b = self.compile(node[1]), self.compile(node[2])
            for e in (a, b):
                if e.kind not in ("text", "null") or e.type not in ("text", "null"):
                    raise mismatch("like", e)
            return merged(f"({a.sql} {'NOT ' if node[3] else ''}LIKE {b.sql})", "bool", a, b)
        if kind == "between":
            a = self.compile(node[1])
            low, high = self.coerce(self.compile(node[2]), a), self.coerce(self.compile(node[3]), a)
            self.comparable("between", a, low)
            self.comparable("between", a, high)
            numeric = a.kind in NUMERIC
            f = self.num if numeric else (lambda e: e.sql)
            sql = f"({f(a)} {'NOT ' if node[4] else ''}BETWEEN {f(low)} AND {f(high)})"
            return merged(sql, "bool", a, low, high)
        if kind == "func":
            return soql_functions.function(self, node[1], node[2], node[3])
        raise bad_request("query.compiler.malformed", "Could not compile the query")

    def numeric(self, op: str, e: Expr) -> Expr:
        if e.literal is not None and e.literal[0] == "text":
            e = self.coerce(e, Expr("0", "number"))
        if e.kind not in NUMERIC and e.kind != "null":
            raise mismatch(op, e)
        return e


def _auto_name(node, tokens, taken: set) -> str:
    if node[0] == "col":
        name = node[1]
    elif node[0] == "func" and node[2] == [("star",)]:
        name = behaviour.COUNT_STAR_NAME if node[1] == "count" else node[1]
    elif node[0] == "func" and len(node[2]) == 1 and node[2][0][0] == "col":
        name = f"{node[1]}_{node[2][0][1]}"
    else:
        words = [t.value.lower() for t in tokens if t.kind in ("ident", "ident_q", "num")]
        name = "_".join(w.strip(":").replace("::", "_") for w in words) or "expr"
    base, n = name, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


@dataclass
class Query:
    sql: str
    params: dict
    outputs: list
    jobs: list = field(default_factory=list)  # soql_geo computations to run first


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
    distinct = False
    if not select:
        if params.get("$$exclude_system_fields", "").lower() == "false":
            add_system()
        outputs += [Output(col.field, e) for col, e in zip(ds.columns, user)]
    else:
        taken: set[str] = set()
        parser = Parser(select, "$select")
        for kind, item in parser.select_list():
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
        distinct = parser.distinct
    for o in outputs:  # aliases may be used in $order, $group and $having
        if o.name not in c.fields and o.name not in _SYSTEM:
            c.aliases.setdefault(o.name, o.expr)

    where = []
    if params.get("$where"):
        cond = c.compile(Parser(params["$where"], "$where").condition())
        if cond.kind not in ("bool", "null"):
            raise bad_request(
                "query.soql.non-boolean-where", f"$where must be a boolean, not {cond.type}", type=cond.type
            )
        if cond.agg:
            raise bad_request(
                "query.soql.aggregate-in-ungrouped-context", "Aggregate function used in $where; use $having"
            )
        where.append(cond.sql)
    for key, value in params.items():
        if key.startswith("$"):
            continue
        e = c.column(key)
        where.append(c.compare("=", e, c.literal(value, "text")).sql)
    if params.get("$q"):
        found = soql_text.search(c, [e for e in user if e.kind == "text" and e.type == "text"], params["$q"])
        if found:
            where.append(found)
    if extra_where:
        where.append(extra_where)

    group = [c.compile(n) for n in Parser(params["$group"], "$group").expr_list()] if params.get("$group") else []
    having = c.compile(Parser(params["$having"], "$having").condition()) if params.get("$having") else None
    aggregate = bool(group) or having is not None or any(o.expr.agg for o in outputs)
    order = []
    ordered = []
    if params.get("$order"):
        for node, desc in Parser(params["$order"], "$order").order_list():
            e = c.compile(node)
            ordered.append(e)
            order.append(f"{c.num(e) if e.kind in ('number', 'double') else e.sql}{' DESC' if desc else ''}")
    if aggregate:
        _check_grouped(group, [o.expr for o in outputs] + ordered + ([having] if having else []))
    if not aggregate and not distinct and behaviour.DEFAULT_ORDER_BY_ID:
        order.append("_sid")

    limit = _count(params.get("$limit"), "$limit", default_limit)
    offset = _count(params.get("$offset"), "$offset", 0)
    columns = ", ".join(o.expr.sql for o in outputs) or "NULL"
    sql = f"SELECT {'DISTINCT ' if distinct else ''}{columns} FROM {quote(ds.table)}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if group:
        sql += " GROUP BY " + ", ".join(g.sql for g in group)
    if having:
        sql += " HAVING " + having.sql
    if order:
        sql += " ORDER BY " + ", ".join(order)
    if limit is not None:
        sql += f" LIMIT {limit}"
    if offset:
        sql += f" LIMIT -1 OFFSET {offset}" if limit is None else f" OFFSET {offset}"
    return Query(sql, c.params, outputs, c.jobs)


def _check_grouped(group: list[Expr], exprs: list[Expr]) -> None:
    """In an aggregated query every column read outside an aggregate must be grouped by
    (Socrata's query.soql.column-not-in-group-bys)."""
    grouped_sql = {g.sql for g in group}
    grouped = set().union(*(g.free for g in group if g.col is not None or g.sql in ("_sid", "_created", "_updated")))
    for e in exprs:
        if e.sql in grouped_sql or e.free <= grouped:
            continue
        column = sorted(e.free - grouped)[0]
        raise bad_request("query.soql.column-not-in-group-bys", f"Column '{column}' is not in group by", column=column)


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

    values: dict = {}
    soql_geo.register(conn, values)
    soql_text.register(conn)
    soql_functions.register(conn)
    try:
        for job in q.jobs:
            job.run(conn, q.params, values)
        rows = conn.execute(q.sql, q.params).fetchall()
    except (sqlite3.OperationalError, sqlite3.IntegrityError, sqlite3.DataError, OverflowError) as exc:
        # SQLite's own limits (too many terms, expression too deep, a value out of range) are the
        # query's fault: 400. Anything else (a broken file) stays a 500.
        why = str(exc)
        if "user-defined function raised exception" in why:
            why = "a value could not be converted (a ::cast of a text that is not of that type)"
        raise bad_request("query.compiler.malformed", f"Could not run the query: {why}") from None
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

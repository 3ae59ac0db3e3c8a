"""SoQL functions -> SQLite, with Socrata's type checks (SODA 2.1, https://dev.socrata.com/docs/functions/).

Signatures follow soql-reference's SoQLFunctions.scala (socrata-platform/soql-reference) and the SQL
follows soql-postgres-adapter's SqlFunctions.scala: a function given an argument of a type it does
not take is `query.soql.type-mismatch`, an unknown name or a wrong number of arguments is
`query.soql.no-such-function`. A text literal where another type is expected is read as that type,
as Socrata does (`date_extract_y('2024-01-05')`). Geo functions are in soql_geo.
"""

from __future__ import annotations

from pipeline.portal import soql_geo
from pipeline.portal.soql_expr import (
    NUMERIC,
    TIMESTAMPS,
    Expr,
    is_null,
    is_number,
    is_text,
    merged,
    mismatch,
    no_such_function,
    unsupported,
)

AGGREGATES = {"count", "sum", "avg", "min", "max", "stddev_pop", "stddev_samp", "median"}

_TRUNC = {
    "date_trunc_ymd": (10, "T00:00:00.000"),
    "date_trunc_ym": (7, "-01T00:00:00.000"),
    "date_trunc_y": (4, "-01-01T00:00:00.000"),
}
_EXTRACT = {
    "date_extract_y": "CAST(substr({0}, 1, 4) AS INTEGER)",
    "date_extract_m": "CAST(substr({0}, 6, 2) AS INTEGER)",
    "date_extract_d": "CAST(substr({0}, 9, 2) AS INTEGER)",
    "date_extract_hh": "CAST(substr({0}, 12, 2) AS INTEGER)",
    "date_extract_mm": "CAST(substr({0}, 15, 2) AS INTEGER)",
    "date_extract_ss": "CAST(substr({0}, 18, 2) AS INTEGER)",
    # Postgres' dow: 0 = Sunday; woy: the ISO week (the week of that week's Thursday)
    "date_extract_dow": "CAST(strftime('%w', substr({0}, 1, 19)) AS INTEGER)",
    "date_extract_woy": "((CAST(strftime('%j', date(substr({0}, 1, 10), '-3 days', 'weekday 4')) AS INTEGER) - 1) / 7 + 1)",
}
_TEXT_1 = {  # text -> text
    "lower": "lower({0})",
    "upper": "upper({0})",
    "trim": "trim({0})",
    "trim_leading": "ltrim({0})",
    "trim_trailing": "rtrim({0})",
}
_TEXT_2_BOOL = {  # text, text -> boolean
    "starts_with": "(substr({0}, 1, length({1})) = {1})",
    "contains": "(instr({0}, {1}) > 0)",
    "caseless_eq": "(upper({0}) = upper({1}))",
    "caseless_ne": "(upper({0}) <> upper({1}))",
    "caseless_starts_with": "(substr(upper({0}), 1, length({1})) = upper({1}))",
    "caseless_contains": "(instr(upper({0}), upper({1})) > 0)",
}
_NUMBER_1 = {"abs": "abs({0})", "ceil": "ceil({0})", "floor": "floor({0})", "ln": "ln({0})"}


def function(c, name: str, args: list, distinct: bool) -> Expr:
    """A function call node's arguments (trees) -> the compiled call. `c` is the query Compiler."""
    if name in AGGREGATES:
        return _aggregate(c, name, args, distinct)
    if ("star",) in args:
        raise no_such_function(f"{name}(*)", 1)
    if name in soql_geo.FUNCTIONS:
        return soql_geo.compile_call(c, name, args)
    if name == "case":
        return _case(c, args)
    compiled = [c.compile(a) for a in args]
    n = len(compiled)
    if name in _TEXT_1 and n == 1:
        a = _text(c, name, compiled[0])
        return merged(_TEXT_1[name].format(a.sql), "text", a)
    if name in _TEXT_2_BOOL and n == 2:
        a, b = (_text(c, name, x) for x in compiled)
        return merged(_TEXT_2_BOOL[name].format(a.sql, b.sql), "bool", a, b)
    if name == "length" and n == 1:
        a = _text(c, name, compiled[0])
        return merged(f"length({a.sql})", "number", a)
    if name in ("left_pad", "right_pad") and n == 3:
        s, width, fill = _text(c, name, compiled[0]), _number(c, name, compiled[1]), _text(c, name, compiled[2])
        return merged(
            f"soql_pad({s.sql}, {c.num(width)}, {fill.sql}, {int(name == 'left_pad')})", "text", s, width, fill
        )
    if name == "split_part" and n == 3:
        s, sep, k = _text(c, name, compiled[0]), _text(c, name, compiled[1]), _number(c, name, compiled[2])
        return merged(f"soql_split_part({s.sql}, {sep.sql}, {c.num(k)})", "text", s, sep, k)
    if name == "replace" and n == 3:
        s, a, b = (_text(c, name, x) for x in compiled)
        return merged(f"replace({s.sql}, {a.sql}, {b.sql})", "text", s, a, b)
    if name in ("caseless_one_of", "caseless_not_one_of") and n >= 2:
        items = [_text(c, name, x) for x in compiled]
        op = "NOT IN" if "not" in name else "IN"
        values = ", ".join(f"upper({i.sql})" for i in items[1:])
        return merged(f"(upper({items[0].sql}) {op} ({values}))", "bool", *items)
    if name in _NUMBER_1 and n == 1:
        a = _number(c, name, compiled[0])
        return merged(_NUMBER_1[name].format(c.num(a)), _numeric_kind(a), a)
    if name == "round" and n == 2:
        a, places = _number(c, name, compiled[0]), _number(c, name, compiled[1])
        return merged(f"round({c.num(a)}, CAST({c.num(places)} AS INTEGER))", "number", a, places)
    if name in _TRUNC and n == 1:
        a = _timestamp(c, name, compiled[0])
        width, suffix = _TRUNC[name]
        if a.kind == "fixed_ts":
            suffix += "Z"
        return merged(f"(substr({a.sql}, 1, {width}) || '{suffix}')", a.kind, a)
    if name in _EXTRACT and n == 1:
        a = _timestamp(c, name, compiled[0])
        return merged(_EXTRACT[name].format(a.sql), "number", a)
    if name == "date_diff_d" and n == 2:
        a, b = (_timestamp(c, name, x) for x in compiled)
        if {a.kind, b.kind} == TIMESTAMPS:
            raise mismatch(name, b)
        return merged(f"CAST(julianday({a.sql}) - julianday({b.sql}) AS INTEGER)", "number", a, b)
    if name == "coalesce" and n >= 1:
        kind, items = same_type(c, name, compiled)
        return merged(f"COALESCE({', '.join(i.sql for i in items)})", kind, *items, **_typed(items))
    if name in ("greatest", "least") and n >= 1:
        kind, items = same_type(c, name, compiled)
        if n == 1:
            return items[0]
        sqls = [c.num(i) if kind in NUMERIC else i.sql for i in items]
        rotations = [f"coalesce({', '.join(sqls[k:] + sqls[:k])})" for k in range(n)]
        fn = "max" if name == "greatest" else "min"  # ignoring nulls, as Postgres' greatest/least do
        return merged(f"{fn}({', '.join(rotations)})", kind, *items, **_typed(items))
    raise no_such_function(name, n)


_CASTS = {
    "text": "text",
    "number": "number",
    "double": "double",
    "money": "number",
    "floating_timestamp": "float_ts",
    "calendar_date": "float_ts",
    "fixed_timestamp": "fixed_ts",
    "date": "fixed_ts",
    "boolean": "bool",
    "checkbox": "bool",
}


def cast(c, e: Expr, type_name: str) -> Expr:
    """`value::type` (https://dev.socrata.com/docs/datatypes/, "converting"): text to and from
    numbers, timestamps and booleans; a text value that does not convert fails the query (400)."""
    kind = _CASTS.get(type_name)
    if kind is None:
        raise unsupported(f"'::{type_name}' casts (only ::{', ::'.join(sorted(_CASTS))})", type=type_name)
    if e.kind == kind or (kind in NUMERIC and e.kind in NUMERIC) or is_null(e):
        return merged(c.num(e) if kind in NUMERIC else e.sql, kind, e) if e.kind != kind else e
    if e.literal is not None and e.literal[0] == "text" and kind != "text":
        return c.coerce(e, Expr("NULL", kind))
    if e.kind == "text" and e.type == "text":
        return merged(f"soql_cast({e.sql}, '{kind}')", kind, e)
    if kind == "text" and e.kind in NUMERIC | TIMESTAMPS | {"bool"}:
        return merged(f"soql_text_of({e.sql}, '{e.kind}')", "text", e)
    raise mismatch(f"::{type_name}", e)


def _aggregate(c, name, args, distinct) -> Expr:
    if name == "count":
        if args == [("star",)]:
            return Expr("COUNT(*)", "number", agg=True)
        a = c.compile(_one(name, args))
        if a.agg:
            raise mismatch(name, a)
        return Expr(f"COUNT({'DISTINCT ' if distinct else ''}{a.sql})", "number", agg=True)
    if ("star",) in args:
        raise no_such_function(f"{name}(*)", 1)
    a = c.compile(_one(name, args))
    if a.agg:
        raise bad_nesting(name)
    if name in ("min", "max"):
        if a.kind == "bool" or a.type not in (
            "text",
            "number",
            "double",
            "money",
            "floating_timestamp",
            "fixed_timestamp",
            "row_identifier",
            "null",
        ):
            raise mismatch(name, a)
        if a.kind in NUMERIC:
            return Expr(f"{name.upper()}({c.num(a)})", a.kind, agg=True, soql=a.type)
        return Expr(f"{name.upper()}({a.sql})", a.kind, a.col, agg=True)
    if not (a.kind in NUMERIC or is_null(a)):
        raise mismatch(name, a)
    value = c.num(a)
    if name in ("sum", "avg"):
        return Expr(f"{name.upper()}({'DISTINCT ' if distinct else ''}{value})", "number", agg=True)
    if name == "median":
        return Expr(f"soql_median({value})", "number", agg=True)
    return Expr(f"soql_{name}({value})", "number", agg=True)


def bad_nesting(name):
    from pipeline.portal.errors import bad_request

    return bad_request(
        "query.soql.aggregate-in-ungrouped-context",
        f"Aggregate function '{name}' used inside another aggregate",
        function=name,
    )


def _one(name, args):
    if len(args) != 1:
        raise no_such_function(name, len(args))
    return args[0]


def _case(c, args) -> Expr:
    """case(cond1, value1, cond2, value2, ...): the value of the first true condition, else null."""
    if not args or len(args) % 2:
        raise no_such_function("case", len(args))
    compiled = [c.compile(a) for a in args]
    conds, values = compiled[0::2], compiled[1::2]
    for cond in conds:
        if cond.kind not in ("bool", "null"):
            raise mismatch("case", cond)
    kind, values = same_type(c, "case", values)
    whens = " ".join(f"WHEN {w.sql} THEN {v.sql}" for w, v in zip(conds, values))
    return merged(f"(CASE {whens} END)", kind, *compiled, **_typed(values))


def same_type(c, name, items: list[Expr]) -> tuple[str, list[Expr]]:
    """Arguments that must share one type (coalesce, case values, greatest): text literals are read
    as the type of the first typed argument; numbers and doubles mix."""
    typed = next((i for i in items if i.literal is None and not is_null(i)), None)
    if typed is None:
        typed = next((i for i in items if not is_null(i)), items[0])
    out = [c.coerce(i, typed) for i in items]
    for i in out:
        if is_null(i):
            continue
        if i.type != typed.type and not (i.kind in NUMERIC and typed.kind in NUMERIC):
            raise mismatch(name, i)
    return typed.kind, out


def _typed(items: list[Expr]) -> dict:
    """How a value chosen among `items` is written out: json values (geometries, urls) as their
    common column type; the others by their kind."""
    first = next((i for i in items if not is_null(i)), None)
    if first is None or first.kind != "json":
        return {}
    ctype = first.ctype or (first.col.type if first.col is not None else None)
    return {"soql": first.type, "ctype": ctype}


def _numeric_kind(a: Expr) -> str:
    return "double" if a.kind == "double" else "number"


def _text(c, name, e: Expr) -> Expr:
    if not is_text(e):
        raise mismatch(name, e)
    return e


def _number(c, name, e: Expr) -> Expr:
    if e.literal is not None and e.literal[0] == "text":
        e = c.coerce(e, Expr("0", "number"))
    if not is_number(e):
        raise mismatch(name, e)
    return e


def _timestamp(c, name, e: Expr) -> Expr:
    if e.literal is not None and e.literal[0] == "text":
        e = c.coerce(e, Expr("''", "float_ts"))
    if e.kind not in TIMESTAMPS and not is_null(e):
        raise mismatch(name, e)
    return e


# ---- functions SQLite calls ---------------------------------------------------------------------


def _pad(text, width, fill, left):
    if text is None or width is None or fill is None:
        return None
    width = int(width)
    if width <= len(text) or not fill:
        return text[: max(width, 0)]
    padding = (fill * (width // len(fill) + 1))[: width - len(text)]
    return padding + text if left else text + padding


def _split_part(text, sep, k):
    if text is None or sep is None or k is None:
        return None
    parts = text.split(sep) if sep else [text]
    k = int(k)
    return parts[k - 1] if 1 <= k <= len(parts) else ""


class _Values:
    def __init__(self):
        self.values = []

    def step(self, v):
        if v is not None:
            self.values.append(float(v))


class _Median(_Values):
    def finalize(self):
        import statistics

        return statistics.median(self.values) if self.values else None


class _StddevPop(_Values):
    def finalize(self):
        import statistics

        return statistics.pstdev(self.values) if self.values else None


class _StddevSamp(_Values):
    def finalize(self):
        import statistics

        return statistics.stdev(self.values) if len(self.values) > 1 else None


def _cast(value, kind):
    """A text value read as `kind` (the stored form); ValueError (the query's 400) when it is not one."""
    from pipeline.portal.numbers import number_text
    from pipeline.portal.wire import TYPES, fixed_text, floating_text

    if value is None:
        return None
    text = str(value).strip()
    if kind in ("number", "double"):
        return float(number_text(text))
    if kind == "float_ts":
        return floating_text(text)
    if kind == "fixed_ts":
        return fixed_text(text)
    return TYPES["checkbox"].literal(text)


def _text_of(value, kind):
    from pipeline.portal.numbers import number_text

    if value is None:
        return None
    if kind in NUMERIC:
        if type(value) is float and value.is_integer() and abs(value) < 1e15:
            value = int(value)
        return number_text(value)
    if kind == "bool":
        return "true" if value else "false"
    return str(value)


def register(conn) -> None:
    conn.create_function("soql_cast", 2, _cast, deterministic=True)
    conn.create_function("soql_text_of", 2, _text_of, deterministic=True)
    conn.create_function("soql_pad", 4, _pad, deterministic=True)
    conn.create_function("soql_split_part", 3, _split_part, deterministic=True)
    conn.create_aggregate("soql_median", 1, _Median)
    conn.create_aggregate("soql_stddev_pop", 1, _StddevPop)
    conn.create_aggregate("soql_stddev_samp", 1, _StddevSamp)

"""The transform expressions of output schemas (DSMAPI "Data Transforms", dev.socrata.com/docs/transforms).

A small, safe evaluator: the expression is tokenised and parsed into a tree (no Python eval), each
node is typed when it is compiled, and evaluation runs over whole columns: a node takes the list of
rows it is asked about and answers one value per row. `coalesce` and `case` ask their later
arguments only about the rows still undecided, so `coalesce(x, error('...'))` fails only the rows
where x is null. A cell that does not convert fails its row (the row's error names the value), and
an expression that cannot be typed (an unknown column or function, `geocode`) fails the transform.

Values inside are the portal's stored forms (wire.column_type(...).store): text as str, numbers as
number text, checkboxes 0/1, timestamps ISO text, geometries/locations/urls JSON text. So the
result goes into an output table as it is.
"""

# Longer than 400 lines because it is one language: tokens, parser, types and the functions
# socrata-py users write in output schemas, kept together so the grammar reads in one place.

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, DivisionByZero, InvalidOperation

import orjson

from pipeline.portal.behaviour import TRANSFORM_FUNCTIONS
from pipeline.portal.errors import Maltyped
from pipeline.portal.numbers import number_text, plain_decimal
from pipeline.portal.wire import column_type

MAX_DEPTH = 40
MAX_TREE_DEPTH = 100
MAX_LENGTH = 20_000

_TOKEN = re.compile(
    r"\s*(?:(?P<ident>`(?:[^`]|``)+`)|(?P<str>'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")"
    r"|(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\|\||<=|>=|<>|!=|==|[-+*/%=<>(),]))"
)
_CONVERSIONS = TRANSFORM_FUNCTIONS  # the to_* functions and the type each makes
_NUMERIC = ("number", "money", "double")
_TIMESTAMPS = ("calendar_date", "date")
_UNSUPPORTED = {
    "geocode": "geocoding",
    "reverse_geocode": "geocoding",
    "geocode_to_location": "geocoding",
}


class TransformError(ValueError):
    """The expression cannot be compiled: the transform fails (not a row)."""


class _RowError(Exception):
    pass


# ---- tokens and parser ------------------------------------------------------------------------------


def _tokens(text: str) -> list[tuple[str, str]]:
    out, at = [], 0
    text = text.rstrip()
    while at < len(text):
        m = _TOKEN.match(text, at)
        if not m or m.end() == at:
            raise TransformError(f"cannot read the transform at '{text[at : at + 20]}'")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        at = m.end()
    return out


def _depth(root) -> int:
    """How deep a parsed tree is, counted without recursion."""
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if node[0] == "call":
            stack.extend((arg, depth + 1) for arg in node[2])
    return deepest


class _Parser:
    def __init__(self, text: str):
        if len(text) > MAX_LENGTH:
            raise TransformError(f"the transform is longer than {MAX_LENGTH} characters")
        self.tokens = _tokens(text)
        self.at = 0
        self.depth = 0

    def peek(self, value=None):
        if self.at < len(self.tokens):
            tok = self.tokens[self.at]
            if value is None or (tok[0] in ("op", "word") and tok[1].lower() == value):
                return tok
        return None

    def take(self, value=None):
        tok = self.peek(value)
        if tok is None:
            found = self.tokens[self.at][1] if self.at < len(self.tokens) else "the end"
            raise TransformError(f"expected {value or 'more'} but found {found}")
        self.at += 1
        return tok

    def parse(self):
        node = self.expr()
        if self.at != len(self.tokens):
            raise TransformError(f"unexpected '{self.tokens[self.at][1]}'")
        if _depth(node) > MAX_TREE_DEPTH:  # a long chain of || or + nests without parentheses
            raise TransformError(f"the transform is more than {MAX_TREE_DEPTH} levels deep")
        return node

    def expr(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise TransformError(f"the transform is nested more than {MAX_DEPTH} levels deep")
        node = self.binary(0)
        self.depth -= 1
        return node

    _LEVELS = (("or",), ("and",), ("=", "==", "!=", "<>", "<", "<=", ">", ">="), ("||",), ("+", "-"), ("*", "/", "%"))

    def binary(self, level: int):
        if level == len(self._LEVELS):
            return self.unary()
        if level == 2 and self.peek("not"):
            self.take()
            return ("call", "not", [self.binary(level)])
        node = self.binary(level + 1)
        while True:
            if level == 2 and self.peek("is"):
                self.take()
                negate = bool(self.peek("not")) and bool(self.take())
                self.take("null")
                node = ("call", "is_not_null" if negate else "is_null", [node])
                continue
            tok = self.peek()
            if tok and tok[0] in ("op", "word") and tok[1].lower() in self._LEVELS[level]:
                self.take()
                node = ("call", tok[1].lower(), [node, self.binary(level + 1)])
                continue
            return node

    def unary(self):
        if self.peek("-") or self.peek("+"):
            sign = self.take()[1]
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise TransformError(f"the transform is nested more than {MAX_DEPTH} levels deep")
            operand = self.unary()
            self.depth -= 1
            return ("call", "neg", [operand]) if sign == "-" else operand
        return self.primary()

    def primary(self):
        kind, value = self.take()
        if kind == "num":
            return ("lit", "number", number_text(value))
        if kind == "str":
            return ("lit", "text", value[1:-1].replace(value[0] * 2, value[0]))
        if kind == "ident":
            return ("col", value[1:-1].replace("``", "`"))
        if kind == "op" and value == "(":
            node = self.expr()
            self.take(")")
            return node
        if kind == "word":
            word = value.lower()
            if word in ("true", "false"):
                return ("lit", "checkbox", int(word == "true"))
            if word == "null":
                return ("lit", "null", None)
            if self.peek("("):
                self.take("(")
                args = []
                if not self.peek(")"):
                    args.append(self.expr())
                    while self.peek(","):
                        self.take()
                        args.append(self.expr())
                self.take(")")
                return ("call", word, args)
            return ("col", value)
        raise TransformError(f"unexpected '{value}'")


# ---- conversions between stored forms ----------------------------------------------------------------


def _unable(value, source: str, target: str) -> str:
    return f'Unable to convert "{value}" from {source} to {target}'


def _from_text(value: str, target: str):
    ctype = column_type(target)
    try:
        stored = ctype.store(ctype.from_text([value], ""), "")[0]
    except (Maltyped, ValueError, TypeError, ArithmeticError):
        raise _RowError(_unable(value, "text", target)) from None
    if stored is None and value.strip():
        raise _RowError(_unable(value, "text", target))
    return stored


def _to_text(value, source: str) -> str:
    if source in ("text", "null"):
        return value
    return column_type(source).cell([value])[0]


def _decimal(value) -> Decimal:
    return Decimal(str(value))


def _convert(value, source: str, target: str):
    """One stored value of type `source` as type `target`; _RowError when it does not convert."""
    if value is None or source == target or source == "null":
        return value
    if target == "text":
        return _to_text(value, source)
    if source == "text":
        return _from_text(value, target)
    if target in _NUMERIC and source in _NUMERIC + ("checkbox",):
        if target == "double":
            return float(value)
        return number_text(value if not isinstance(value, float) else repr(value))
    if target == "checkbox" and source in _NUMERIC:
        return int(_decimal(value) != 0)
    if target in _TIMESTAMPS and source in _TIMESTAMPS:
        return value[:23] if target == "calendar_date" else value.rstrip("Z") + "Z"
    if target == "location" and source == "point":
        lon, lat = orjson.loads(value)["coordinates"]
        return orjson.dumps({"latitude": number_text(lat), "longitude": number_text(lon)}).decode()
    if target == "multipoint" and source == "point":
        return orjson.dumps({"type": "MultiPoint", "coordinates": [orjson.loads(value)["coordinates"]]}).decode()
    return _from_text(_to_text(value, source), target)


def _convertible(source: str, target: str) -> bool:
    if source in (target, "text", "null") or target == "text":
        return True
    pairs = {
        *((a, b) for a in _NUMERIC + ("checkbox",) for b in _NUMERIC),
        *((a, "checkbox") for a in _NUMERIC),
        *((a, b) for a in _TIMESTAMPS for b in _TIMESTAMPS),
        ("point", "location"),
        ("point", "multipoint"),
    }
    return (source, target) in pairs


# ---- the functions ------------------------------------------------------------------------------------


def _arith(op):
    def fn(a, b, types):
        if "double" in types:
            x, y = float(a), float(b)
            if op in "/%" and y == 0:
                raise _RowError("division by zero")
            return {"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else 0, "%": x % y if y else 0}[op]
        x, y = _decimal(a), _decimal(b)
        try:
            r = {"+": x + y, "-": x - y, "*": x * y}.get(op)
            if r is None:
                r = x / y if op == "/" else x % y
        except (DivisionByZero, InvalidOperation):
            raise _RowError("division by zero") from None
        return plain_decimal(r.normalize() if op == "/" else r)

    return fn


def _compare(op):
    def fn(a, b, types):
        if types[0] in _NUMERIC:
            a, b = _decimal(a), _decimal(b)
        return int(
            {
                "=": a == b,
                "==": a == b,
                "!=": a != b,
                "<>": a != b,
                "<": a < b,
                "<=": a <= b,
                ">": a > b,
                ">=": a >= b,
            }[op]
        )

    return fn


def _floating(value: str, fmt: str | None = None) -> str:
    if fmt is None:
        return value
    py = fmt
    for joda, p in (("yyyy", "%Y"), ("yy", "%y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("hh", "%I")):
        py = py.replace(joda, p)
    for joda, p in (("mm", "%M"), ("ss", "%S"), ("a", "%p"), ("SSS", "%f")):
        py = py.replace(joda, p)
    try:
        return datetime.strptime(value.strip(), py).isoformat(timespec="milliseconds")
    except ValueError:
        raise _RowError(f'Unable to convert "{value}" to a timestamp with the format {fmt}') from None


def _date_part(fmt: str, number: bool):
    def fn(a):
        moment = datetime.fromisoformat(a.rstrip("Z"))
        if number:
            return str(getattr(moment, fmt))
        return moment.strftime(fmt) + ".000" + ("Z" if a.endswith("Z") else "")

    return fn


def _make_point(lat, lon):
    return orjson.dumps({"type": "Point", "coordinates": [float(lon), float(lat)]}).decode()


def _make_location(address, city, state, zip_, point=None):
    out = {
        "human_address": orjson.dumps(
            {"address": address or "", "city": city or "", "state": state or "", "zip": zip_ or ""}
        ).decode()
    }
    if point:
        lon, lat = orjson.loads(point)["coordinates"]
        out.update(latitude=number_text(lat), longitude=number_text(lon))
    return orjson.dumps(out).decode()


def _error(message):
    raise _RowError(message if message is not None else "error")


# name -> (argument types (None = any; "same" = the first argument's), result type or "same", fn)
# fn(*values) is called on non-null arguments only (operators also get the argument types); a
# null argument gives null.
_FUNCTIONS = {
    "||": (["text", "text"], "text", lambda a, b: a + b),
    "upper": (["text"], "text", str.upper),
    "lower": (["text"], "text", str.lower),
    "trim": (["text", "text?"], "text", lambda a, c=None: a.strip(c)),
    "ltrim": (["text", "text?"], "text", lambda a, c=None: a.lstrip(c)),
    "rtrim": (["text", "text?"], "text", lambda a, c=None: a.rstrip(c)),
    "length": (["text"], "number", lambda a: str(len(a))),
    "starts_with": (["text", "text"], "checkbox", lambda a, b: int(a.startswith(b))),
    "contains": (["text", "text"], "checkbox", lambda a, b: int(b in a)),
    "neg": (["numeric"], "same", lambda a: -a if isinstance(a, float) else plain_decimal(-_decimal(a))),
    "abs": (["numeric"], "same", lambda a: abs(a) if isinstance(a, float) else plain_decimal(abs(_decimal(a)))),
    "not": (["checkbox"], "checkbox", lambda a: 1 - a),
    "and": (["checkbox", "checkbox"], "checkbox", lambda a, b: a & b),
    "or": (["checkbox", "checkbox"], "checkbox", lambda a, b: a | b),
    "make_point": (["number", "number"], "point", _make_point),
    "make_location": (["text", "text", "text", "text", "point?"], "location", _make_location),
    "date_trunc_ymd": (["timestamp"], "same", _date_part("%Y-%m-%dT00:00:00", False)),
    "date_trunc_ym": (["timestamp"], "same", _date_part("%Y-%m-01T00:00:00", False)),
    "date_trunc_y": (["timestamp"], "same", _date_part("%Y-01-01T00:00:00", False)),
    "date_extract_y": (["timestamp"], "number", _date_part("year", True)),
    "date_extract_m": (["timestamp"], "number", _date_part("month", True)),
    "date_extract_d": (["timestamp"], "number", _date_part("day", True)),
    "date_extract_hh": (["timestamp"], "number", _date_part("hour", True)),
    "date_extract_mm": (["timestamp"], "number", _date_part("minute", True)),
    "date_extract_ss": (["timestamp"], "number", _date_part("second", True)),
    "error": (["text"], "any", _error),
}
_OPERATORS = frozenset("+-*/%") | {"=", "==", "!=", "<>", "<", "<=", ">", ">="}
for _op in "+-*/%":
    _FUNCTIONS[_op] = (["numeric", "numeric"], "numeric", _arith(_op))
for _op in ("=", "==", "!=", "<>", "<", "<=", ">", ">="):
    _FUNCTIONS[_op] = (["comparable", "same"], "checkbox", _compare(_op))


# ---- compiling: types, then a function over rows -------------------------------------------------------


class Compiled:
    """A typed transform: `type_name`, the input columns it reads (`inputs`), `evaluate(columns, n)`."""

    def __init__(self, root, type_name: str, inputs: list[str]):
        self.root = root
        self.type_name = "text" if type_name in ("null", "any") else type_name
        self.inputs = inputs

    def evaluate(self, columns: dict[str, list], n: int) -> tuple[list, dict[int, str]]:
        """Values (stored form) for rows 0..n-1 and {row: error message} for the rows that failed."""
        errors: dict[int, str] = {}
        values = _run(self.root, list(range(n)), columns, errors)
        out = [None] * n
        for r, v in zip(range(n), values):
            out[r] = None if r in errors else v
        return out, errors


def compile_transform(expr: str, input_types: dict[str, str]) -> Compiled:
    """Parse and type `expr` against input columns {field_name: dataTypeName}; TransformError if it
    cannot be evaluated here."""
    tree = _Parser(expr or "").parse()
    inputs: list[str] = []
    root, type_name = _typed(tree, input_types, inputs)
    return Compiled(root, type_name, inputs)


def _resolve(name: str, input_types: dict[str, str]) -> str:
    if name in input_types:
        return name
    lowered = {k.lower(): k for k in input_types}
    if name.lower() in lowered:
        return lowered[name.lower()]
    raise TransformError(f"the transform names input column '{name}', which the source does not have")


def _typed(node, input_types, inputs):
    """(typed node, type). Typed nodes: ("lit", type, value), ("col", field, type),
    ("conv", child, from, to), ("fn", name, children, types, result), ("coalesce"|"case", ...)."""
    kind = node[0]
    if kind == "lit":
        return node, node[1]
    if kind == "col":
        field = _resolve(node[1], input_types)
        if field not in inputs:
            inputs.append(field)
        return ("col", field, input_types[field]), input_types[field]
    name, args = node[1], node[2]
    if name in _UNSUPPORTED:
        raise TransformError(
            f"{name}() needs {_UNSUPPORTED[name]}, which the local portal does not support; "
            "build points with make_point(lat, lon) or to_point(text)"
        )
    typed = [_typed(a, input_types, inputs) for a in args]
    if name in _CONVERSIONS:
        target = _CONVERSIONS[name]
        if not typed or len(typed) > 2 or (len(typed) == 2 and not target.endswith("date")):
            raise TransformError(f"{name} takes one argument")
        child, source = typed[0]
        if len(typed) == 2:  # to_floating_timestamp(text, 'yyyy-MM-dd') and the fixed form
            fmt_node, fmt_type = typed[1]
            if source != "text" or fmt_node[0] != "lit" or fmt_type != "text":
                raise TransformError(f"{name}(text, 'format') needs a text and a literal format")
            parsed = ("fn", "_format", [child], ["text"], "calendar_date", fmt_node[2])
            return ("conv", parsed, "calendar_date", target), target
        if not _convertible(source, target):
            raise TransformError(f"{name} cannot convert {source} to {target}")
        return ("conv", child, source, target), target
    if name == "coalesce" or name == "case":
        return _typed_branches(name, typed)
    if name not in _FUNCTIONS:
        raise TransformError(f"the local portal does not support the function {name}()")
    wanted, result, _fn = _FUNCTIONS[name]
    required = [w for w in wanted if not w.endswith("?")]
    if not len(required) <= len(typed) <= len(wanted):
        raise TransformError(f"{name} takes {len(required)} arguments, not {len(typed)}")
    children, types = [], []
    first = None
    for (child, t), w in zip(typed, wanted):
        w = w.rstrip("?")
        if w == "same":
            w = first
            if t == "text" and first != "text":  # a text literal compared with a typed value
                child, t = ("conv", child, "text", first), first
            elif t != first and t != "null" and not (t in _NUMERIC and first in _NUMERIC):
                raise TransformError(f"{name} cannot compare {first} with {t}")
        elif w == "numeric":
            if t not in _NUMERIC + ("null",):
                raise TransformError(f"{name} needs numbers, not {t}")
            w = t
        elif w == "comparable":
            w = t
        elif w == "timestamp":
            if t not in _TIMESTAMPS:
                raise TransformError(f"{name} needs a timestamp, not {t}")
            w = t
        elif name == "||" and t != "text":  # concatenation writes any value as its text
            child, t = ("conv", child, t, "text"), "text"
        elif t not in (w, "null") and not (w == "number" and t in _NUMERIC):
            raise TransformError(f"{name} needs {w}, not {t}")
        first = first or w
        children.append(child)
        types.append(w)
    if result == "same":
        result = types[0]
    elif result == "numeric":
        result = "double" if "double" in types else ("money" if "money" in types else "number")
    return ("fn", name, children, types, result), result


def _typed_branches(name: str, typed):
    if name == "coalesce":
        values = typed
    else:
        if len(typed) < 2 or len(typed) % 2:
            raise TransformError("case takes pairs of a condition and a value")
        for cond, t in typed[0::2]:
            if t != "checkbox":
                raise TransformError(f"a case condition must be true or false, not {t}")
        values = typed[1::2]
    if not values:
        raise TransformError(f"{name} needs arguments")
    kinds = {t for _c, t in values} - {"null", "any"}
    if len(kinds) > 1:
        if kinds <= set(_NUMERIC):
            kinds = {"double" if "double" in kinds else "number"}
        else:
            raise TransformError(f"the values of {name} have different types: {', '.join(sorted(kinds))}")
    result = kinds.pop() if kinds else "null"
    children = [c if t in (result, "null", "any") else ("conv", c, t, result) for c, t in values]
    if name == "coalesce":
        return ("coalesce", children), result
    return ("case", [c for c, _t in typed[0::2]], children), result


def _run(node, rows: list[int], columns: dict, errors: dict) -> list:
    """The node's value for each of `rows` (None for null or failed rows)."""
    kind = node[0]
    if kind == "lit":
        return [node[2]] * len(rows)
    if kind == "col":
        cells = columns[node[1]]
        return [cells[r] for r in rows]
    if kind == "conv":
        _k, child, source, target = node
        values = _run(child, rows, columns, errors)
        if source == target:
            return values
        return _each(lambda v: _convert(v, source, target), rows, values, errors)
    if kind == "coalesce":
        out = [None] * len(rows)
        todo = list(range(len(rows)))
        for child in node[1]:
            if not todo:
                break
            values = _run(child, [rows[i] for i in todo], columns, errors)
            for i, v in zip(todo, values):
                out[i] = v
            todo = [i for i in todo if out[i] is None and rows[i] not in errors]
        return out
    if kind == "case":
        out = [None] * len(rows)
        todo = list(range(len(rows)))
        for cond, value in zip(node[1], node[2]):
            if not todo:
                break
            flags = _run(cond, [rows[i] for i in todo], columns, errors)
            hit = [i for i, f in zip(todo, flags) if f]
            for i, v in zip(hit, _run(value, [rows[i] for i in hit], columns, errors)):
                out[i] = v
            todo = [i for i, f in zip(todo, flags) if not f]
        return out
    _k, name, children, types, _result = node[:5]
    args = [_run(c, rows, columns, errors) for c in children]
    if name == "_format":
        fmt = node[5]
        return _each(lambda v: _floating(v, fmt), rows, args[0], errors)
    if name in ("is_null", "is_not_null"):
        return [int((v is None) == (name == "is_null")) for v in args[0]]
    fn = _FUNCTIONS[name][2]
    operator = name in _OPERATORS
    out = []
    for i, r in enumerate(rows):
        values = [a[i] for a in args]
        if r in errors or (None in values and name != "error"):
            out.append(None)
            continue
        try:
            out.append(fn(*values, types) if operator else fn(*values))
        except _RowError as exc:
            errors.setdefault(r, str(exc))
            out.append(None)
        except ArithmeticError:
            errors.setdefault(r, f"{name}: the result does not fit a number")
            out.append(None)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            errors.setdefault(r, f"{name} failed on {', '.join(map(str, values))[:200]}: {exc}")
            out.append(None)
    return out


def _each(fn, rows, values, errors) -> list:
    out = []
    for r, v in zip(rows, values):
        if v is None or r in errors:
            out.append(None)
            continue
        try:
            out.append(fn(v))
        except _RowError as exc:
            errors.setdefault(r, str(exc))
            out.append(None)
        except (ValueError, TypeError, ArithmeticError, KeyError, IndexError):
            errors.setdefault(r, f'Unable to convert "{v}"')
            out.append(None)
    return out

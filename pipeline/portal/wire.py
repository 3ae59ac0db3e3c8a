"""Column types: what each accepts on the wire, how it is stored, how it is read back (§3).

Every converter works on a whole column (a list of values) because the portal validates requests of
10,000 rows: a column whose values are already right costs one `set(map(type, ...))`, and values
that repeat (dates, towns, categories) are converted once each. A value that does not fit raises
`Maltyped`, which the request handler turns into a 400 naming the field and the value.

Storage: text, timestamps (normalised, so they sort as text) and numbers sent as strings are stored
as text; JSON numbers for number columns stay SQLite numbers and are written out as Socrata's
decimal strings when read; checkboxes are 0/1. The JSON-valued types are in wire_json.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pipeline.portal import geo
from pipeline.portal.coltype import INT64, STR, ColumnType, NoneType, all_match, first_bad, memo
from pipeline.portal.errors import Maltyped
from pipeline.portal.numbers import ANY_NUMBER, INTEGER, PLAIN, number_text


class Number(ColumnType):
    kind = "number"
    soql = "number"

    def store(self, values, field):
        types = set(map(type, values))
        if types <= {int, float, NoneType}:
            if int in types:
                ints = values if len(types) == 1 else [v for v in values if type(v) is int]
                if min(ints) < INT64[0] or max(ints) > INT64[1]:  # beyond SQLite integers: keep as text
                    return [str(v) if type(v) is int else v for v in values]
            return values
        if types <= STR:
            if len(values) >= 1000 and all_match(values, PLAIN.pattern):
                return values  # already Socrata's plain decimal text
            return memo(values, lambda v: None if v is None else number_text(v, field, self.soql))
        if bool in types or not types <= {int, float, str, NoneType}:
            raise Maltyped(field, self.soql, first_bad(values, {int, float, str, NoneType}))
        return [v if type(v) is not str else number_text(v, field, self.soql) for v in values]

    def key(self, values, field):
        """Row identifiers: integers as SQLite integers (a smaller, faster index), other numbers as
        canonical text, so 7, "7" and "007" are one key (and "7.0" another, as in Socrata)."""
        types = set(map(type, values))
        if types <= {int, NoneType} and int in types:
            ints = values if len(types) == 1 else [v for v in values if v is not None]
            if INT64[0] <= min(ints) and max(ints) <= INT64[1]:
                return values
        if bool in types or not types <= {int, float, str, NoneType}:
            raise Maltyped(field, self.soql, first_bad(values, {int, float, str, NoneType}))
        if types <= STR and len(values) >= 1000 and all_match(values, r"-?[0-9]{1,18}"):
            import pyarrow as pa

            return pa.array(values, pa.string()).cast(pa.int64()).to_pylist()

        def one(v):
            if v is None:
                return None
            text = number_text(v, field, self.soql)
            if INTEGER.fullmatch(text) and len(text) < 19:
                return int(text)
            return text

        if len(types - {NoneType}) <= 1:
            return memo(values, one)
        return [one(v) for v in values]

    def wire(self, values):
        types = set(map(type, values))
        if types <= STR:
            return values
        return [v if v is None or type(v) is str else number_text(v) for v in values]

    def from_text(self, values, field):
        return [v.strip() or None if v else None for v in values]

    def literal(self, text):
        return number_text(text.strip(), "", self.soql)


class Money(Number):
    soql = "money"


class Double(ColumnType):
    kind = "double"
    soql = "double"
    _SPECIAL = {"NaN": "NaN", "Infinity": float("inf"), "-Infinity": float("-inf")}

    def _one(self, v, field):
        t = type(v)
        if t is float or v is None:
            return v
        if t is int:
            return float(v)
        if t is str:
            if v in self._SPECIAL:
                return self._SPECIAL[v]
            if ANY_NUMBER.fullmatch(v):
                return float(v)
        raise Maltyped(field, self.soql, v)

    def store(self, values, field):
        if set(map(type, values)) <= {float, NoneType}:
            return values
        return [self._one(v, field) for v in values]

    def wire(self, values):
        out = []
        for v in values:
            if type(v) is float and v in (float("inf"), float("-inf")):
                v = "Infinity" if v > 0 else "-Infinity"
            elif type(v) is int:
                v = float(v)
            out.append(v)
        return out

    def from_text(self, values, field):
        return [v.strip() or None if v else None for v in values]

    def literal(self, text):
        return self._one(
            text.strip(),
            "",
        )


class Checkbox(ColumnType):
    kind = "bool"
    soql = "boolean"
    _TEXT = {
        "true": True,
        "t": True,
        "1": True,
        "yes": True,
        "y": True,
        "false": False,
        "f": False,
        "0": False,
        "no": False,
        "n": False,
    }

    def store(self, values, field):
        if set(map(type, values)) <= {bool, NoneType}:
            return [v if v is None else int(v) for v in values]
        raise Maltyped(field, "checkbox", first_bad(values, {bool, NoneType}))

    def wire(self, values):
        return [v if v is None else v == 1 for v in values]

    def from_text(self, values, field):
        def one(v):
            if not v or not v.strip():
                return None
            try:
                return self._TEXT[v.strip().lower()]
            except KeyError:
                raise Maltyped(field, "checkbox", v) from None

        return memo(values, one)

    def cell(self, values):
        return ["" if v is None else ("true" if v else "false") for v in self.wire(values)]

    def literal(self, text):
        value = self._TEXT.get(text.strip().lower())
        if value is None:
            raise Maltyped("", "checkbox", text)
        return 1 if value else 0


# ---- timestamps ---------------------------------------------------------------------------------

_DATE_TIME = r"(\d{4})-(\d\d)-(\d\d)(?:T(\d\d)(?::(\d\d)(?::(\d\d)(?:[.,](\d{1,9}))?)?)?)?"
_FLOATING = re.compile(_DATE_TIME)
_FIXED = re.compile(_DATE_TIME + r"(Z|[+-]\d\d(?::?\d\d)?)?")


def _moment(m, field, expected, value) -> datetime:
    y, mo, d, h, mi, s, frac = m.groups()[:7]
    try:
        return datetime(
            int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), int((frac or "").ljust(6, "0")[:6])
        )
    except ValueError:
        raise Maltyped(field, expected, value) from None


_FLOATING_FAST = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:T(?:[01]\d|2[0-3])(?::[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?)?)?"
)
_SUFFIX = {10: "T00:00:00.000", 13: ":00:00.000", 16: ":00.000", 19: ".000", 20: "000", 21: "00", 22: "0", 23: ""}
_SUFFIX_TABLE = None  # the same, as an Arrow array indexed by length (made on first use)


def floating_text(value, field: str = "") -> str | None:
    """ISO local date-time (no offset) -> `YYYY-MM-DDTHH:MM:SS.mmm`."""
    if value is None:
        return None
    if type(value) is str and _FLOATING_FAST.fullmatch(value):
        # the pattern checks ranges; only days 29-31 can still be wrong for their month
        if value[8] in "23" and value[8:10] >= "29":
            try:
                datetime(int(value[:4]), int(value[5:7]), int(value[8:10]))
            except ValueError:
                raise Maltyped(field, "floating_timestamp", value) from None
        n = len(value)
        return value + _SUFFIX[n] if n <= 23 else value[:23]
    m = _FLOATING.fullmatch(value) if type(value) is str else None
    if m is None:
        raise Maltyped(field, "floating_timestamp", value)
    return _moment(m, field, "floating_timestamp", value).isoformat(timespec="milliseconds")


def fixed_text(value, field: str = "") -> str | None:
    """ISO date-time with Z or an offset (none = UTC) -> UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    if value is None:
        return None
    m = _FIXED.fullmatch(value) if type(value) is str else None
    if m is None:
        raise Maltyped(field, "fixed_timestamp", value)
    moment = _moment(m, field, "fixed_timestamp", value)
    offset = m.group(8)
    if offset and offset != "Z":
        digits = offset[1:].replace(":", "")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        moment = moment - delta if offset[0] == "+" else moment + delta
    return moment.isoformat(timespec="milliseconds") + "Z"


def _floating_many(values: list) -> list | None:
    """floating_text over a whole column, checked in Arrow (several times faster on 10,000 cells);
    None when some value needs the careful path (an error to report, or a rarer form)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values, pa.string())
    if pc.all(pc.match_substring_regex(arr, "^" + _FLOATING_FAST.pattern + "$")).as_py() is False:
        return None
    # the pattern checks every range; only days 29 to 31 can still be wrong for their month
    late = arr.filter(pc.greater_equal(pc.utf8_slice_codeunits(arr, 8, 10), "29")).to_pylist()
    for day in set(v[:10] for v in late):
        try:
            datetime(int(day[:4]), int(day[5:7]), int(day[8:10]))
        except ValueError:
            return None
    lengths = pc.unique(pc.utf8_length(arr.drop_null())).to_pylist()
    if len(lengths) == 1 and lengths[0] <= 23:  # one form, as a client sends it: add the same suffix
        suffix = _SUFFIX[lengths[0]]
        if not suffix:
            return values
        if arr.null_count:
            return [v if v is None else v + suffix for v in values]
        return [v + suffix for v in values]
    global _SUFFIX_TABLE
    if _SUFFIX_TABLE is None:
        _SUFFIX_TABLE = pa.array([_SUFFIX.get(n, "") for n in range(24)])
    head = pc.utf8_slice_codeunits(arr, 0, 23)
    return pc.binary_join_element_wise(head, pc.take(_SUFFIX_TABLE, pc.utf8_length(head)), "").to_pylist()


class FloatingTimestamp(ColumnType):
    kind = "float_ts"
    soql = "floating_timestamp"

    def store(self, values, field):
        if not set(map(type, values)) <= STR:
            raise Maltyped(field, self.soql, first_bad(values, STR))
        if len(values) >= 1000 and type(self) is FloatingTimestamp:
            fast = _floating_many(values)
            if fast is not None:
                return fast
        return memo(values, lambda v: floating_text(v, field))

    def from_text(self, values, field):
        from pipeline.portal.behaviour import csv_timestamp

        cells = [v.strip() or None if v else None for v in values]
        return [csv_timestamp(v) if v is not None and "/" in v else v for v in cells]

    def literal(self, text):
        return floating_text(text.strip())


class FixedTimestamp(FloatingTimestamp):
    kind = "fixed_ts"
    soql = "fixed_timestamp"

    def store(self, values, field):
        if not set(map(type, values)) <= STR:
            raise Maltyped(field, self.soql, first_bad(values, STR))
        return memo(values, lambda v: fixed_text(v, field))

    def literal(self, text):
        return fixed_text(text.strip())


class TextOnly(ColumnType):
    """photo and blob ids: strings only (a number is not a file id)."""

    def store(self, values, field):
        if set(map(type, values)) <= STR:
            return values
        raise Maltyped(field, self.soql, first_bad(values, STR))


def _make_types() -> dict[str, ColumnType]:
    from pipeline.portal.behaviour import TEXT_LIKE_TYPES
    from pipeline.portal.wire_json import Document, Geometry, Location, Url

    types: dict[str, ColumnType] = {"text": ColumnType("text"), "html": ColumnType("html")}
    for name in TEXT_LIKE_TYPES:
        types[name] = ColumnType(name)
    for name in ("number", "percent", "stars"):
        types[name] = Number(name)
    types["money"] = Money("money")
    types["double"] = Double("double")
    types["checkbox"] = Checkbox("checkbox")
    types["calendar_date"] = FloatingTimestamp("calendar_date")
    types["date"] = FixedTimestamp("date")
    for name in geo.GEOJSON_TYPE:
        types[name] = Geometry(name)
    types["location"] = Location("location")
    types["url"] = Url("url")
    types["document"] = Document("document")
    for name in ("photo", "blob"):
        t = TextOnly(name)
        t.soql = name
        types[name] = t
    return types


TYPES = _make_types()

# SoQL and other spellings accepted where a dataTypeName is expected.
ALIASES = {
    "boolean": "checkbox",
    "floating_timestamp": "calendar_date",
    "fixed_timestamp": "date",
    "linestring": "line",
    "multilinestring": "multiline",
    "string": "text",
}


def column_type(name: str | None) -> ColumnType | None:
    """The type for a dataTypeName (or a SoQL alias); None when unknown."""
    name = (name or "text").strip().lower()
    return TYPES.get(ALIASES.get(name, name))


def type_names() -> list[str]:
    return sorted(TYPES)


def now_fixed() -> str:
    """The current moment as a fixed timestamp (system fields)."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"

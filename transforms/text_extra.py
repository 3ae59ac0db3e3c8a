"""Text rules beyond trim and case: regular expressions, splitting, joining, padding, tidying.

Every rule here works on whole columns through pyarrow.compute, whose regular expressions are RE2:
Python's syntax for classes, groups and `(?P<name>...)` works, backreferences and look-arounds do
not, which is what keeps matching linear in the length of the text. Columns that are not text are
read as their text form and come out as text. An empty result is null, as an empty cell is.
"""

# Longer than 400 lines because it holds seven rules of one family, each with its schema, its
# column declaration and a docstring with an example; split, the family would be harder to read.

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.basics.columnflow import uses
from pipeline.basics.errors import OptionError
from pipeline.basics.plugins import rule
from transforms import column_use
from transforms._frames import as_list, need_columns, text_of, text_series, with_columns

if TYPE_CHECKING:
    import pandas as pd

# pandas, Arrow and numpy are imported by the functions that touch a chunk, so that binding these
# rules (`route validate`) loads none of them.

NAMES = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
    ]
}
NAME = {"type": "string", "minLength": 1}
NAME_LIST = {"type": "array", "items": NAME, "minItems": 1, "uniqueItems": True}


def _null_if_empty(data):
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.if_else(pc.equal(data, ""), pa.scalar(None, pa.string()), data)


def _check_regex(pattern: str, path: tuple, replacement: str | None = None) -> None:
    """Compile the pattern (and rewrite) once with RE2 so that a bad one is an option error."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        if replacement is None:
            pc.match_substring_regex(pa.array(["x"]), pattern)
        else:
            pc.replace_substring_regex(pa.array(["x"]), pattern, replacement)
    except pa.ArrowInvalid as exc:
        message = str(exc).replace("Invalid regular expression: ", "")
        raise OptionError(
            f"invalid regular expression {pattern!r}: {message} (RE2 syntax: no backreferences or look-arounds)", path
        ) from None


def _flags(options) -> str:
    return "(?i)" if options.get("ignore_case") else ""


def _bind_replace(options, ctx):
    import pyarrow as pa
    import pyarrow.compute as pc

    pattern = _flags(options) + options["pattern"]
    replacement = options.get("replacement", "")
    if "\\g<" in replacement:
        raise OptionError("refer to groups as \\1, \\2 in `replacement` (not \\g<name>)", ("replacement",))
    _check_regex(options["pattern"], ("pattern",))
    try:
        pc.replace_substring_regex(pa.array(["x"]), pattern, replacement)
    except pa.ArrowInvalid as exc:
        raise OptionError(f"`replacement` does not fit the pattern: {exc}", ("replacement",)) from None
    return {**options, "pattern": pattern, "replacement": replacement, "columns": as_list(options["columns"])}


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["columns", "pattern"],
        "properties": {
            "columns": NAMES,
            "pattern": {"type": "string", "minLength": 1},
            "replacement": {"type": "string"},
            "ignore_case": {"type": "boolean"},
        },
    },
    bind=_bind_replace,
    columns=uses(reads=["columns"]),
)
def regex_replace(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Replace every match of a regular expression, e.g. to strip what is not a digit from phone
    numbers. `replacement` may refer to groups as \\1, \\2.

    Example:

        - regex_replace: {columns: [phone], pattern: '[^0-9]+', replacement: ''}
    """
    import pyarrow.compute as pc

    need_columns(chunk, options["columns"], "regex_replace")
    out = {}
    for name in options["columns"]:
        data = pc.replace_substring_regex(text_of(chunk[name]), options["pattern"], options["replacement"])
        out[name] = text_series(_null_if_empty(data), chunk[name])
    return with_columns(chunk, out)


def _capture_names(pattern: str) -> tuple[str, list[str | None]]:
    """The pattern with every capturing group named (RE2 extract needs names), and the names the
    author gave (None for unnamed groups), in order."""
    out, names, i, in_class = [], [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]" or pattern[i + 1 : i + 3] == "^]":
                close = i + (2 if pattern[i + 1] == "]" else 3)
                out.append(pattern[i:close])
                i = close
                continue
        elif ch == "(":
            if pattern.startswith("(?P<", i):
                end = pattern.index(">", i)
                names.append(pattern[i + 4 : end])
            elif pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in ("=", "!"):
                end = pattern.index(">", i)
                names.append(pattern[i + 3 : end])
                out.append(f"(?P<{pattern[i + 3 : end]}>")
                i = end + 1
                continue
            elif not pattern.startswith("(?", i):
                names.append(None)
                out.append(f"(?P<_g{len(names)}>")
                i += 1
                continue
        out.append(ch)
        i += 1
    return "".join(out), names


def _bind_extract(options, ctx):
    _check_regex(options["pattern"], ("pattern",))
    pattern, names = _capture_names(options["pattern"])
    if not names:
        raise OptionError("the pattern has no groups: put what to extract in (...)", ("pattern",))
    into = options.get("into")
    if into is not None:
        if len(into) != len(names):
            raise OptionError(f"`into` names {len(into)} columns but the pattern has {len(names)} groups", ("into",))
    elif None in names:
        raise OptionError("name every group as (?P<name>...) or list the new columns in `into`", ("pattern",))
    else:
        into = names
    fields = [f"_g{k + 1}" if n is None else n for k, n in enumerate(names)]
    return {
        **options,
        "pattern": _flags(options) + pattern,
        "written": options["pattern"],
        "fields": fields,
        "into": list(into),
        "unmatched": options.get("unmatched") or "null",
    }


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["column", "pattern"],
        "properties": {
            "column": NAME,
            "pattern": {"type": "string", "minLength": 1},
            "into": NAME_LIST,
            "ignore_case": {"type": "boolean"},
            "unmatched": {"enum": ["null", "reject", None]},
        },
    },  # YAML reads null as None
    bind=_bind_extract,
    columns=column_use.regex_extract,
)
def regex_extract(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Pull parts of a value into new columns, one per group of a regular expression (named groups
    name the columns, or list them in `into`). Where the pattern does not match, the new columns are
    null, or with `unmatched: reject` the row is rejected.

    Example:

        - regex_extract:
            column: permit
            pattern: '^(?P<permit_year>\\d{4})-(?P<permit_seq>\\d+)$'
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    column = options["column"]
    need_columns(chunk, [column], "regex_extract")
    source = text_of(chunk[column])
    found = pc.extract_regex(source, options["pattern"])
    if options["unmatched"] == "reject":
        bad = pc.is_null(found).to_numpy(zero_copy_only=False) & chunk[column].notna().to_numpy()
        if bad.any():
            ctx.reject(chunk[bad], f"does not match {options['written']!r}", column=column)
            keep = ~bad
            chunk, found = chunk[keep], found.filter(pa.array(keep))
    out = {}
    for field, name in zip(options["fields"], options["into"]):
        out[name] = text_series(_null_if_empty(pc.struct_field(found, field)), chunk[column], name=name)
    return with_columns(chunk, out)


def _split_parts(lists, count: int) -> list:
    """The first `count` elements of each list as separate arrays (null where a list is shorter)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks() if lists.num_chunks else pa.array([], type=pa.list_(pa.string()))
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    starts = lists.offsets.to_numpy()[:-1]
    parts = []
    for k in range(count):
        present = lengths > k
        index = pa.array(np.where(present, starts + k, 0), mask=~present)
        parts.append(pc.take(lists.values, index))
    return parts


def _bind_split(options, ctx):
    if "pattern" in options:
        _check_regex(options["pattern"], ("pattern",))
    if "pattern" in options and "separator" in options:
        raise OptionError("give either `separator` (plain text) or `pattern` (a regular expression)", ("pattern",))
    return options


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["column", "into"],
        "properties": {
            "column": NAME,
            "into": NAME_LIST,
            "separator": {"type": "string", "minLength": 1},
            "pattern": {"type": "string", "minLength": 1},
            "trim": {"type": "boolean"},
        },
    },
    bind=_bind_split,
    columns=uses(reads=["column"], adds=["into"]),
)
def split(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Split a value into several columns at a separator (default ",") or a regular expression
    `pattern`. The last column receives the rest of the value, missing parts are null, and
    `trim: true` removes spaces around each part.

    Example:

        - split: {column: owner_name, separator: ", ", into: [last_name, first_name]}
    """
    import pyarrow.compute as pc

    column, into = options["column"], options["into"]
    need_columns(chunk, [column], "split")
    source = text_of(chunk[column])
    if "pattern" in options:
        lists = pc.split_pattern_regex(source, options["pattern"], max_splits=len(into) - 1)
    else:
        lists = pc.split_pattern(source, options.get("separator", ","), max_splits=len(into) - 1)
    out = {}
    for name, part in zip(into, _split_parts(lists, len(into))):
        if options.get("trim"):
            part = pc.utf8_trim_whitespace(part)
        out[name] = text_series(_null_if_empty(part), chunk[column], name=name)
    return with_columns(chunk, out)


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["columns", "into"],
        "properties": {
            "columns": {"type": "array", "items": NAME, "minItems": 1},
            "into": NAME,
            "separator": {"type": "string"},
            "skip_nulls": {"type": "boolean"},
        },
    },
    columns=uses(reads=["columns"], adds=["into"]),
)
def concat(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Join several columns into one with a separator. Nulls are skipped (with their separator)
    unless `skip_nulls: false`, which makes the result null when any part is null.

    Example:

        - concat: {columns: [street, city, zip], separator: ", ", into: full_address}
    """
    import pyarrow.compute as pc

    columns = options["columns"]
    need_columns(chunk, columns, "concat")
    separator = options.get("separator", "")
    parts = [text_of(chunk[c]) for c in columns]
    if options.get("skip_nulls", True):
        # Folded pair by pair: pyarrow's own "skip" mode drops rows whose parts are all null.
        joined = parts[0]
        for part in parts[1:]:
            both = pc.binary_join_element_wise(joined, part, separator, null_handling="emit_null")
            joined = pc.coalesce(both, joined, part)
    else:
        joined = pc.binary_join_element_wise(*parts, separator, null_handling="emit_null")
    like = chunk[columns[0]]
    return with_columns(chunk, {options["into"]: text_series(_null_if_empty(joined), like, name=options["into"])})


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["columns", "width"],
        "properties": {
            "columns": NAMES,
            "width": {"type": "integer", "minimum": 1},
            "fill": {"type": "string", "minLength": 1, "maxLength": 1},
            "side": {"enum": ["left", "right", "both"]},
        },
    },
    columns=uses(reads=["columns"]),
)
def pad(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Pad values to `width` characters with `fill` (default "0", on the left): restores the leading
    zeros of codes that a spreadsheet turned into numbers. Longer values are left as they are.

    Example:

        - pad: {columns: [zip], width: 5}
    """
    import pyarrow.compute as pc

    columns = as_list(options["columns"])
    need_columns(chunk, columns, "pad")
    func = {"left": pc.utf8_lpad, "right": pc.utf8_rpad, "both": pc.utf8_center}[options.get("side", "left")]
    out = {}
    for name in columns:
        out[name] = text_series(func(text_of(chunk[name]), options["width"], options.get("fill", "0")), chunk[name])
    return with_columns(chunk, out)


_SPACES = r"[\s\p{Z}\x{FEFF}]+"


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["columns"],
        "properties": {"columns": NAMES, "form": {"enum": ["NFC", "NFKC", "NFD", "NFKD"]}},
    },
    shorthand="columns",
    columns=uses(reads=["columns"]),
)
def normalize_space(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Collapse every run of white space (tabs, line breaks, non-breaking and other Unicode spaces)
    into one space and trim the ends, so that values typed differently compare equal. `form` also
    applies a Unicode normal form (NFC joins "e" + accent into "é"). Only spaces becomes null.

    Example:

        - normalize_space: [owner_name, address]
    """
    import pyarrow.compute as pc

    columns = as_list(options["columns"])
    need_columns(chunk, columns, "normalize_space")
    out = {}
    for name in columns:
        data = text_of(chunk[name])
        if options.get("form"):
            data = pc.utf8_normalize(data, options["form"])
        data = pc.utf8_trim_whitespace(pc.replace_substring_regex(data, _SPACES, " "))
        out[name] = text_series(_null_if_empty(data), chunk[name])
    return with_columns(chunk, out)


def _bind_truncate(options, ctx):
    if len(options.get("ellipsis", "")) >= options["length"]:
        raise OptionError(f"`ellipsis` must be shorter than `length` ({options['length']})", ("ellipsis",))
    return options


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["columns", "length"],
        "properties": {"columns": NAMES, "length": {"type": "integer", "minimum": 1}, "ellipsis": {"type": "string"}},
    },
    bind=_bind_truncate,
    columns=uses(reads=["columns"]),
)
def truncate(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Cut values longer than `length` characters, ending them with `ellipsis` (default none), so
    that long free text fits a portal's or a database column's limit.

    Example:

        - truncate: {columns: [remarks], length: 255, ellipsis: "…"}
    """
    import pyarrow.compute as pc

    columns = as_list(options["columns"])
    need_columns(chunk, columns, "truncate")
    length, ellipsis = options["length"], options.get("ellipsis", "")
    out = {}
    for name in columns:
        data = text_of(chunk[name])
        longer = pc.greater(pc.utf8_length(data), length)
        cut = pc.utf8_slice_codeunits(data, 0, length - len(ellipsis))
        if ellipsis:
            cut = pc.binary_join_element_wise(cut, ellipsis, "")
        out[name] = text_series(pc.if_else(longer, cut, data), chunk[name])
    return with_columns(chunk, out)

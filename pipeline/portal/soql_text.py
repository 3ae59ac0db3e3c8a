"""Subfields of compound values (`location.latitude`, `url.description`) and `$q` full-text search.

Subfields are soql-reference's field functions (SoQLFunctions.scala: LocationToLatitude,
UrlToDescription, PointToLatitude...): numbers for coordinates, text for the rest.

`$q` is Socrata's full-text search (https://dev.socrata.com/docs/queries/q.html): the text is split
into words, and a row matches when every word is a word of one of its text columns, case-insensitive,
in any order and any column ("street main" finds "Main Street Park"). SQLite first keeps the rows
where every word appears somewhere (instr, in C), then a Python function checks whole words on
those rows only.
"""

from __future__ import annotations

import re

import orjson

from pipeline.portal.errors import bad_request
from pipeline.portal.soql_expr import Expr, merged

_FIELDS = {
    "location": {
        "latitude": ("CAST(json_extract({0}, '$.latitude') AS REAL)", "number"),
        "longitude": ("CAST(json_extract({0}, '$.longitude') AS REAL)", "number"),
        "human_address": ("json_extract({0}, '$.human_address')", "text"),
    },
    "point": {
        "latitude": ("json_extract({0}, '$.coordinates[1]')", "number"),
        "longitude": ("json_extract({0}, '$.coordinates[0]')", "number"),
    },
    "url": {
        "url": ("json_extract({0}, '$.url')", "text"),
        "description": ("json_extract({0}, '$.description')", "text"),
    },
    "document": {
        "filename": ("json_extract({0}, '$.filename')", "text"),
        "file_id": ("json_extract({0}, '$.file_id')", "text"),
        "content_type": ("json_extract({0}, '$.content_type')", "text"),
    },
}
_WORD = re.compile(r"\w+")


def subfield(e: Expr, name: str) -> Expr:
    fields = _FIELDS.get(e.type, {})
    if name not in fields:
        shown = e.col.field if e.col is not None else e.type
        raise bad_request(
            "query.soql.no-such-column",
            f"No such column: {shown}.{name} (a {e.type} has "
            + (", ".join(sorted(fields)) if fields else "no subfields")
            + ")",
            column=f"{shown}.{name}",
        )
    template, kind = fields[name]
    return merged(template.format(e.sql), kind, e)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def search(c, texts: list[Expr], q: str) -> str | None:
    """The SQL condition for `$q=q` over the text columns `texts` (None: every row matches)."""
    tokens = list(dict.fromkeys(words(q)))
    if not tokens:
        return None
    if not texts:
        return "0"
    prefilter = []
    for token in tokens:
        if not token.isascii():
            continue  # SQLite's lower() folds ASCII only: the Python check alone decides
        p = c.param(token)
        prefilter.append("(" + " OR ".join(f"instr(lower({t.sql}), {p}) > 0" for t in texts) + ")")
    p = c.param(orjson.dumps(tokens).decode())
    columns = ", ".join(t.sql for t in texts)
    return "(" + " AND ".join(prefilter + [f"soql_q({p}, {columns})"]) + ")"


def _q(tokens_json, *values) -> int:
    found = set()
    for v in values:
        if v:
            found.update(words(v))
    return int(all(t in found for t in orjson.loads(tokens_json)))


def register(conn) -> None:
    conn.create_function("soql_q", -1, _q, deterministic=True)

"""Request bodies -> a Batch: the rows of one upsert or replace by column, before any check.

A JSON body is parsed with orjson, a CSV body with the csv module; rows that all carry the same
fields (nearly every request) are also kept row by row, which is the layout a bulk insert binds.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

import orjson

from pipeline.portal import behaviour
from pipeline.portal.errors import bad_request

KEY = "\x00key"  # where a [key] delete row puts its key (no real field can be named so)


@dataclass
class Batch:
    """Rows of one request, by column: values as sent (JSON values, or CSV text when `text`).

    When every row carries the same fields, `flat` holds the values row by row (fields in `order`)
    and `columns` are slices of it: a write then binds `flat` as it is, instead of laying the
    columns out row by row again."""

    n: int
    columns: dict[str, list]
    keysets: list | None = None  # per-row field sets when rows do not all carry the same fields
    text: bool = False
    flat: list | None = None
    order: tuple = ()


def batch_from_json(body: bytes) -> Batch:
    try:
        payload = orjson.loads(body) if body.strip() else []
    except orjson.JSONDecodeError as exc:
        raise bad_request("req.body.malformed-json", f"The request body is not valid JSON: {exc}") from None
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list):
        raise bad_request("soda.row.upsert-row-not-an-object", "The request body must be a JSON array of row objects")
    if set(map(type, payload)) - {dict}:
        payload = [_row_object(i, r) for i, r in enumerate(payload)]
    if not payload:
        return Batch(0, {})
    order = tuple(payload[0])
    flat = _same_fields(payload, order)
    if flat is not None:  # every row carries the same fields: the fast path
        width = len(order)
        if not width:  # rows with no fields at all: nothing to lay out
            return Batch(len(payload), {})
        return Batch(len(payload), {k: flat[i::width] for i, k in enumerate(order)}, flat=flat, order=order)
    keys = set().union(*payload)
    keysets = [frozenset(r) for r in payload]
    return Batch(len(payload), {k: [r.get(k) for r in payload] for k in keys}, keysets)


def _same_fields(payload: list[dict], order: tuple) -> list | None:
    """Every row's values, row after row in `order` (the first row's fields), when every row
    carries exactly those fields (nearly every request); else None.

    One pass over the rows (itemgetter puts every row's values in one order, whatever order its
    keys came in); each column is then a slice, cheaper than a pass over the rows per field. Rows
    of the first row's size whose values itemgetter finds hold exactly its fields, so no set of every
    row's keys is built (a sixth of the parse)."""
    width = len(order)
    if set(map(len, payload)) != {width}:
        return None
    if not width:
        return []
    try:
        if width == 1:
            return list(map(itemgetter(order[0]), payload))
        return list(chain.from_iterable(map(itemgetter(*order), payload)))
    except KeyError:  # a row of the same size with another field
        return None


def _row_object(index: int, row):
    if isinstance(row, dict):
        return row
    if behaviour.ARRAY_ROW_IS_DELETE and isinstance(row, list) and len(row) == 1:
        return {KEY: row[0], ":deleted": True}
    raise bad_request(
        "soda.row.upsert-row-not-an-object", f"Row {index} of the request body is not a JSON object", index=index
    )


def batch_from_csv(body: bytes) -> Batch:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise bad_request("req.body.malformed-csv", f"The CSV body is not UTF-8: {exc}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        return Batch(0, {})
    header = [h.strip() for h in header]
    rows = [r for r in reader if r]
    width = len(header)
    for i, r in enumerate(rows):
        if len(r) != width:
            raise bad_request(
                "req.body.malformed-csv", f"CSV line {i + 2} has {len(r)} cells; the header has {width}", line=i + 2
            )
    columns = list(zip(*rows)) if rows else [()] * width
    return Batch(len(rows), {h: list(c) for h, c in zip(header, columns)}, None, text=True)

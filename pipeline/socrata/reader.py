"""Read rows over SODA page by page, as typed Arrow columns (the socrata source, dry runs, counts).

Pages are ordered by `:id` (Socrata does not order results unless asked, so unordered offset paging
can skip or repeat rows). JSON pages are decoded with orjson and turned into Arrow column by column
from the dataset's column types: numbers arrive as strings, timestamps as ISO text, geometries as
GeoJSON objects; nulls are absent keys.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.socrata import geo
from pipeline.socrata.errors import SocrataError
from pipeline.socrata.http import SocrataSession
from pipeline.socrata.views import GEOMETRY, socrata_type

NUMBERS = ("number", "money", "double")


def arrow_type(stype: str, timezone: str | None = None) -> pa.DataType:
    """The canonical Arrow type a Socrata column is read as."""
    stype = socrata_type(stype)
    if stype in NUMBERS:
        return pa.float64()
    if stype == "checkbox":
        return pa.bool_()
    if stype == "calendar_date":
        return pa.timestamp("us")
    if stype == "date":
        return pa.timestamp("us", tz=timezone or "UTC")
    return pa.string()


def column(values: list, stype: str, timezone: str | None = None) -> pa.Array:
    """One column of a page (a list of JSON values) as canonical Arrow data."""
    stype = socrata_type(stype)
    target = arrow_type(stype, timezone)
    if stype in NUMBERS:
        raw = pa.array([None if v is None else str(v) for v in values], pa.string())
        return pc.cast(raw, pa.float64())
    if stype == "checkbox":
        return pa.array(
            [v if isinstance(v, bool) or v is None else str(v).lower() == "true" for v in values], pa.bool_()
        )
    if stype in ("calendar_date", "date"):
        raw = pa.array(values, pa.string())
        text = pc.replace_substring_regex(raw, r"Z$", "")
        stamps = pc.cast(pc.utf8_slice_codeunits(text, 0, 23), pa.timestamp("ms")).cast(pa.timestamp("us"))
        if stype == "date":
            stamps = pc.assume_timezone(stamps, "UTC").cast(target)
        return stamps
    if stype in GEOMETRY or stype in ("location", "url"):
        return pa.array([geo.to_text(v) for v in values], pa.string())
    return pa.array([v if v is None or isinstance(v, str) else _as_text(v) for v in values], pa.string())


def _as_text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if isinstance(v, float) else str(v)
    return orjson.dumps(v).decode()


def pages(
    http: SocrataSession,
    dataset_id: str,
    *,
    fields: list[str],
    types: dict[str, str],
    page_rows: int,
    select: str | None = None,
    where: str | None = None,
    order: str = ":id",
    timezone: str | None = None,
    limit: int | None = None,
) -> Iterator[pa.Table]:
    """Arrow tables of at most `page_rows` rows, in `order`, until the dataset (or `limit`) ends."""
    offset = 0
    while True:
        size = page_rows if limit is None else min(page_rows, limit - offset)
        if size <= 0:
            return
        params = {"$order": order, "$limit": str(size), "$offset": str(offset)}
        if select:
            params["$select"] = select
        if where:
            params["$where"] = where
        response = http.request(
            "GET",
            f"/resource/{dataset_id}.json",
            params=params,
            dataset=dataset_id,
            what=f"reading rows {offset + 1}-{offset + size} of dataset {dataset_id}",
        )
        try:
            rows = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise SocrataError(f"reading dataset {dataset_id}: the portal's answer is not JSON") from None
        if not isinstance(rows, list):
            raise SocrataError(f"reading dataset {dataset_id}: expected a list of rows from the portal")
        arrays = [column([r.get(f) for r in rows], types.get(f, "text"), timezone) for f in fields]
        yield pa.Table.from_arrays(arrays, names=list(fields))
        offset += len(rows)
        if len(rows) < size:
            return


def count(http: SocrataSession, dataset_id: str) -> int:
    """How many rows a dataset has."""
    body = http.get_json(
        f"/resource/{dataset_id}.json",
        params={"$select": "count(*)"},
        what=f"counting the rows of dataset {dataset_id}",
        dataset=dataset_id,
    )
    try:
        first = body[0]
        return int(float(next(iter(first.values()))))
    except (IndexError, TypeError, StopIteration, ValueError, AttributeError):
        raise SocrataError(f"counting the rows of dataset {dataset_id}: unexpected answer {str(body)[:100]}") from None


def values(http: SocrataSession, dataset_id: str, field: str, stype: str, page_rows: int = 50_000) -> pa.Array:
    """Every value of one column (the row identifiers, for dry runs)."""
    tables = list(pages(http, dataset_id, fields=[field], types={field: stype}, page_rows=page_rows, select=field))
    if not tables:
        return pa.array([], arrow_type(stype))
    return pa.concat_tables(tables).column(field).combine_chunks()

"""Dataset metadata (`/api/views`): read a dataset's columns and row identifier, create one.

Rows are keyed by API field names; people know columns by their display names. A Dataset keeps
both, so requests use field names and messages can say `"Case ID" (case_id)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.socrata.errors import OutcomeUnknown
from pipeline.socrata.http import SocrataSession

FOURFOUR = re.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}$")

# SoQL type names (X-SODA2-Types, DSMAPI) and legacy aliases -> the /api/views dataTypeName we use.
TYPE_ALIASES = {
    "html": "text",
    "percent": "number",
    "stars": "number",
    "boolean": "checkbox",
    "floating_timestamp": "calendar_date",
    "fixed_timestamp": "date",
    "linestring": "line",
    "multilinestring": "multiline",
}
GEOMETRY = ("point", "multipoint", "line", "multiline", "polygon", "multipolygon")
SUPPORTED = (
    "text",
    "number",
    "money",
    "double",
    "checkbox",
    "calendar_date",
    "date",
    "location",
    "url",
    "photo",
    "blob",
) + GEOMETRY

# Readable names for messages.
TYPE_WORDS = {
    "text": "text",
    "number": "number",
    "money": "money",
    "double": "double",
    "checkbox": "checkbox",
    "calendar_date": "floating timestamp",
    "date": "fixed timestamp",
    "location": "location",
    "url": "url",
    "photo": "photo",
    "blob": "blob",
    "point": "point",
    "multipoint": "multipoint",
    "line": "line",
    "multiline": "multiline",
    "polygon": "polygon",
    "multipolygon": "multipolygon",
}


def socrata_type(name: str) -> str:
    name = (name or "text").lower()
    return TYPE_ALIASES.get(name, name)


@dataclass(frozen=True)
class Column:
    field: str  # API field name, used on the wire
    name: str  # display name, used in messages
    type: str  # normalised dataTypeName
    id: int | None = None

    @property
    def label(self) -> str:
        return f'"{self.name}" ({self.field})' if self.name and self.name != self.field else f'"{self.field}"'


@dataclass
class Dataset:
    id: str
    name: str
    columns: list[Column]
    row_identifier: str | None = None  # field name, or None (rows keyed by :id)
    view_type: str = "tabular"
    display_type: str = "table"
    derived: bool = False
    meta: dict = field(default_factory=dict, repr=False)

    def by_field(self) -> dict[str, Column]:
        return {c.field: c for c in self.columns}

    def by_name(self) -> dict[str, Column]:
        return {c.name: c for c in self.columns}

    @property
    def label(self) -> str:
        return f'"{self.name}" ({self.id})'


def parse_view(meta: dict) -> Dataset:
    """A Dataset from the `/api/views/{4x4}` JSON."""
    columns = []
    for c in meta.get("columns") or []:
        fieldname = c.get("fieldName") or ""
        if not fieldname or fieldname.startswith(":"):
            continue  # system columns are not part of the writable schema
        columns.append(Column(fieldname, c.get("name") or fieldname, socrata_type(c.get("dataTypeName")), c.get("id")))
    ri = None
    ri_id = meta.get("rowIdentifierColumnId")
    if ri_id is None:
        ri_id = (meta.get("metadata") or {}).get("rowIdentifier")
    if ri_id is not None:
        for c in columns:
            if c.id == ri_id or c.field == ri_id or (isinstance(ri_id, str) and ri_id.isdigit() and c.id == int(ri_id)):
                ri = c.field
    display = meta.get("displayType") or "table"
    derived = bool(meta.get("modifyingViewUid")) or display not in ("table", "")
    return Dataset(
        meta.get("id", ""),
        meta.get("name") or meta.get("id", ""),
        columns,
        ri,
        meta.get("viewType") or "tabular",
        display,
        derived,
        meta,
    )


def read_dataset(http: SocrataSession, dataset_id: str) -> Dataset:
    meta = http.get_json(f"/api/views/{dataset_id}.json", what=f"reading dataset {dataset_id}", dataset=dataset_id)
    if not isinstance(meta, dict) or "columns" not in meta:
        from pipeline.socrata.errors import SocrataError

        raise SocrataError(
            f"reading dataset {dataset_id}: the portal's answer has no columns; is {http.label} a Socrata portal?"
        )
    return parse_view(meta)


def field_name(name: str) -> str:
    """A Socrata field name for a column name: lower case, [a-z0-9_], starting with a letter."""
    text = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
    if not text or not text[0].isalpha():
        text = "c_" + text
    return text[:63]


def create_dataset(
    http: SocrataSession,
    *,
    name: str,
    columns: list[Column],
    row_identifier: str | None,
    description: str = "",
    category: str = "",
    tags=(),
    publish: bool = True,
    on_created=None,
    extra: dict | None = None,
    column_extra: dict[str, dict] | None = None,
) -> Dataset:
    """Create a dataset (`POST /api/views.json`) with these columns, then publish it.

    `on_created(dataset_id)` runs as soon as the dataset exists, before publishing, so a run that
    fails to publish still remembers it (and the next run publishes it instead of making another).
    `extra`: more top-level keys of the view (licenseId, attribution, metadata...); `column_extra`:
    per field name, more keys of its column (name, description)."""
    column_extra = column_extra or {}
    body: dict = {
        "name": name,
        "columns": [
            {"fieldName": c.field, "name": c.name, "dataTypeName": c.type, **column_extra.get(c.field, {})}
            for c in columns
        ],
    }
    for key, value in (extra or {}).items():
        body[key] = {**body.get(key, {}), **value} if isinstance(value, dict) else value
    if description:
        body["description"] = description
    if category:
        body["category"] = category
    if tags:
        body["tags"] = list(tags)
    if row_identifier:
        body["metadata"] = {**body.get("metadata", {}), "rowIdentifier": row_identifier}
    what = f'creating dataset "{name}"'
    try:
        meta = http.send_json("POST", "/api/views.json", body, what=what, params={"nbe": "true"}, repeatable=False)
    except OutcomeUnknown as exc:  # not resent: a second dataset could be made; say what to check
        raise OutcomeUnknown(
            f'{exc}. If a dataset named "{name}" now exists (unpublished) on {http.label}, '
            f"give its id as `dataset:` or delete it, then run the route again",
            status=exc.status,
            request_id=exc.request_id,
            outcome=exc.outcome,
        ) from None
    dataset_id = meta["id"]
    if on_created is not None:
        on_created(dataset_id)
    if publish and meta.get("publicationStage", "published") != "published":
        dataset_id = publish_dataset(http, dataset_id)
    return read_dataset(http, dataset_id)


def publish_dataset(http: SocrataSession, dataset_id: str) -> str:
    """Publish a dataset (`POST /api/views/{4x4}/publication.json`); returns the published id."""
    published = http.send_json(
        "POST",
        f"/api/views/{dataset_id}/publication.json",
        None,
        what=f"publishing dataset {dataset_id}",
        dataset=dataset_id,
    )
    if isinstance(published, dict) and published.get("id"):
        return published["id"]
    return dataset_id

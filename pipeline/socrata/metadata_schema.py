"""The `metadata:` block of a socrata target (and the same keys in `create:`): its JSON Schema,
with a description for every key, and the checks a schema cannot do. See pipeline/socrata/metadata.py
for what a run does with it.
"""

from __future__ import annotations

import re

from pipeline.basics.errors import OptionError

_TEXT = {"type": "string"}
COLUMN_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": "one column, by its field name (the API name)",
    "properties": {
        "display_name": {
            "type": "string",
            "minLength": 1,
            "description": "the name people see (the column's `name` in the views JSON)",
        },
        "description": {**_TEXT, "description": "the column's description"},
        "position": {
            "type": "integer",
            "minimum": 1,
            "description": "its place among the dataset's columns, from 1; the others keep their order",
        },
    },
}
PROPERTIES = {
    "name": {"type": "string", "minLength": 1, "description": "the dataset's name"},
    "description": {**_TEXT, "description": "the dataset's description"},
    "category": {**_TEXT, "description": "one of the portal's categories"},
    "tags": {"type": "array", "items": {"type": "string"}, "description": "tags (keywords); the whole list"},
    "license": {
        **_TEXT,
        "description": 'Socrata\'s license id (`licenseId`): CC0_10, CC_30_BY, ODC_BY, PDDL, PUBLIC_DOMAIN...; "" for none',
    },
    "attribution": {**_TEXT, "description": "who made the data (the data provided by)"},
    "attribution_link": {**_TEXT, "description": "a link for the attribution, https://..."},
    "contact_email": {**_TEXT, "description": "the contact email (`privateMetadata.contactEmail`)"},
    "row_label": {**_TEXT, "description": "what one row is, e.g. Case (`metadata.rowLabel`)"},
    "custom_fields": {
        "type": "object",
        "description": "the portal's custom metadata: {group: {field: value}}; fields not named keep their values",
        "additionalProperties": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "public": {"type": "boolean", "description": "true: anyone may read it; false: private"},
    "columns": {
        "type": "object",
        "description": "per column, by field name: display_name, description, position",
        "additionalProperties": COLUMN_SCHEMA,
    },
}
METADATA_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": "the dataset's metadata, compared on every run; only what differs is sent",
    "properties": PROPERTIES,
}

_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_metadata(block: dict | None, path: tuple = ("metadata",)) -> None:
    """What the schema cannot say; OptionError with the key's path (so file:line:col)."""
    if not block:
        return
    link = block.get("attribution_link")
    if link and not re.match(r"^https?://\S+$", link):
        raise OptionError(
            f"'{link}' is not a link: give an http:// or https:// address", path=(*path, "attribution_link")
        )
    email = block.get("contact_email")
    if email and not _EMAIL.match(email):
        raise OptionError(f"'{email}' is not an email address", path=(*path, "contact_email"))
    seen: dict[int, str] = {}
    for name, spec in (block.get("columns") or {}).items():
        if not _FIELD.match(name):
            raise OptionError(
                f"'{name}' is not a field name: columns are named here by their API name (lower case "
                "letters, digits and _), not their display name",
                path=(*path, "columns", name),
            )
        pos = (spec or {}).get("position")
        if pos is not None:
            if pos in seen:
                raise OptionError(
                    f"position {pos} is given to both {seen[pos]} and {name}", path=(*path, "columns", name, "position")
                )
            seen[pos] = name

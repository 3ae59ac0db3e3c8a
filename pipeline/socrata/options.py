"""The options of the socrata delivery and source: JSON Schemas plus the checks a schema cannot do.

`check_*` run when the route is planned (through the marker's `bind`) and again when the component
is built, so a component made directly (tests, embedding) gets the same checks. They raise
OptionError with the option's path, which the planner turns into `file:line:col` problems.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.basics.errors import OptionError
from pipeline.basics.guards import shrink_fraction
from pipeline.socrata.http import normalise_domain
from pipeline.socrata.local import is_local
from pipeline.socrata.metadata_schema import METADATA_SCHEMA, PROPERTIES, check_metadata
from pipeline.socrata.views import FOURFOUR, SUPPORTED

AUTH = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "username": {"type": "string"},
        "password": {"type": "string"},
        "api_key_id": {"type": "string"},
        "api_key_secret": {"type": "string"},
        "app_token": {"type": "string"},
    },
}
COMMON = {
    "domain": {
        "type": "string",
        "description": "https://data.example.gov; omitted or `local` = the embedded local portal",
    },
    "dataset": {"type": "string", "description": "the dataset id (4x4), e.g. abcd-1234"},
    "auth": AUTH,
    "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 120},
    "retries": {"type": "integer", "minimum": 0, "maximum": 50, "default": 5},
    "backoff": {
        "type": "number",
        "minimum": 0,
        "default": 1.0,
        "description": "first wait between retries, in seconds; doubles each time",
    },
    "timezone": {"type": "string", "description": "IANA zone of date-times that carry none (default UTC)"},
}

DEFAULT_CONCURRENCY = 4  # requests in flight to a portal that asks for no other number (Socrata)

DELIVERY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["mode"],
    "properties": {
        **COMMON,
        "mode": {
            "enum": ["replace", "append", "upsert", "delete", "sync"],
            "description": "upsert, append, delete, replace, or sync (the dataset ends up holding exactly "
            "the route's rows; only new and changed rows are sent and rows that left are deleted; needs "
            "row_identifier)",
        },
        "row_identifier": {"type": "string"},
        "batch_rows": {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 10_000},
        "concurrency": {"type": "integer", "minimum": 1, "maximum": 32, "default": DEFAULT_CONCURRENCY},
        "columns": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "route column -> dataset field name, where they differ",
        },
        "max_shrink": {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*%\s*$"},
            ],
            "default": "50%",
            "description": "replace: stop when the dataset would lose more than this share of its rows; "
            'sync: when it would delete more than this share (0.5 or "50%", the default); --force goes ahead anyway',
        },
        "allow_empty": {
            "type": "boolean",
            "description": "replace and sync: an empty or much smaller dataset is intended; do not stop (default false)",
        },
        "metadata": METADATA_SCHEMA,
        "create": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "description": "create the dataset when there is none: its name, the keys of `metadata:`, and `types`",
            "properties": {
                **PROPERTIES,
                "types": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "route column -> Socrata type, for types a cast cannot say (point, money, url)",
                },
            },
        },
    },
}

SOURCE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["dataset"],
    "properties": {
        **COMMON,
        "select": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "where": {"type": "string"},
        "order": {"type": "string", "default": ":id"},
        "page_rows": {"type": "integer", "minimum": 1, "maximum": 50_000},
    },
}


def _common(options: dict) -> dict:
    out = dict(options)
    domain = out.get("domain")
    if not is_local(domain):
        try:
            out["domain"] = normalise_domain(domain)
        except ValueError as exc:
            raise OptionError(str(exc), path=("domain",)) from None
    else:
        out["domain"] = "local"
    dataset = out.get("dataset")
    if dataset is not None and not FOURFOUR.match(dataset):
        raise OptionError(
            f"'{dataset}' is not a dataset id: it has the form abcd-1234 (two groups of "
            f"four lower-case letters or digits), as in the dataset's URL",
            path=("dataset",),
        )
    auth = out.get("auth") or {}
    if auth.get("username") and not auth.get("password"):
        raise OptionError("auth.username needs auth.password", path=("auth",))
    if auth.get("api_key_id") and not auth.get("api_key_secret"):
        raise OptionError("auth.api_key_id needs auth.api_key_secret", path=("auth",))
    if auth.get("username") and auth.get("api_key_id"):
        raise OptionError("give either username/password or api_key_id/api_key_secret, not both", path=("auth",))
    zone = out.get("timezone")
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise OptionError(
                f"unknown time zone '{zone}': use an IANA name such as America/New_York", path=("timezone",)
            ) from None
    return out


def check_delivery(options: dict) -> dict:
    """Options with defaults applied; raises OptionError for what the schema cannot check."""
    out = _common(options)
    out.setdefault("mode", "upsert")
    out.setdefault("batch_rows", 10_000)
    # concurrency stays unset unless given: the delivery then takes the portal's preferred one
    # (the local portal asks for 1), else DEFAULT_CONCURRENCY
    out.setdefault("timeout", 120)
    out.setdefault("retries", 5)
    out.setdefault("backoff", 1.0)
    out["max_shrink"] = shrink_fraction(out.get("max_shrink", "50%"))
    create = out.get("create")
    if out.get("dataset") is None and not create:
        raise OptionError(
            "give `dataset` (the 4x4 id of the dataset), or `create: {name: ...}` to have route create it",
            path=("dataset",),
        )
    if out["mode"] == "sync" and not out.get("row_identifier"):
        raise OptionError(
            "mode sync needs `row_identifier`: the column whose value says which row of the dataset a "
            "route row is (the dataset's row identifier), to find the rows that changed or left",
            path=("mode",),
        )
    if create and out["mode"] == "delete" and out.get("dataset") is None:
        pass  # delete finds a dataset created by another route under the same name (see state.py)
    for column, stype in ((create or {}).get("types") or {}).items():
        if stype not in SUPPORTED:
            raise OptionError(
                f"'{stype}' is not a Socrata type route can write; use one of {', '.join(SUPPORTED)}",
                path=("create", "types", column),
            )
    check_metadata(out.get("metadata"), ("metadata",))
    check_metadata(create, ("create",))
    for column, field in (out.get("columns") or {}).items():
        if not re.match(r"^(:id|[a-z_][a-z0-9_]*)$", field):
            raise OptionError(
                f"'{field}' is not a Socrata field name (lower case letters, digits and "
                f"_; the API name, not the display name)",
                path=("columns", column),
            )
    return out


def check_source(options: dict) -> dict:
    out = _common(options)
    out.setdefault("timeout", 120)
    out.setdefault("retries", 5)
    out.setdefault("backoff", 1.0)
    out.setdefault("order", ":id")
    if isinstance(out.get("select"), list):
        out["select"] = ", ".join(out["select"])
    return out


def bind_delivery(options: dict, ctx) -> dict:
    return check_delivery(options)


def bind_source(options: dict, ctx) -> dict:
    return check_source(options)

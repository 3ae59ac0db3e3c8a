"""Every behaviour the Socrata reference marks as unconfirmed ([U]), chosen here and only here.

The reference (shared/socrata-api.md) confirms most of the API from docs and client/server source;
where it could not, the local portal still has to answer something. Each choice below is the most
plausible reading, kept in one place so that when the real answer is learnt it is a one-line change.
docs/portal.md lists the same choices for users.
"""

from __future__ import annotations

import re

from pipeline.portal.errors import PortalError

# ---- reads (§2.1) --------------------------------------------------------------------------------

DEFAULT_LIMIT = 1000  # [C] documented default; kept here beside the choices that use it
MAX_LIMIT: int | None = None  # [U] 2.0's 50,000 cap is not enforced; 2.1 is unlimited
# [U] a $limit beyond SQLite's 64-bit range (9223372036854775807) reads every row, as "unlimited"
# on 2.1 suggests; such an $offset reads past the end (no rows). False: both are a 400.
HUGE_COUNTS = True
# [U] number arithmetic in $select beyond a double (n * n * ... on big numbers) reads as these
# strings, the way double columns write non-finite values, rather than failing the read.
NON_FINITE = {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}
# [U] "results are not implicitly ordered": we order by :id (insertion order) so that paging
# without $order (DataSync port jobs, sodapy get_all) is stable. An explicit $order gets :id as a
# tie-breaker for the same reason.
DEFAULT_ORDER_BY_ID = True
# [U] system fields are always written in the 2.1 form (":id": "row-xxxx~xxxx~xxxx",
# timestamps as fixed-timestamp text), also for $$exclude_system_fields=false and $$version=2.0.
# [U] names given to $select expressions without an alias: count(*) -> "count",
# f(column) -> "f_column", anything else -> its words joined by "_".
COUNT_STAR_NAME = "count"
# [U] aggregate results of number columns (count, sum, avg, min, max) are number text, like
# every number column ("3", "12.5").


def missing_row(fourfour: str, row_id: str) -> PortalError:
    """[U] body of the 404 for a row that does not exist (single-row GET and DELETE)."""
    return PortalError(
        404,
        "soda.row.not-found",
        f"Row '{row_id}' was not found in dataset {fourfour}",
        {"dataset": fourfour, "row": row_id},
    )


# ---- writes (§2.2 - 2.5) ---------------------------------------------------------------------------

# [U] a one-item array in an upsert body, [key], deletes the row with that key (soda-fountain does
# this internally; it is not documented publicly).
ARRAY_ROW_IS_DELETE = True
# [U] a row without a value in the row identifier column fails the whole request (soda-fountain's
# soda.row.primary-key-nonexistent-or-null) rather than counting as one row error.
MISSING_KEY_CODE = "soda.row.primary-key-nonexistent-or-null"
# [U] system fields other than :id and :deleted in a write body are ignored, not refused.
IGNORED_SYSTEM_FIELDS = frozenset(
    {":created_at", ":updated_at", ":version", ":position", ":meta", ":created_meta", ":updated_meta"}
)
# [U] rows with ":deleted": true inside a replace (PUT) body are dropped; :id values are ignored.
REPLACE_DROPS_DELETED = True
# [U] an empty CSV cell is null (it clears the value on update).
CSV_EMPTY_IS_NULL = True
# [U] the OBE-only types are stored and read as plain text.
TEXT_LIKE_TYPES = ("email", "phone", "flag", "drop_down_list")


def upsert_response(counts, version: str | None) -> dict:
    """[U] which summary a caller gets: the documented six-key summary by default; the snake_case
    summary soda-java (DataSync) parses when the request carries $$version=2.0."""
    if version == "2.0":
        return {
            "rows_created": counts.created,
            "rows_updated": counts.updated,
            "rows_deleted": counts.deleted,
            "errors": counts.error_list,
        }
    return {
        "Rows Created": counts.created,
        "Rows Updated": counts.updated,
        "Rows Deleted": counts.deleted,
        "Errors": counts.errors,
        "By RowIdentifier": counts.by_ri,
        "By SID": counts.by_sid,
    }


def csv_timestamp(text: str) -> str:
    """[U] timestamp cells a CSV body may use: ISO 8601, or the docs' `03/26/2014 10:38:01 PM`."""
    return us_date_to_iso(text)


_LAT_LON = re.compile(r"(.*?)\(\s*([-+]?[\d.]+)\s*,\s*([-+]?[\d.]+)\s*\)\s*", re.S)


def csv_point(text: str):
    """[U] point cells: WKT `POINT (lon lat)`, GeoJSON, or the docs' `(lat, lon)`."""
    m = _LAT_LON.fullmatch(text)
    if m and not m.group(1).strip():
        return {"type": "Point", "coordinates": [float(m.group(3)), float(m.group(2))]}
    return text


def csv_location(text: str):
    """[U] location cells: `address (lat, lon)` or `(lat, lon)`; anything else is null."""
    m = _LAT_LON.fullmatch(text)
    if not m:
        return None
    out = {"latitude": m.group(2), "longitude": m.group(3)}
    if m.group(1).strip():
        import orjson

        out["human_address"] = orjson.dumps(
            {"address": m.group(1).strip(), "city": "", "state": "", "zip": ""}
        ).decode()
    return out


# ---- auth and throttling (§1) --------------------------------------------------------------------

# [U] a portal started with no users at all accepts every request (a local try-out); with users,
# writes, private datasets and the Dataset Management API need one of them.
OPEN_WHEN_NO_USERS = True
# [U] datasets are public unless made private (POST /api/views, `route portal create`, DSMAPI
# `action.permission: "private"`, or setPermission).
NEW_DATASETS_PUBLIC = True
# [U] an Authorization header that does not match any user gets 401 even on a public read
# (auth.Auth.identify refuses it before the request is routed).


def not_logged_in() -> PortalError:
    """No credentials where they are needed: 403 authentication_required (sodapy's fixture text)."""
    return PortalError(403, "authentication_required", "You must be logged in to access this resource")


def bad_credentials() -> PortalError:
    """[U] wording of the 401 for wrong credentials."""
    return PortalError(401, "invalid_credentials", "Invalid username or password (or API key id and secret)")


def throttled(retry_after: float) -> PortalError:
    """[U] the 429: soda-fountain's body, plus a Retry-After header in whole seconds."""
    seconds = max(0, int(-(-retry_after // 1)))
    err = PortalError(429, "too-many-requests", "Too many requests", {}, headers={"Retry-After": str(seconds)})
    return err


# ---- metadata (§4) -------------------------------------------------------------------------------

# [U] changing a column's dataTypeName through PUT /api/views/{4x4}/columns/{id} is refused:
# change types through a revision, which re-reads the values.
ALLOW_COLUMN_TYPE_CHANGE = False
# [U] POST /api/views/{4x4}/publication.json?method=copy answers with the dataset itself (the
# portal keeps no separate working copies).
WORKING_COPY_IS_SELF = True


def field_name_for(header: str) -> str:
    """[U] the field name made from a display name or CSV header: lower case, [a-z0-9_]."""
    text = re.sub(r"[^0-9a-z]+", "_", header.strip().lower()).strip("_")
    if not text:
        text = "column"
    if text[0].isdigit():
        text = "_" + text
    return text


# ---- Dataset Management API (§5) -----------------------------------------------------------------


# [U] DSMAPI errors carry the §1 body plus "key" (the same code), the name DSMAPI uses.
def dsmapi_error(err: PortalError) -> dict:
    body = err.body()
    body["key"] = err.code
    return body


PREFERRED_CHUNK_SIZE = 4 * 1024 * 1024
PREFERRED_UPLOAD_PARALLELISM = 2  # a 2-core machine gains nothing from more
# [U] the first revision of a dataset has revision_seq 0, whether the dataset was created by
# POST /revision or through /api/views; then 1, 2, ...
FIRST_REVISION_SEQ = 0
# [U] output_soql_type values are the dataTypeName of the column they make (text, number,
# calendar_date, checkbox, point, ...), as in DSMAPI's 2017 fixtures.
# [U] applying an update or replace revision makes the output schema's columns the dataset's
# columns (added, kept or dropped); a delete revision leaves the columns alone.
# [U] rows whose cells fail their transform are counted in error_count, listed by schema_errors,
# and left out when the revision is applied (the apply still succeeds).
# [U] uploads are read synchronously: when the commit (or bytes) request returns, the input and
# output schemas are complete; an apply finishes before its answer unless faults.slow_jobs() is set.
# [U] only CSV and TSV uploads are parsed; other content types fail the source with a message.
TRANSFORM_FUNCTIONS = {
    "to_text": "text",
    "to_number": "number",
    "to_money": "money",
    "to_double": "double",
    "to_boolean": "checkbox",
    "to_checkbox": "checkbox",
    "to_floating_timestamp": "calendar_date",
    "to_fixed_timestamp": "date",
    "to_point": "point",
    "to_multipoint": "multipoint",
    "to_line": "line",
    "to_multiline": "multiline",
    "to_polygon": "polygon",
    "to_multipolygon": "multipolygon",
    "to_location": "location",
    "to_url": "url",
    "to_photo": "photo",
    "to_blob": "blob",
}


def transform_for(type_name: str, input_field: str) -> str:
    """The transform expression the portal proposes for an input column of that type."""
    ref = "`" + input_field.replace("`", "``") + "`"
    if type_name in ("text", "html"):
        return ref
    func = next((f for f, t in TRANSFORM_FUNCTIONS.items() if t == type_name), None)
    return f"{func}({ref})" if func else ref


_GUESS_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_GUESS_DATE = re.compile(r"\d{4}-\d\d-\d\d(?:T\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?)?")


class TypeGuess:
    """[U] the type proposed for an uploaded column with no dataset column of that name: number
    if every non-empty cell is a number, checkbox if every one is true/false, calendar_date if
    every one is an ISO date or date-time; otherwise (and for empty columns) text."""

    def __init__(self):
        self.candidates = {"number", "checkbox", "calendar_date"}
        self.seen = False

    def feed(self, values) -> None:
        if not self.candidates:
            return
        distinct = {v.strip() for v in set(values) if v} - {""}
        if not distinct:
            return
        self.seen = True
        if "number" in self.candidates and not all(map(_GUESS_NUMBER.fullmatch, distinct)):
            self.candidates.discard("number")
        if "checkbox" in self.candidates and not all(v.lower() in ("true", "false") for v in distinct):
            self.candidates.discard("checkbox")
        if "calendar_date" in self.candidates and not all(map(_GUESS_DATE.fullmatch, distinct)):
            self.candidates.discard("calendar_date")

    def result(self) -> str:
        if not self.seen:
            return "text"
        for name in ("checkbox", "number", "calendar_date"):
            if name in self.candidates:
                return name
        return "text"


def preview_head(offset: int, limit: int, total: int) -> dict:
    """[U] the first element of a rows/schema_errors answer (socrata-py drops it)."""
    return {"offset": offset, "limit": limit, "total_rows": total}


_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d\d)(?::(\d\d))?\s*([AaPp][Mm])?)?")


def us_date_to_iso(text: str) -> str:
    """`03/26/2014 10:38:01 PM` -> `2014-03-26T22:38:01` (left alone when it is not that form)."""
    m = _US_DATE.fullmatch(text.strip())
    if not m:
        return text.strip()
    mo, d, y, h, mi, s, ampm = m.groups()
    if h is None:
        return f"{y}-{int(mo):02d}-{int(d):02d}"
    hour = int(h)
    if ampm:
        hour = hour % 12 + (12 if ampm.lower() == "pm" else 0)
    return f"{y}-{int(mo):02d}-{int(d):02d}T{hour:02d}:{mi}:{s or '00'}"

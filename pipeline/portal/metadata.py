"""Dataset metadata the local portal keeps beside the rows: licenses, who may see private
metadata, and column positions.

- `licenseId` is what clients send; the views JSON also carries the `license` object Socrata serves
  with it (`name`, `termsLink`, `logoUrl`), from the table below (an id not in it is named by itself).
- `privateMetadata` (contact email, private custom fields) is served only to a signed-in user (or
  on an open portal), as Socrata shows it only to those who may edit the dataset.
- A column's `position` set through `/api/views/{4x4}/columns/{id}.json` moves the column there:
  the others keep their order and positions stay 1, 2, 3...
"""

from __future__ import annotations

from pipeline.portal.errors import bad_request

# licenseId -> the license object of the views JSON (names as Socrata's license picker spells them).
LICENSES = {
    "CC0_10": ("Creative Commons 1.0 Universal (Public Domain Dedication)", "https://creativecommons.org/publicdomain/zero/1.0/legalcode", "images/licenses/ccZero.png"),
    "CC_30_BY": ("Creative Commons Attribution 3.0 Unported", "https://creativecommons.org/licenses/by/3.0/legalcode", "images/licenses/cc30by.png"),
    "CC_30_BY_SA": ("Creative Commons Attribution-ShareAlike 3.0 Unported", "https://creativecommons.org/licenses/by-sa/3.0/legalcode", "images/licenses/cc30bysa.png"),
    "CC_40_BY": ("Creative Commons Attribution 4.0 International", "https://creativecommons.org/licenses/by/4.0/legalcode", "images/licenses/cc40by.png"),
    "CC_40_BY_SA": ("Creative Commons Attribution-ShareAlike 4.0 International", "https://creativecommons.org/licenses/by-sa/4.0/legalcode", "images/licenses/cc40bysa.png"),
    "ODC_BY": ("Open Data Commons Attribution License", "http://opendatacommons.org/licenses/by/1.0/", ""),
    "ODBL": ("Open Database License", "http://opendatacommons.org/licenses/odbl/1.0/", ""),
    "PDDL": ("Open Data Commons Public Domain Dedication and License", "http://opendatacommons.org/licenses/pddl/1.0/", ""),
    "PUBLIC_DOMAIN": ("Public Domain", "", ""),
    "USGOV_WORKS": ("Public Domain U.S. Government", "https://www.usa.gov/government-works", ""),
}  # fmt: skip


def license_object(license_id: str) -> dict:
    name, terms, logo = LICENSES.get(license_id, (license_id, "", ""))
    out = {"name": name}
    if logo:
        out["logoUrl"] = logo
    if terms:
        out["termsLink"] = terms
    return out


def set_license(extra: dict, body: dict) -> None:
    """A `licenseId` in a create or update body: keep it and the license object that goes with it
    (an empty id or null removes both). A `license` object the client sends itself wins."""
    if "licenseId" not in body:
        return
    value = body["licenseId"]
    if value in (None, ""):
        extra.pop("licenseId", None)
        extra.pop("license", None)
        return
    if not isinstance(value, str):
        raise bad_request("invalid_view", f"licenseId must be text, not {type(value).__name__}")
    extra["licenseId"] = value
    if "license" not in body:
        extra["license"] = license_object(value)


def for_reader(view: dict, signed_in: bool) -> dict:
    """The views JSON as this reader may see it: no `privateMetadata` for anonymous readers."""
    if not signed_in and "privateMetadata" in view:
        view = {k: v for k, v in view.items() if k != "privateMetadata"}
    return view


def check_metadata_body(body: dict) -> None:
    """400 for metadata keys of the wrong shape (Socrata refuses them too)."""
    for key in ("metadata", "privateMetadata"):
        if key in body and body[key] is not None and not isinstance(body[key], dict):
            raise bad_request("invalid_view", f"{key} must be an object")
    for key in ("metadata", "privateMetadata"):
        custom = (body.get(key) or {}).get("custom_fields")
        if custom is None:
            continue
        if not isinstance(custom, dict) or not all(isinstance(v, dict) for v in custom.values()):
            raise bad_request(
                "invalid_view", f"{key}.custom_fields must be an object of objects: {{group: {{field: value}}}}"
            )
    if "tags" in body and body["tags"] is not None and not isinstance(body["tags"], list):
        raise bad_request("invalid_view", "tags must be a list")


def move_column(conn, columns: list, col, position) -> None:
    """Put `col` at `position` (1-based) among `columns`; renumber them 1..n in the new order."""
    if isinstance(position, bool) or not isinstance(position, int) or position < 1:
        raise bad_request("invalid_column", f"position must be a whole number from 1, not {position!r}")
    order = [c for c in columns if c.id != col.id]
    order.insert(min(position, len(order) + 1) - 1, col)
    for i, c in enumerate(order, start=1):
        if c.position != i:
            conn.execute("UPDATE columns SET position=? WHERE id=?", (i, c.id))

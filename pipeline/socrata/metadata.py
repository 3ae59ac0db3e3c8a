"""Dataset metadata as code: a socrata target's `metadata:` block, kept in line with the dataset.

Every run reads the dataset's `/api/views/{4x4}.json`, compares it with the block and sends only
what differs, before any row: the changed top-level keys in one `PUT /api/views/{4x4}.json`
(`metadata` and `privateMetadata` whole, as read, with the block's keys changed, so that keys the
block does not name keep their values), `?method=setPermission` for public or private, and one
`PUT /api/views/{4x4}/columns/{id}.json` per column that changes. Keys the block leaves out are
never touched. `pull` turns a views JSON back into a block (`route metadata pull`).

    metadata:
      description: Code enforcement cases since 2020.
      tags: [housing, code enforcement]
      custom_fields: {Dataset Information: {Agency: Licenses and Inspections}}
      columns:
        case_id: {display_name: Case ID, description: The case number, position: 1}
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pipeline.socrata.http import SocrataSession

# Block key -> its place in the views JSON.
PLACES: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "description": ("description",),
    "category": ("category",),
    "tags": ("tags",),
    "license": ("licenseId",),
    "attribution": ("attribution",),
    "attribution_link": ("attributionLink",),
    "contact_email": ("privateMetadata", "contactEmail"),
    "row_label": ("metadata", "rowLabel"),
}


def merged(*blocks: dict | None) -> dict:
    """Blocks laid over each other, later keys winning; columns and custom fields key by key."""
    out: dict = {}
    for block in blocks:
        for key, value in (block or {}).items():
            if key == "columns":
                cols = out.setdefault("columns", {})
                for name, spec in (value or {}).items():
                    cols[name] = {**cols.get(name, {}), **(spec or {})}
            elif key == "custom_fields":
                groups = out.setdefault("custom_fields", {})
                for group, fields in (value or {}).items():
                    groups[group] = {**groups.get(group, {}), **(fields or {})}
            else:
                out[key] = value
    return out


# ---- comparing -------------------------------------------------------------------------------


@dataclass
class Change:
    what: str  # "description", "custom field Group: Field", "column amount: description"
    old: Any
    new: Any

    def as_dict(self) -> dict:
        return {"what": self.what, "from": self.old, "to": self.new}


@dataclass
class Plan:
    """What to send so that the dataset says what the block says."""

    changes: list[Change] = field(default_factory=list)
    view: dict = field(default_factory=dict)  # body of PUT /api/views/{4x4}.json
    permission: str | None = None  # "public.read" or "private"
    columns: list[tuple[int, str, dict]] = field(default_factory=list)  # (column id, field, body), in order
    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes)


def _get(view: dict, place: tuple[str, ...]):
    value: Any = view
    for key in place:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _text(value) -> str:
    return "" if value is None else str(value)


def is_public(view: dict) -> bool:
    return any(
        g.get("type") == "viewer" and "public" in (g.get("flags") or [])
        for g in view.get("grants") or []
        if isinstance(g, dict)
    )


def user_columns(view: dict) -> list[dict]:
    """The dataset's own columns (no system ones), in position order."""
    cols = [c for c in view.get("columns") or [] if not str(c.get("fieldName") or ":").startswith(":")]
    return sorted(cols, key=lambda c: (c.get("position") or 0, c.get("id") or 0))


def plan(block: dict, view: dict) -> Plan:
    """Compare the block with a views JSON: the changes, and the requests that make them."""
    out = Plan()
    sections: dict[str, dict] = {}  # metadata / privateMetadata, copied whole when one key changes
    for key, place in PLACES.items():
        if key not in block:
            continue
        want, have = block[key], _get(view, place)
        if key == "tags":
            want, have = list(want or []), list(have or [])
            if sorted(t.casefold() for t in want) == sorted(t.casefold() for t in have):
                continue
        elif _text(want) == _text(have):
            continue
        out.changes.append(Change(key, have, want))
        if len(place) == 1:
            out.view[place[0]] = want
        else:
            section = sections.setdefault(place[0], copy.deepcopy(view.get(place[0]) or {}))
            section[place[1]] = want
    custom = block.get("custom_fields") or {}
    if custom:
        have_groups = _get(view, ("metadata", "custom_fields")) or {}
        new_groups = copy.deepcopy(have_groups)
        for group, fields in custom.items():
            for name, want in (fields or {}).items():
                have = (have_groups.get(group) or {}).get(name)
                if _text(want) != _text(have):
                    out.changes.append(Change(f"custom field {group}: {name}", have, want))
                    new_groups.setdefault(group, {})[name] = want
        if new_groups != have_groups:
            sections.setdefault("metadata", copy.deepcopy(view.get("metadata") or {}))["custom_fields"] = new_groups
    out.view.update(sections)
    if "public" in block and bool(block["public"]) != is_public(view):
        out.changes.append(Change("public", is_public(view), bool(block["public"])))
        out.permission = "public.read" if block["public"] else "private"
    _plan_columns(block.get("columns") or {}, view, out)
    return out


def _plan_columns(wanted: dict, view: dict, out: Plan) -> None:
    cols = user_columns(view)
    by_field = {c["fieldName"]: c for c in cols}
    missing = [name for name in wanted if name not in by_field]
    if missing:
        have = ", ".join(by_field) or "none"
        out.problems.extend(
            f"metadata.columns: the dataset has no column {name} (its columns: {have})" for name in missing
        )
        return
    for name, spec in wanted.items():
        col, body = by_field[name], {}
        for key, api in (("display_name", "name"), ("description", "description")):
            if key in spec and _text(spec[key]) != _text(col.get(api)):
                out.changes.append(Change(f"column {name}: {key.replace('_', ' ')}", col.get(api), spec[key]))
                body[api] = spec[key]
        if body:
            out.columns.append((col["id"], name, body))
    placed = {name: spec["position"] for name, spec in wanted.items() if spec.get("position") is not None}
    if not placed:
        return
    order = [c["fieldName"] for c in cols]
    too_far = {n: p for n, p in placed.items() if p > len(order)}
    if too_far:
        out.problems.extend(
            f"metadata.columns.{n}: position {p}, but the dataset has {len(order)} columns" for n, p in too_far.items()
        )
        return
    final: list[str | None] = [None] * len(order)
    for name, pos in placed.items():
        final[pos - 1] = name
    rest = iter(n for n in order if n not in placed)
    final = [n if n is not None else next(rest) for n in final]
    for name in placed:
        if order.index(name) != final.index(name):
            out.changes.append(Change(f"column {name}: position", order.index(name) + 1, final.index(name) + 1))
    # Moves, as the portal applies them (the column taken out, put back at its new place): after
    # move i, the first i+1 columns are final.
    for i, name in enumerate(final):
        if order[i] != name:
            order.remove(name)
            order.insert(i, name)
            out.columns.append((by_field[name]["id"], name, {"position": i + 1}))


# ---- sending ---------------------------------------------------------------------------------


def apply(http: SocrataSession, dataset_id: str, todo: Plan) -> dict | None:
    """Send the plan's requests; returns the dataset's views JSON afterwards (None if nothing was sent)."""
    if not todo:
        return None
    what = f"updating the metadata of dataset {dataset_id}"
    path = f"/api/views/{dataset_id}.json"
    if todo.view:
        http.send_json("PUT", path, todo.view, what=what, dataset=dataset_id)
    if todo.permission:
        http.send_json(
            "PUT",
            path,
            None,
            what=f"making dataset {dataset_id} {'public' if todo.permission != 'private' else 'private'}",
            dataset=dataset_id,
            params={"method": "setPermission", "value": todo.permission},
        )
    for column_id, name, body in todo.columns:
        http.send_json(
            "PUT",
            f"/api/views/{dataset_id}/columns/{column_id}.json",
            body,
            what=f"updating column {name} of dataset {dataset_id}",
            dataset=dataset_id,
        )
    return http.get_json(path, what=f"reading dataset {dataset_id}", dataset=dataset_id)


def creation_body(block: dict) -> tuple[dict, dict[str, dict]]:
    """What `POST /api/views.json` takes of a block: top-level keys, and per field name the
    column keys (`name`, `description`). Positions and public/private are set after creating."""
    body: dict = {}
    for key, place in PLACES.items():
        if key in block and key != "name":
            if len(place) == 1:
                body[place[0]] = block[key]
            else:
                body.setdefault(place[0], {})[place[1]] = block[key]
    if block.get("custom_fields"):
        body.setdefault("metadata", {})["custom_fields"] = copy.deepcopy(block["custom_fields"])
    columns = {}
    for name, spec in (block.get("columns") or {}).items():
        col = {}
        if spec.get("display_name"):
            col["name"] = spec["display_name"]
        if spec.get("description"):
            col["description"] = spec["description"]
        if col:
            columns[name] = col
    return body, columns


# ---- in words, and back to a block -------------------------------------------------------------


def words(changes: list[Change]) -> str:
    """`description, tags, column amount: description` (the keys that change, in order)."""
    return ", ".join(c.what for c in changes)


def details(changes: list[Change], applied: bool) -> dict:
    return {"metadata": {"applied": applied, "changes": [c.as_dict() for c in changes]}}


def pull(view: dict) -> dict:
    """The `metadata:` block that says what the dataset's views JSON says (empty keys left out)."""
    block: dict = {"name": view.get("name") or ""}
    for key, place in PLACES.items():
        value = _get(view, place)
        if key != "name" and value not in (None, "", [], {}):
            block[key] = list(value) if key == "tags" else value
    custom = _get(view, ("metadata", "custom_fields"))
    if custom:
        block["custom_fields"] = {g: dict(f) for g, f in custom.items() if f}
    block["public"] = is_public(view)
    columns = {}
    for i, col in enumerate(user_columns(view), start=1):
        spec: dict = {"display_name": col.get("name") or col["fieldName"]}
        if col.get("description"):
            spec["description"] = col["description"]
        spec["position"] = i
        columns[col["fieldName"]] = spec
    if columns:
        block["columns"] = columns
    return block


# ---- one target's metadata in one run (what the delivery calls) -------------------------------------


class Sync:
    """The `metadata:` block of one target for one run: compared once, applied unless a dry run.

    `created(block)` lays a `create:` block under it for the run that creates the dataset."""

    def __init__(self, block: dict | None, dry_run: bool):
        self.block = merged(block) if block else {}
        self.dry_run = dry_run
        self.done = False
        self.changes: list[Change] = []

    def created(self, create: dict) -> tuple[dict, dict[str, dict]]:
        """The dataset is made from `create:` now: what POST /api/views.json takes of both blocks."""
        self.block = merged({k: v for k, v in create.items() if k != "types"}, self.block)
        return creation_body(self.block)

    def run(self, http: SocrataSession, dataset_id: str, view: dict) -> dict | None:
        """Compare with `view` and (unless a dry run) apply; the views JSON after, when it changed.
        Raises SocrataError when the block names what the dataset does not have."""
        if self.done or not self.block:
            return None
        self.done = True
        todo = plan(self.block, view)
        if todo.problems:
            from pipeline.socrata.errors import SocrataError

            raise SocrataError(
                "the metadata block does not fit the dataset:\n" + "\n".join(f"  - {p}" for p in todo.problems)
            )
        self.changes = todo.changes
        return None if self.dry_run else apply(http, dataset_id, todo)

    def details(self) -> dict:
        return details(self.changes, not self.dry_run) if self.changes else {}

    def plan_text(self, details: dict) -> str:
        """A dry run's plan in words (pipeline/socrata/dryrun.py's), then the metadata it would change."""
        from pipeline.socrata import dryrun

        describe = getattr(dryrun, "describe", None)
        base = describe(details) if describe else f"{details.get('mode')} {details.get('dataset')}"
        return f"{base}; update its metadata: {words(self.changes)}" if self.changes else base

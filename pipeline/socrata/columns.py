"""Match the route's output columns to a dataset's columns, and find everything that does not fit.

Every problem is collected (unknown columns, a missing row identifier, types that cannot convert,
columns a replace would empty) so the publisher sees them all at once, before anything is sent.
Columns are matched by the `columns:` map, else by field name, else by display name (exact, then
as a field name would be spelled). Messages name dataset columns by display name and field name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.socrata.views import SUPPORTED, TYPE_WORDS, Column, Dataset, field_name

ID = ":id"


@dataclass(frozen=True)
class Target:
    column: str  # route column
    field: str  # dataset field name (":id" for the system id)
    type: str  # Socrata type the values go to
    label: str  # how messages name the dataset column


@dataclass
class Mapping:
    targets: list[Target] = field(default_factory=list)
    key: Target | None = None  # the row identifier (or :id) the rows are keyed by
    problems: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def by_column(self) -> dict[str, Target]:
        return {t.column: t for t in self.targets}


def match(
    route_columns: dict[str, str | None],
    dataset: Dataset,
    *,
    mode: str,
    explicit: dict[str, str] | None = None,
    row_identifier: str | None = None,
) -> Mapping:
    """Map route columns (name -> route type, or None when not known yet) onto `dataset`."""
    m = Mapping()
    by_field, by_name = dataset.by_field(), dataset.by_name()
    by_spelling = {}
    for c in dataset.columns:
        by_spelling.setdefault(field_name(c.name), c)
    explicit = explicit or {}
    for column in explicit:
        if column not in route_columns:
            m.problems.append(
                f"`columns:` maps '{column}', which is not a column of the route's output "
                f"(it has: {_list(route_columns)})"
            )
    used: dict[str, str] = {}
    for column in route_columns:
        want = explicit.get(column)
        if want == ID or (want is None and column == ID):
            target = Target(column, ID, "text", "the row id (:id)")
        else:
            col: Column | None = (
                by_field.get(want)
                if want
                else (by_field.get(column) or by_name.get(column) or by_spelling.get(field_name(column)))
            )
            if col is None:
                if mode == "delete":
                    m.ignored.append(column)
                    continue
                where = f"field '{want}' (from `columns:`)" if want else f"column '{column}'"
                m.problems.append(
                    f"{where} is not in dataset {dataset.label}; its columns are "
                    f"{_labels(dataset.columns)}. Map it with `columns:` or drop it with select/drop"
                )
                continue
            target = Target(column, col.field, col.type, col.label)
        if target.field in used:
            m.problems.append(f"route columns '{used[target.field]}' and '{column}' both go to {target.label}")
            continue
        used[target.field] = column
        m.targets.append(target)
    _check_key(m, dataset, mode, row_identifier)
    if mode == "delete":
        m.targets = [m.key] if m.key else []
    else:
        _check_types(m, route_columns)
    if mode == "replace":
        missing = [c for c in dataset.columns if c.field not in used]
        if missing:
            m.problems.append(
                f"mode replace makes the dataset exactly the route's rows, but the route has no "
                f"column for {_labels(missing)}; add them to the route's output (a derive to "
                f"null keeps them empty) or use mode upsert"
            )
    return m


def _check_key(m: Mapping, dataset: Dataset, mode: str, row_identifier: str | None) -> None:
    ri = dataset.row_identifier
    fields = {t.field: t for t in m.targets}
    if row_identifier:
        wanted = {row_identifier, field_name(row_identifier)}
        ri_col = dataset.by_field().get(ri) if ri else None
        names = {ri, ri_col.name if ri_col else None} | {t.column for t in m.targets if t.field == ri}
        if ri is None:
            m.problems.append(
                f"row_identifier is '{row_identifier}', but dataset {dataset.label} has no row "
                f"identifier; set it on the dataset (column settings on the portal) or remove "
                f"row_identifier from the route"
            )
        elif not wanted & names:
            m.problems.append(
                f"row_identifier is '{row_identifier}', but the row identifier of dataset "
                f"{dataset.label} is {ri_col.label if ri_col else ri}"
            )
    if ri and ri in fields:
        m.key = fields[ri]
    elif ID in fields:
        m.key = fields[ID]
    if m.key is not None or mode == "replace":
        return
    if ri:
        label = dataset.by_field()[ri].label
        if mode in ("upsert", "delete", "append"):
            m.problems.append(
                f"the row identifier of dataset {dataset.label} is {label}, and the route has no "
                f"column for it; every row must carry it in mode {mode}"
            )
    elif mode in ("upsert", "delete"):
        m.problems.append(
            f"mode {mode} needs a row identifier, and dataset {dataset.label} has none: set one "
            f"on the dataset, give the rows' system ids in a column named ':id'"
            + (", or use mode append or replace" if mode == "upsert" else "")
        )


def _check_types(m: Mapping, route_columns: dict[str, str | None]) -> None:
    from pipeline.socrata import wire  # polars and Arrow: checked at run time, not while planning

    for t in m.targets:
        rtype = route_columns.get(t.column)
        if t.field == ID:
            continue
        if t.type not in SUPPORTED:
            m.problems.append(
                f"{t.label} is a column of type {t.type}, which route cannot write; drop "
                f"'{t.column}' from the route's output"
            )
        elif rtype is not None and not wire.accepts(rtype, t.type):
            m.problems.append(
                f"route column '{t.column}' is {rtype}, which cannot go to {t.label}, a "
                f"{TYPE_WORDS.get(t.type, t.type)} column: {wire.hint(t.type)}"
            )


def _labels(columns: list[Column]) -> str:
    return ", ".join(c.label for c in columns) or "(none)"


def _list(names) -> str:
    return ", ".join(f"'{n}'" for n in names) or "(none)"


# -- types for a dataset route creates ---------------------------------------------------------

CREATE_TYPES = {
    "text": "text",
    "integer": "number",
    "number": "number",
    "boolean": "checkbox",
    "date": "calendar_date",
    "datetime": "calendar_date",
}


def creation_columns(
    route_columns: dict[str, str | None],
    overrides: dict[str, str] | None,
    explicit: dict[str, str] | None,
    tz_columns: set[str],
) -> list[Column]:
    """Dataset columns for the route's output: names as display names, types from its dtypes."""
    overrides, explicit = overrides or {}, explicit or {}
    out = []
    for column, rtype in route_columns.items():
        if column == ID or explicit.get(column) == ID:
            continue
        stype = overrides.get(column) or CREATE_TYPES.get(rtype or "text", "text")
        if rtype == "datetime" and column in tz_columns and column not in overrides:
            stype = "date"  # a time-zone-aware instant is a fixed timestamp
        out.append(Column(explicit.get(column) or field_name(column), column, stype))
    return out


def route_types(columns, known: dict[str, str | None] | None = None) -> dict[str, str | None]:
    """Route column -> route type name (None when unknown), from names, {name: dtype} or df.dtypes."""
    from pipeline.basics.dtypes import route_type_of

    out: dict[str, str | None] = {}
    if columns is None:
        return dict(known or {})
    items = columns.items() if hasattr(columns, "items") else ((c, None) for c in columns)
    for name, dtype in items:
        out[str(name)] = route_type_of(dtype) if dtype is not None else (known or {}).get(str(name))
    return out


def tz_columns(columns) -> set[str]:
    """Columns holding time-zone-aware timestamps (fixed instants), from {name: dtype} or df.dtypes."""
    import pandas as pd
    import pyarrow as pa

    out = set()
    for name, dtype in columns.items() if hasattr(columns, "items") else ():
        if (
            isinstance(dtype, pd.ArrowDtype)
            and pa.types.is_timestamp(dtype.pyarrow_dtype)
            and dtype.pyarrow_dtype.tz
            or isinstance(dtype, pd.DatetimeTZDtype)
        ):
            out.add(str(name))
    return out

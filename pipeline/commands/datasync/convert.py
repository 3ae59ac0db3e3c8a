"""A DataSync standard job as a route file: the source, the rules and the socrata delivery.

Each DataSync setting becomes the route option that does the same (docs/datasync.md has the
table); a setting with no equivalent is written as a `# DataSync:` comment where it would have
acted, and listed in the summary the command prints. The route text is built line by line with
route init's YAML helpers, so every value reads back as written.
"""

from __future__ import annotations

import codecs
import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.basics.errors import RouteError, RouteInvalid
from pipeline.commands.datasync.files import Job, locate
from pipeline.commands.datasync.timestamps import timestamp_casts, valid_zone
from pipeline.commands.init.yamltext import commented, flow, scalar

SAMPLE_ROWS = 1000
_VIA = {
    "http": "over HTTP (delta-importer-2)",
    "ftp": "over FTP (SmartUpdate)",
    "soda2": "over SODA2 (row by row)",
}
_DELIMITERS = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe", " ": "space"}


@dataclass
class Notes:
    """What the conversion could not carry over, and what the publisher should check."""

    not_carried: list[str] = field(default_factory=list)
    review: list[str] = field(default_factory=list)

    def missing(self, text: str) -> None:
        if text not in self.not_carried:
            self.not_carried.append(text)


@dataclass
class Portal:
    domain: str  # as the route writes it: an https address, `local`, or ${SOCRATA_DOMAIN}
    secrets: set[str]  # DataSync secret keys seen (username, password, appToken, ...)
    dataset: object = None  # the dataset as read from the portal (views.Dataset), or None


def convert(job: Job, route_file: Path, portal: Portal, data_file: Path | None = None) -> tuple[str, Notes, list[str]]:
    """(the route's text, notes, the variables to export)."""
    notes = Notes()
    control = job.control or {}
    data = data_file or locate(job.data_file, job.path)
    dataset = portal.dataset
    source, source_notes = _source(job, control, data, route_file, notes, dataset)
    sample = _sample(source, data, route_file)
    columns = list(source.get("names") or []) or (list(sample.columns) if sample is not None else [])

    out = [
        f"# Converted by `route import datasync` from {job.path.name} on {dt.date.today().isoformat()}.",
        f"# The DataSync job: {job.method} {_VIA[job.via]} into dataset {job.dataset}"
        + (f"; control file: {job.control_origin}." if job.control is not None else "; no control file."),
        "# `# DataSync:` comments name the settings that have no route equivalent (not carried over).",
        f"name: {scalar(_route_name(job.path.stem))}",
        f"description: {scalar(_description(job))}",
        "",
        "source:",
        "  csv:",
    ]
    for key, value in source.items():
        out.append(commented(f"    {key}: {flow(value)}", source_notes.get(key, "")))
    if job.via == "soda2" and job.control is not None:
        notes.review.append(
            "the job publishes over SODA2, where DataSync does not read the control file; its settings are applied"
        )
    if not data.is_file():
        notes.review.append(f"the file to publish, {job.data_file}, is not here: set source.csv.path")
    out += ["", *_rules(job, control, columns, sample, dataset, notes)]
    out += ["", "targets:", *_target(job, control, columns, portal, notes)]
    out += _on_error(job, control)
    comments = _unmapped(job, control, notes)
    if comments:
        out += ["", *comments]
    variables = _variables(portal)
    return "\n".join(out) + "\n", notes, variables


def _source(job: Job, control: dict, data: Path, route_file: Path, notes: Notes, dataset) -> tuple[dict, dict]:
    rel = (
        os.path.relpath(data.resolve(), route_file.resolve().parent)
        if data.is_absolute() or data.exists()
        else str(data)
    )
    options: dict = {"path": Path(rel).as_posix()}
    why = {"path": f"fileToPublish: {job.data_file}" if rel != job.data_file else "fileToPublish"}
    tab_file = data.suffix.lower() in (".tsv", ".tab")
    wanted = control.get("separator") or ("\t" if job.control_kind == "tsv" or tab_file else ",")
    if wanted != ("\t" if tab_file else ","):
        options["delimiter"] = _DELIMITERS.get(wanted, wanted)
        why["delimiter"] = "separator" if control.get("separator") else "a tsv job"
    quote = control.get("quote")
    if quote in ("\u0000", ""):
        options["quote"] = False
        why["quote"] = 'quote "\\u0000": no quote character'
    elif quote and quote != '"':
        options["quote"] = quote
        why["quote"] = "quote"
    escape = control.get("escape")
    if escape:
        escape = "\\" if escape == "\\\\" else escape
        if len(escape) == 1:
            options["escape"] = escape
            why["escape"] = "escape"
        else:
            notes.missing(f"escape {escape!r}: an escape is one character")
    encoding = control.get("encoding")
    if encoding and _python_encoding(encoding) not in ("utf-8", "utf_8"):
        python = _python_encoding(encoding)
        if python:
            options["encoding"] = python
            why["encoding"] = f"encoding {encoding}" if python != encoding else "encoding"
        else:
            notes.missing(f"encoding {encoding!r}: not an encoding Python knows; the file is read as UTF-8")
    columns = control.get("columns") or None
    skip = control.get("skip") or 0
    if columns:
        options["header"] = False
        options["names"] = list(columns)
        why["header"] = "columns are given: every line read is data"
        why["names"] = "columns"
    elif job.control is None and not job.has_header:
        options["header"] = False
        why["header"] = "fileToPublishHasHeaderRow: false"
        options["names"], why["names"] = _headerless_names(job, dataset, notes)
    if skip:
        options["skip_rows"] = skip
        why["skip_rows"] = "skip" + (" (the file's own header line among them)" if columns else "")
    return options, why


def _headerless_names(job: Job, dataset, notes: Notes) -> tuple[list[str], str]:
    """A file without a header over SODA2: DataSync took the dataset's columns in order (a delete:
    the first column holds the row identifiers)."""
    if job.method == "delete":
        if dataset is not None and dataset.row_identifier:
            return [dataset.row_identifier], "the row identifiers, as the first column"
        notes.review.append("delete: name the column of row identifiers as the dataset's row identifier")
        return ["row_identifier"], "REVIEW: the dataset's row identifier"
    if dataset is None:
        raise RouteInvalid(
            f"error: {job.path}: the file to publish has no header row and no control file names its "
            f"columns: DataSync took the dataset's columns in order, so the dataset must be read "
            f"(give --domain, without --offline), or give --control with a control file's columns"
        )
    return [c.field for c in dataset.columns], "the dataset's columns, in order, as DataSync read the file"


def _python_encoding(name: str) -> str | None:
    try:
        return codecs.lookup(name).name if name.lower().replace("_", "-") not in ("utf-8", "utf8") else "utf-8"
    except LookupError:
        return None


def _sample(options: dict, data: Path, route_file: Path) -> pd.DataFrame | None:
    """The first rows of the file as the route's source reads them (None when it is not here)."""
    if not data.is_file() or ("header" in options and "names" not in options):
        return None
    from pipeline.basics.context import RunContext, RunOptions, StepContext
    from pipeline.sources.csv import CsvSource

    run = RunContext(
        route_name="import",
        route_file=route_file.resolve(),
        state_dir=route_file.parent / ".route",
        run_id="import",
        options=RunOptions(dry_run=True, preview=True, limit=SAMPLE_ROWS),
        rejects=_Discard(),
    )
    frames, seen = [], 0
    try:
        source = CsvSource(dict(options), StepContext(run=run, stage="source", step="csv"))
        for chunk in source.chunks():
            frames.append(chunk)
            seen += len(chunk)
            if seen >= SAMPLE_ROWS:
                break
        getattr(source, "close", lambda: None)()
    except RouteError as exc:
        raise RouteInvalid(f"error: {data}: cannot read it as the control file says: {exc}") from None
    return pd.concat(frames) if frames else None


class _Discard:
    """The rejects sink of the sample: rows the source leaves out are a run's business."""

    def write(self, rows, **_) -> int:
        return len(rows)


def _rules(job: Job, control: dict, columns: list[str], sample, dataset, notes: Notes) -> list[str]:
    steps: list[str] = []
    ignored = list(control.get("ignoreColumns") or [])
    kept = [c for c in columns if c not in ignored]
    if ignored:
        steps.append(commented(f"  - drop: {flow(ignored)}", "ignoreColumns"))
    steps += _trim(control, kept, notes)
    casts = timestamp_casts(control, kept, dataset, sample, notes)
    if casts:
        steps.append(commented("  - cast:", "timestamps read with DataSync's formats (ISO 8601 is always read)"))
        body = [(f"      {scalar(c)}: {flow(spec)}", why) for c, (spec, why) in casts.items()]
        width = min(max(len(b) for b, _ in body) + 2, 90)
        steps += [commented(b, why, width) for b, why in body]
    steps += _locations(control, notes)
    if not steps:
        return ["source_transforms: []"]
    return ["source_transforms:", *steps]


def _trim(control: dict, columns: list[str], notes: Notes) -> list[str]:
    overrides = control.get("overrides") or {}
    default = bool(control.get("trimWhitespace"))
    own = {c: o["trimWhitespace"] for c, o in overrides.items() if isinstance(o.get("trimWhitespace"), bool)}
    if not default and not any(own.values()):
        return []
    if default and not own:
        return [commented("  - trim: all", "trimWhitespace: true (a value of spaces only becomes empty)")]
    if not columns:
        notes.review.append(
            "trimWhitespace has per-column overrides, but the file's columns are unknown: trims every column"
        )
        return [commented("  - trim: all", "trimWhitespace: REVIEW the columns of overrides")]
    trimmed = [c for c in columns if own.get(c, default)]
    return [commented(f"  - trim: {flow(trimmed)}", "trimWhitespace, with the overrides")] if trimmed else []


def _locations(control: dict, notes: Notes) -> list[str]:
    steps = []
    geocoding = control.get("useSocrataGeocoding")
    for name, parts in (control.get("syntheticLocations") or {}).items():
        options = {k: parts[k] for k in ("address", "city", "state", "zip", "latitude", "longitude") if parts.get(k)}
        if not options:
            notes.missing(f"syntheticLocations.{name}: it names no column")
            continue
        note = "syntheticLocations." + name
        if not ({"latitude", "longitude"} <= options.keys()):
            note += "; Socrata geocoded the address: route sends it without coordinates"
            notes.review.append(f"location {name}: Socrata geocoded it; route does not (give latitude and longitude)")
        steps.append(commented(f"  - location: {flow({**options, 'into': name})}", note))
    if geocoding is not None and control.get("syntheticLocations"):
        steps.append(
            f"  # DataSync: useSocrataGeocoding: {flow(geocoding)} (how Socrata compared geocoded locations; not needed)"
        )
    for name, point in (control.get("syntheticPoints") or {}).items():
        if point.get("type") == "point" and point.get("latitude") and point.get("longitude"):
            options = {"latitude": point["latitude"], "longitude": point["longitude"], "into": name}
            steps.append(commented(f"  - point: {flow(options)}", f"syntheticPoints.{name}"))
        else:
            parts = {k: v for k, v in point.items() if k != "type"}
            steps.append(f"  # DataSync: syntheticPoints.{name}: geocoded from {flow(parts)}: route does not geocode")
            notes.missing(f"syntheticPoints.{name}: a point geocoded by Socrata from an address")
    for name in control.get("analyticLocations") or {}:
        steps.append(f"  # DataSync: analyticLocations.{name}: computed by Socrata; route does not")
        notes.missing(f"analyticLocations.{name}: computed by Socrata")
    return steps


def _target(job: Job, control: dict, columns: list[str], portal: Portal, notes: Notes) -> list[str]:
    dataset = portal.dataset
    ri = dataset.row_identifier if dataset is not None else None
    lines = ["  - name: portal"]
    mode, mode_note = job.method, ""
    if job.method == "upsert" and dataset is not None and not ri:
        mode, mode_note = "append", "upsert: the dataset has no row identifier, so DataSync appended every row"
    elif job.method == "upsert" and dataset is None:
        mode_note = "REVIEW: a dataset without a row identifier needs mode: append"
        notes.review.append(
            "mode upsert needs the dataset's row identifier; without one, DataSync appended (mode: append)"
        )
    elif job.method == "append":
        mode_note = "on a dataset with a row identifier, an append updates rows, as DataSync's did"
    elif job.method == "replace":
        mode_note = "through a revision; stops if it would remove over half the rows (max_shrink; --force)"
    if job.method == "delete":
        lines += _delete_rules(columns, ri, notes)
    lines += [
        "    deliver:",
        "      socrata:",
        f"        domain: {scalar(portal.domain)}",
        commented(f"        dataset: {job.dataset}", dataset.name if dataset is not None else ""),
        commented(f"        mode: {mode}", mode_note),
    ]
    if ri and mode in ("upsert", "delete"):
        lines.append(commented(f"        row_identifier: {scalar(ri)}", "the dataset's row identifier"))
    zone = control.get("timezone")
    if zone and zone.upper() != "UTC":
        if valid_zone(zone):
            lines.append(commented(f"        timezone: {scalar(zone)}", "timezone: of fixed timestamps without one"))
        else:
            notes.missing(f"timezone {zone!r}: not an IANA time zone name; fixed timestamps are read as UTC")
    if portal.domain != "local":
        lines.append(commented("        auth:", "export these; DataSync kept them in its config.json"))
        lines += ["          username: ${SOCRATA_USERNAME}", "          password: ${SOCRATA_PASSWORD}"]
        if "appToken" in portal.secrets:
            lines.append("          app_token: ${SOCRATA_APP_TOKEN}")
    return lines


def _delete_rules(columns: list[str], ri: str | None, notes: Notes) -> list[str]:
    """A delete sends each row's row identifier: the file's identifier column, named as the dataset's."""
    if not columns:
        notes.review.append("delete: the file's columns are unknown; the delivery needs the row identifier column")
        return []
    key = ri if ri in columns else columns[0]
    lines = ["    target_transforms:"]
    if key != (ri or key):
        lines.append(
            commented(f"      - rename: {flow({key: ri})}", "the identifiers, named as the dataset's row identifier")
        )
        key = ri
    elif ri is None:
        notes.review.append(f"delete: column {key!r} is taken to hold the row identifiers (the dataset was not read)")
    lines.append(commented(f"      - select: {flow([key])}", "a delete sends only the row identifier"))
    return lines


def _on_error(job: Job, control: dict) -> list[str]:
    if control.get("setAsideErrors"):
        return [
            "",
            "# setAsideErrors: true: rows that do not convert go to the rejects file and the run goes on.",
        ]
    return [
        "",
        "on_error:",
        commented("  max_rejects: 0", "as DataSync without setAsideErrors: one bad row fails the job"),
    ]


def _unmapped(job: Job, control: dict, notes: Notes) -> list[str]:
    """`# DataSync:` lines for the settings with no route equivalent."""
    lines = []
    if control.get("emptyTextIsNull") is False:
        lines.append("# DataSync: emptyTextIsNull: false: route reads an empty cell as null, never as empty text")
        notes.missing("emptyTextIsNull: false (an empty cell is null in route)")
    for column, override in (control.get("overrides") or {}).items():
        if override.get("emptyTextIsNull") is False:
            lines.append(f"# DataSync: overrides.{column}.emptyTextIsNull: false: route reads an empty cell as null")
            notes.missing(f"overrides.{column}.emptyTextIsNull: false")
        if override.get("trimServerWhitespace"):
            lines.append(
                f"# DataSync: overrides.{column}.trimServerWhitespace: rows already on the portal are not trimmed"
            )
            notes.missing(f"overrides.{column}.trimServerWhitespace (trim the rows already published)")
    simple = {
        "trimServerWhitespace": "rows already on the portal are not trimmed",
        "dropUninterpretableRows": "use on_error.max_rejects",
        "columnStatistics": "the portal computes its own",
    }
    for key, why in simple.items():
        if control.get(key) not in (None, False):
            lines.append(f"# DataSync: {key}: {flow(control[key])}: {why}")
            notes.missing(f"{key} ({why})")
    for text in job.elsewhere:
        lines.append(f"# DataSync: {text}")
        notes.missing(text)
    for key in ("opaque", "replacePreviousQueued"):
        if job.control_top.get(key) not in (None, False):
            lines.append(f"# DataSync: {key}: {flow(job.control_top[key])}: a delta-importer-2 setting, not needed")
            notes.missing(f"{key} (a delta-importer-2 setting)")
    return lines


def _variables(portal: Portal) -> list[str]:
    names = []
    if portal.domain == "${SOCRATA_DOMAIN}":
        names.append("SOCRATA_DOMAIN")
    if portal.domain != "local":
        names += ["SOCRATA_USERNAME", "SOCRATA_PASSWORD"]
        if "appToken" in portal.secrets:
            names.append("SOCRATA_APP_TOKEN")
    return names


def _description(job: Job) -> str:
    name = Path(job.data_file.replace("\\", "/")).name
    what = f"Deletes the rows listed in {name} from" if job.method == "delete" else f"Publishes {name} to"
    return f"{what} dataset {job.dataset} (from the DataSync job {job.path.name})."


def _route_name(stem: str) -> str:
    import re

    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-._")
    return name if name and name[0].isalnum() else "datasync-job"

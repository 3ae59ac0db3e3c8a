"""The files a DataSync standard job is made of: the job (.sij), its control file, its preferences.

A .sij job file is JSON (DataSync 0.3 and later); DataSync 0.1 saved it as a serialized Java
object, which is recognised by its first bytes and refused with a message saying what to do. The
control file (control.json) is read from the job's own copy of it (`controlFileContent`), from the
file the job names (`pathToControlFile`), or from --control. The preferences file (DataSync's
config.json) gives the portal's domain; its user name, password and app token are secrets and are
never written into a route. Unknown keys are refused, naming the file and the key: a misspelt
option must not disappear silently in a conversion.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path

from pipeline.basics.errors import RouteInvalid

JAVA_SERIALIZED = b"\xac\xed"  # the magic number of java.io.ObjectOutputStream

JOB_KEYS = {
    "datasetID",
    "fileToPublish",
    "publishMethod",
    "fileToPublishHasHeaderRow",
    "pathToControlFile",
    "pathToFTPControlFile",
    "controlFileContent",
    "ftpControlFileContent",
    "publishViaFTP",
    "publishViaDi2Http",
    "isPostNbeification",
    "fileVersionUID",
    "jobFilename",
    "pathToSavedFile",
    "pathToSavedJobFile",
    "fileRowsToDelete",
}
# Keys a hand-made job file sometimes carries, copied from config.json: read for the domain and
# for which variables to name; their values are never written anywhere.
SECRET_KEYS = {"username", "password", "appToken", "proxyUsername", "proxyPassword", "smtpUsername", "smtpPassword"}
PREFERENCE_KEYS = SECRET_KEYS | {
    "domain",
    "adminEmail",
    "emailUponError",
    "logDatasetID",
    "outgoingMailServer",
    "smtpPort",
    "sslPort",
    "smtpUsername",
    "smtpPassword",
    "filesizeChunkingCutoffMB",
    "numRowsPerChunk",
    "proxyHost",
    "proxyPort",
    "portDestinationDomainAppToken",
    "defaultTimeFormats",
}
CONTROL_KEYS = {"action", "opaque", "csv", "tsv", "replacePreviousQueued"}
FILE_TYPE_KEYS = {
    "encoding",
    "separator",
    "quote",
    "escape",
    "columns",
    "ignoreColumns",
    "skip",
    "trimWhitespace",
    "trimServerWhitespace",
    "emptyTextIsNull",
    "floatingTimestampFormat",
    "fixedTimestampFormat",
    "timezone",
    "dropUninterpretableRows",
    "overrides",
    "analyticLocations",
    "syntheticLocations",
    "syntheticPoints",
    "useSocrataGeocoding",
    "action",
    "columnStatistics",
    "setAsideErrors",
    "filePath",
    "hasHeaderRow",
}
OVERRIDE_KEYS = {
    "trimWhitespace",
    "trimServerWhitespace",
    "useSocrataGeocoding",
    "emptyTextIsNull",
    "timestampFormat",
    "timezone",
}
LOCATION_KEYS = {"address", "city", "state", "zip", "latitude", "longitude", "type"}
POINT_KEYS = {
    "point": {"latitude", "longitude", "type"},
    "geocoded": {"address", "city", "state", "zip", "country", "type"},
}
METHODS = ("replace", "upsert", "append", "delete")


@dataclass
class Job:
    """A DataSync standard job, as the conversion needs it."""

    path: Path
    dataset: str
    data_file: str  # fileToPublish, as written in the job
    method: str  # replace | upsert | append | delete, from the control file's action when it has one
    has_header: bool
    via: str  # "http" (delta-importer-2, 'replace via HTTP'), "ftp", or "soda2"
    control: dict | None  # the csv or tsv section of the control file
    control_kind: str = "csv"  # csv or tsv
    control_origin: str = ""  # where the control file came from, for messages and comments
    control_top: dict = field(default_factory=dict)  # the control file's other keys (opaque, ...)
    secrets: set[str] = field(default_factory=set)  # secret keys the job file held (never their values)
    domain: str | None = None  # from the job file itself, when it holds one
    elsewhere: list[str] = field(default_factory=list)  # preferences with no route equivalent


def read_json(path: Path, what: str) -> dict:
    """A JSON object from `path`; any problem is one message naming the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RouteInvalid(f"error: {path}: no such {what}") from None
    except OSError as exc:
        raise RouteInvalid(f"error: {path}: cannot read the {what}: {exc.strerror}") from None
    if data.startswith(JAVA_SERIALIZED):
        raise RouteInvalid(
            f"error: {path}: this {what} was saved by DataSync 0.1 as a serialized Java object, which "
            f"cannot be read safely here. Open it in DataSync (any version from 0.3 on) and save it "
            f"again: it is then saved as JSON, which `route import datasync` reads"
        )
    try:
        value = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise RouteInvalid(f"error: {path}: not a {what}: it is not text (a JSON file was expected)") from None
    except json.JSONDecodeError as exc:
        raise RouteInvalid(f"error: {path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise RouteInvalid(f"error: {path}: not a {what}: a JSON object {{...}} was expected")
    return value


def check_keys(obj: dict, known: set[str], where: str) -> None:
    """Refuse keys DataSync does not know, with the nearest known one."""
    for key in obj:
        if key not in known:
            near = get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else f" (known: {', '.join(sorted(known))})"
            raise RouteInvalid(f"error: {where}: unknown key '{key}'{hint}")


def read_job(path: Path, control: Path | None) -> Job:
    raw = read_json(path, "DataSync job file")
    other = _other_job(raw)
    if other:
        raise RouteInvalid(
            f"error: {path}: this is a DataSync {other}; `route import datasync` converts standard jobs "
            f"(a CSV or TSV file published to a dataset)"
        )
    check_keys(raw, JOB_KEYS | PREFERENCE_KEYS, f"{path}")
    dataset = _text(raw, "datasetID", path)
    if not dataset:
        raise RouteInvalid(f"error: {path}: the job names no dataset (datasetID)")
    if not re.fullmatch(r"[a-z0-9]{4}-[a-z0-9]{4}", dataset):
        raise RouteInvalid(f"error: {path}: datasetID {dataset!r} is not a dataset id (it has the form abcd-1234)")
    data_file = _text(raw, "fileToPublish", path)
    if not data_file:
        raise RouteInvalid(f"error: {path}: the job names no file to publish (fileToPublish)")
    via = "http" if raw.get("publishViaDi2Http") else "ftp" if raw.get("publishViaFTP") else "soda2"
    method = (_text(raw, "publishMethod", path) or "").lower()
    section, kind, origin, top = None, "csv", "", {}
    content = raw.get("controlFileContent") or raw.get("ftpControlFileContent")
    named = raw.get("pathToControlFile") or raw.get("pathToFTPControlFile")
    if control is not None:
        section, kind, top = read_control(read_json(control, "control file"), control, data_file)
        origin = str(control)
    elif named:
        named_path = locate(named, path)
        section, kind, top = read_control(read_json(named_path, "control file"), named_path, data_file)
        origin = str(named_path)
    elif content:
        try:
            parsed = json.loads(content)
        except (TypeError, json.JSONDecodeError) as exc:
            raise RouteInvalid(
                f"error: {path}: the control file held in controlFileContent is not valid JSON: {exc}"
            ) from None
        if not isinstance(parsed, dict):
            raise RouteInvalid(f"error: {path}: the control file held in controlFileContent is not a JSON object")
        section, kind, top = read_control(parsed, Path(f"{path} (controlFileContent)"), data_file)
        origin = f"{path.name} (the control file it holds)"
    action = (top.get("action") or (section or {}).get("action") or "").lower()
    method = action or method
    if method not in METHODS:
        raise RouteInvalid(
            f"error: {path}: publish method {method!r} is not one of {', '.join(METHODS)}"
            if method
            else f"error: {path}: the job has no publishMethod, and no control file gives an action"
        )
    return Job(
        path=path,
        dataset=dataset,
        data_file=data_file,
        method=method,
        has_header=raw.get("fileToPublishHasHeaderRow", True) is not False,
        via=via,
        control=section,
        control_kind=kind,
        control_origin=origin,
        control_top={k: v for k, v in top.items() if k not in ("csv", "tsv")},
        secrets={k for k in SECRET_KEYS if raw.get(k)},
        domain=raw.get("domain") or None,
    )


def _other_job(raw: dict) -> str:
    """What kind of DataSync job other than a standard one `raw` is ("" for a standard job)."""
    if {"sourceSiteDomain", "portMethod", "sourceSetID", "sinkSetID"} & raw.keys():
        return (
            "port job (it copies a dataset): a route with the socrata source and the socrata "
            "delivery does the same (docs/socrata.md)"
        )
    if "layerMap" in raw:
        return "GIS job (it publishes a shapefile or GeoJSON layer)"
    if {"title", "keywords"} & raw.keys() and "fileToPublish" not in raw:
        return "metadata job: a socrata target's `metadata:` block does the same (docs/metadata.md)"
    return ""


def read_control(doc: dict, where: Path, data_file: str) -> tuple[dict, str, dict]:
    """The csv or tsv section of a control file (the one that fits the data file), its kind, the file."""
    check_keys(doc, CONTROL_KEYS, f"{where}")
    kinds = [k for k in ("csv", "tsv") if isinstance(doc.get(k), dict)]
    if not kinds:
        raise RouteInvalid(f'error: {where}: the control file has no "csv" or "tsv" section')
    suffix = Path(data_file.replace("\\", "/")).suffix.lower()
    kind = "tsv" if "tsv" in kinds and (suffix in (".tsv", ".tab") or "csv" not in kinds) else kinds[0]
    section = doc[kind]
    check_keys(section, FILE_TYPE_KEYS, f"{where}: {kind}")
    for name, override in (section.get("overrides") or {}).items():
        if not isinstance(override, dict):
            raise RouteInvalid(f"error: {where}: {kind}.overrides.{name}: an object was expected")
        check_keys(override, OVERRIDE_KEYS, f"{where}: {kind}.overrides.{name}")
    for group in ("syntheticLocations", "analyticLocations"):
        for name, location in (section.get(group) or {}).items():
            if not isinstance(location, dict):
                raise RouteInvalid(f"error: {where}: {kind}.{group}.{name}: an object was expected")
            check_keys(location, LOCATION_KEYS, f"{where}: {kind}.{group}.{name}")
    for name, point in (section.get("syntheticPoints") or {}).items():
        if not isinstance(point, dict) or point.get("type") not in POINT_KEYS:
            raise RouteInvalid(
                f'error: {where}: {kind}.syntheticPoints.{name}: an object with "type": "point" '
                f'(latitude and longitude columns) or "geocoded" (address columns) was expected'
            )
        check_keys(point, POINT_KEYS[point["type"]], f"{where}: {kind}.syntheticPoints.{name}")
    for key in ("columns", "ignoreColumns"):
        value = section.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise RouteInvalid(f"error: {where}: {kind}.{key}: a list of column names was expected")
    skip = section.get("skip")
    if skip is not None and (not isinstance(skip, int) or isinstance(skip, bool) or skip < 0):
        raise RouteInvalid(f"error: {where}: {kind}.skip: a number of rows (0 or more) was expected")
    return section, kind, doc


def read_preferences(path: Path) -> tuple[str | None, set[str], list[str]]:
    """DataSync's config.json: the domain, which secrets it holds (their values are dropped), and
    what it asks for that a route does elsewhere."""
    prefs = read_json(path, "DataSync preferences file (config.json)")
    check_keys(prefs, PREFERENCE_KEYS, f"{path}")
    elsewhere = []
    if prefs.get("logDatasetID"):
        elsewhere.append(
            f"logDatasetID {prefs['logDatasetID']}: route keeps its own run history; "
            f"a log dataset is `log_dataset:` in the folder's defaults.yaml (docs/unattended.md)"
        )
    if prefs.get("adminEmail") and str(prefs.get("emailUponError")).lower() == "true":
        elsewhere.append("emailUponError: give the route a `notify:` block (docs/unattended.md)")
    return (prefs.get("domain") or None), {k for k in SECRET_KEYS if prefs.get(k)}, elsewhere


def formats(value) -> list[str]:
    """A timestamp format option: one string or a list of them (DataSync accepts both)."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _text(raw: dict, key: str, path: Path) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RouteInvalid(f"error: {path}: {key} must be text, not {json.dumps(value)}")
    return value.strip()


def locate(written: str, job: Path) -> Path:
    """A file the job names: relative to the job file, or as written; a path from another machine
    (C:\\data\\x.csv) is looked for beside the job file by its name. The first candidate when
    none exists (the route then names it, and `route validate` says it is missing)."""
    path = Path(written)
    name = Path(written.replace("\\", "/")).name
    absolute = path.is_absolute() or re.match(r"^([A-Za-z]:)?[\\/]", written)
    candidates = [path] if absolute else [job.parent / path, path]
    candidates.append(job.parent / name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[0]

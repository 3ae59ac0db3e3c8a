"""Projects: a folder of route files sharing a `defaults.yaml` (portal, auth, state, notify, profiles).

A route file stays valid on its own: defaults fill only what it leaves out, and a profile
(`--profile test`) points every write at another portal. The merged route keeps a side table from
each filled-in path to its place in defaults.yaml, so a problem with a shared value is reported at
defaults.yaml's line, not at the route's.

    socrata: {domain: https://data.ct.gov, auth: {username: "${SOCRATA_USER}", password: "${SOCRATA_PASSWORD}"}}
    state: /var/lib/route
    notify: [{email: {to: ops@agency.gov, host: smtp.agency.gov}}]
    profiles:
      test: {socrata: {domain: https://agency-test.data.socrata.com}, datasets: {abcd-1234: wxyz-9876}}
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.basics.errors import Problem, RouteInvalid, suggest
from pipeline.route.schemacheck import route_schema, to_problems
from pipeline.route.yamlfile import Document, format_path, load_yaml_file, value_at
from pipeline.state.place import SharedState, artifacts_place, state_place

DEFAULTS_NAMES = ("defaults.yaml", "defaults.yml")
# Profiles that work without a defaults.yaml: `--profile local` writes to the embedded portal.
BUILTIN_PROFILES = {"local": {"socrata": {"domain": "local"}}}
_UNSET = re.compile("\x00unset:([A-Za-z_][A-Za-z0-9_]*)\x00")


class LenientVariables(Mapping):
    """Variables where a missing name yields a marker instead of a problem.

    defaults.yaml may name credentials that only some routes use; a missing one is reported only
    where a route actually uses the value (see Project.unset_problems)."""

    def __init__(self, variables: Mapping[str, str]):
        self._vars = variables

    def __contains__(self, name) -> bool:
        return True

    def __getitem__(self, name: str) -> str:
        return self._vars[name] if name in self._vars else f"\x00unset:{name}\x00"

    def __iter__(self) -> Iterator[str]:
        return iter(self._vars)

    def __len__(self) -> int:
        return len(self._vars)


@cache
def defaults_schema() -> dict:
    """The JSON schema of defaults.yaml, shipped in the `schemas` package."""
    return json.loads(resources.files("schemas").joinpath("defaults.schema.json").read_text(encoding="utf-8"))


def _validator():
    import jsonschema
    from referencing import Registry, Resource

    schema = defaults_schema()
    route = route_schema()
    registry = Registry().with_resource(route["$id"], Resource.from_contents(route))
    cls = jsonschema.Draft202012Validator
    return cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)


@dataclass
class MergedDocument(Document):
    """A route with project defaults filled in; problems at filled-in paths point at defaults.yaml."""

    origins: dict[tuple, tuple[Document, tuple]] = field(default_factory=dict)

    def problem(self, path, message: str, at_key: bool = False, offset: int | None = None) -> Problem:
        path = tuple(path)
        for n in range(len(path), 0, -1):
            if path[:n] in self.origins:
                odoc, opath = self.origins[path[:n]]
                return odoc.problem(
                    opath + path[n:],
                    f"{message} (used by {self.file} at {format_path(path)})",
                    at_key=at_key,
                    offset=offset,
                )
        return super().problem(path, message, at_key=at_key, offset=offset)


@dataclass
class Project:
    """The defaults of one folder of routes, with the chosen profile applied."""

    folder: Path
    doc: Document | None
    profile: str | None = None
    settings: dict = field(default_factory=dict)  # top-level keys, profile keys winning
    origins: dict[str, tuple] = field(default_factory=dict)  # settings key -> its path in doc
    socrata: dict = field(default_factory=dict)  # fills sources and deliveries
    profile_socrata: dict = field(default_factory=dict)  # overrides deliveries
    datasets: dict = field(default_factory=dict)  # delivery dataset id -> profile's id

    @property
    def state_dir(self) -> Path | SharedState | None:
        """The `state:` setting: a folder (relative to defaults.yaml) or a database (state/place.py)."""
        state = self.settings.get("state")
        if not isinstance(state, str):
            return None
        return state_place(state, base=self.folder, scratch=self.folder / ".route", artifacts=self.artifacts)

    @property
    def artifacts(self) -> str | None:
        value = self.settings.get("artifacts")
        return artifacts_place(value, self.folder) if isinstance(value, str) else None

    def setting(self, key: str, default: Any = None) -> Any:
        value = self.settings.get(key)
        return default if value is None else value

    def log_dataset(self) -> dict | None:
        """The log dataset's options with the portal defaults (and the profile's dataset map) applied."""
        log = self.settings.get("log_dataset")
        if not isinstance(log, dict):
            return None
        out = dict(log)
        portal = {**self.socrata, **self.profile_socrata}
        out.setdefault("domain", portal.get("domain"))
        if "auth" not in out and _same_domain(out.get("domain"), portal.get("domain")):
            out["auth"] = portal.get("auth") or {}
        out["dataset"] = self.datasets.get(out["dataset"], out["dataset"])
        return out

    def unset_problems(self, key: str, value: Any = None) -> list[Problem]:
        """Problems for `${VAR}`s not set in the setting `key` (or the given part of it)."""
        if key not in self.origins or self.doc is None:
            return []
        return _unset(self.doc, self.origins[key], self.settings.get(key) if value is None else value)

    # -- merging into a route -------------------------------------------------------------------

    def apply(self, doc: Document) -> tuple[Document, list[Problem]]:
        """The route `doc` with these defaults filled in, and problems in the values it took."""
        data = copy.deepcopy(doc.data)
        origins: dict[tuple, tuple[Document | None, tuple]] = {}
        self._fill_socrata(data, origins)
        if self.doc is not None:
            self._fill(data, origins)
        origins = {p: o for p, o in origins.items() if o[0] is not None}  # built-in profiles have no file
        secrets = set(doc.secrets) | (self.doc.secrets if self.doc else set())
        merged = MergedDocument(
            file=doc.file,
            data=data,
            marks=doc.marks,
            key_marks=doc.key_marks,
            styles=doc.styles,
            secrets=secrets,
            origins=origins,
        )
        return merged, [p for path in origins for p in _unset(merged, path, value_at(data, path))]

    def _fill(self, data: dict, origins: dict) -> None:
        if "notify" in self.settings and (self.origins["notify"][0] == "profiles" or "notify" not in data):
            data["notify"] = copy.deepcopy(self.settings["notify"])
            origins[("notify",)] = (self.doc, self.origins["notify"])
        if "timezone" not in data and isinstance(self.settings.get("timezone"), str):
            data["timezone"] = self.settings["timezone"]
            origins[("timezone",)] = (self.doc, self.origins["timezone"])

    def _fill_socrata(self, data: dict, origins: dict) -> None:
        places = [(("source",), data.get("source"))]
        places += [
            (("targets", i, "deliver"), t.get("deliver"))
            for i, t in enumerate(data.get("targets") or [])
            if isinstance(t, dict)
        ]
        for path, comp in places:
            if not isinstance(comp, dict) or not isinstance(comp.get("socrata"), dict):
                continue
            opts, base = comp["socrata"], path + ("socrata",)
            own_domain = "domain" in opts
            for key, value in self.socrata.items():
                if key in opts or (
                    key == "auth" and own_domain and not _same_domain(opts["domain"], self.socrata.get("domain"))
                ):
                    continue  # never send the project's credentials to another portal
                opts[key] = copy.deepcopy(value)
                origins[base + (key,)] = (self.doc, ("socrata", key))
            if path[0] != "targets":
                continue  # a profile changes where routes write, not where they read
            for key, value in self.profile_socrata.items():
                opts[key] = copy.deepcopy(value)
                origins[base + (key,)] = (self.doc, ("profiles", self.profile, "socrata", key))
            production = opts.get("dataset")
            if production in self.datasets:
                opts["dataset"] = self.datasets[production]
                origins[base + ("dataset",)] = (self.doc, ("profiles", self.profile, "datasets", production))


def find_defaults(folder: Path) -> Path | None:
    """The folder's defaults.yaml (or .yml), if it has one."""
    for name in DEFAULTS_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def load_project(folder: str | Path, variables: Mapping[str, str], profile: str | None = None) -> Project | None:
    """The project of `folder` (None without defaults.yaml and profile); RouteInvalid for its problems."""
    folder = Path(folder).resolve()
    file = find_defaults(folder)
    if file is None:
        if profile is None:
            return None
        if profile in BUILTIN_PROFILES:
            return Project(folder, None, profile, profile_socrata=dict(BUILTIN_PROFILES[profile]["socrata"]))
        raise RouteInvalid(
            f"error: --profile {profile}: there is no defaults.yaml in {folder} to define it "
            f"(built-in profiles: {', '.join(BUILTIN_PROFILES)})"
        )
    doc = load_yaml_file(file, LenientVariables(variables), shown_as=_shown(file))
    data = doc.data
    if not isinstance(data, dict):
        raise RouteInvalid(
            [
                doc.problem(
                    (),
                    "defaults.yaml is a mapping of shared settings: socrata, state, notify, "
                    "log_dataset, logs, stale, timezone, profiles",
                )
            ]
        )
    from pipeline.route.notifyconfig import check_targets, fix_on_keys

    places = [(data.get("notify"), ("notify",))]
    places += [
        (p.get("notify"), ("profiles", n, "notify"))
        for n, p in (data.get("profiles") or {}).items()
        if isinstance(p, dict)
    ]
    for config, path in places:
        fix_on_keys(doc, config, path)
    problems = [p for e in _validator().iter_errors(data) for p in to_problems(doc, e, ())]
    for config, path in places:
        problems += check_targets(doc, config, path)
    problems += _zone_problems(doc, data)
    if problems:
        raise RouteInvalid(problems)
    project = Project(folder, doc, profile)
    for key, value in data.items():
        if key != "profiles":
            project.settings[key], project.origins[key] = value, (key,)
    project.socrata = dict(data.get("socrata") or {})
    if profile is not None:
        profiles = data.get("profiles") or {}
        chosen = profiles.get(profile)
        if chosen is None and profile in BUILTIN_PROFILES:
            chosen = BUILTIN_PROFILES[profile]
        elif chosen is None:
            known = ", ".join(profiles) or "none"
            raise RouteInvalid(
                [
                    doc.problem(
                        ("profiles",) if profiles else (),
                        f"--profile {profile} is not defined here (profiles: {known}){suggest(profile, profiles)}",
                        at_key=bool(profiles),
                    )
                ]
            )
        for key, value in (chosen or {}).items():
            if key == "socrata":
                project.profile_socrata = dict(value or {})
            elif key == "datasets":
                project.datasets = dict(value or {})
            else:
                project.settings[key], project.origins[key] = value, ("profiles", profile, key)
    return project


def with_project(
    doc: Document,
    route_file: Path,
    variables: Mapping[str, str],
    project: Project | None = None,
    profile: str | None = None,
) -> tuple[Document, Project | None, list[Problem]]:
    """The route with its folder's defaults (and `profile`) applied; problems found on the way."""
    from pipeline.route.notifyconfig import check_targets, fix_on_keys

    problems = []
    if isinstance(doc.data, dict):
        fix_on_keys(doc, doc.data.get("notify"), ("notify",))
        problems = check_targets(doc, doc.data.get("notify"), ("notify",))
    if project is None:
        project = load_project(Path(route_file).resolve().parent, variables, profile)
    if project is None or not isinstance(doc.data, dict):
        return doc, project, problems
    merged, found = project.apply(doc)
    if project.doc is not None:
        for key in ("log_dataset",):
            found += project.unset_problems(key)
    return merged, project, problems + found


def state_dir_for(
    route_file: Path, explicit: str | Path | None, project: Project | None, route_data: Any = None
) -> Path | SharedState:
    """--state, else the route's `state`, else the project's, else `.route` beside the route file.

    A database URL gives a SharedState whose scratch folder is `.route` beside the route file and
    whose artifacts are the route's `artifacts`, else the project's."""
    folder = Path(route_file).resolve().parent
    own = route_data if isinstance(route_data, dict) else {}
    artifacts = own.get("artifacts") if isinstance(own.get("artifacts"), str) else None
    artifacts = artifacts_place(artifacts, folder) if artifacts else (project.artifacts if project else None)
    if explicit:
        return state_place(explicit, base=Path.cwd(), scratch=folder / ".route", artifacts=artifacts)
    if isinstance(own.get("state"), str):
        return state_place(own["state"], base=folder, scratch=folder / ".route", artifacts=artifacts)
    if project is not None and project.state_dir is not None:
        found = project.state_dir
        if isinstance(found, SharedState):
            return SharedState(found.url, folder / ".route", artifacts)
        return found
    return folder / ".route"


def parse_duration(text: str) -> float:
    """Seconds in '90s', '15m', '2h', '1d'."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", str(text))
    if not match:
        raise ValueError(f"'{text}' is not a duration such as 90s, 15m, 2h or 1d")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def _zone_problems(doc: Document, data: dict) -> list[Problem]:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    places = [(("timezone",), data.get("timezone"))]
    places += [
        (("profiles", n, "timezone"), p.get("timezone"))
        for n, p in (data.get("profiles") or {}).items()
        if isinstance(p, dict)
    ]
    out = []
    for path, zone in places:
        if isinstance(zone, str):
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                out.append(doc.problem(path, f"unknown time zone '{zone}': use an IANA name such as America/New_York"))
    return out


def _unset(doc: Document, base: tuple, value: Any, sub: tuple = ()) -> list[Problem]:
    if isinstance(value, str):
        return [
            doc.problem(
                base + sub,
                f"variable ${{{m.group(1)}}} is not set: export {m.group(1)}=... or pass --set {m.group(1)}=...",
            )
            for m in _UNSET.finditer(value)
        ]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _unset(doc, base, v, sub + (k,))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _unset(doc, base, v, sub + (i,))]
    return []


def _same_domain(a: Any, b: Any) -> bool:
    def norm(d):
        d = str(d or "local").strip().lower().rstrip("/")
        return d if "://" in d or d == "local" else "https://" + d

    return norm(a) == norm(b)


def _shown(file: Path) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    try:
        return str(file.relative_to(Path.cwd()))
    except ValueError:
        return str(file)

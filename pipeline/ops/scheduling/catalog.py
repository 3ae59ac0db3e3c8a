"""The routes a scheduler (or `route status`) looks after: found in folders, re-read when they change.

Each route file is read lightly (YAML, the folder's defaults, its schedule), never planned: a
route that cannot be read is kept with its problem so status can show it, and planning happens at
each run. A change of the route file or of its folder's defaults.yaml re-reads the route. The YAML
files of a folder that are not routes (pipeline/route/files.py) are left out, and said once on
stderr (the terminal of `route status`, the journal of `route schedule`) when they first show.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.basics.errors import RouteInvalid
from pipeline.ops.scheduling.cron import Schedule, ScheduleError
from pipeline.route.files import find_route_files, not_a_route, skipped_note, yaml_files
from pipeline.route.project import LenientVariables, Project, find_defaults, state_dir_for, with_project
from pipeline.route.yamlfile import load_yaml_file


@dataclass
class RouteEntry:
    """What scheduling knows about one route file, read without planning it."""

    file: Path
    name: str
    state_dir: Path
    schedule: Schedule | None = None
    schedule_text: str | None = None
    problem: str | None = None  # why this route cannot run or be scheduled
    keys: frozenset = frozenset()  # what it writes: at most one writer per key at a time
    notify: Any = None
    project: Project | None = None
    stamp: tuple = ()
    data: dict = field(default_factory=dict)
    carried: bool = False  # unreadable now: schedule (and name, notify) kept from before


def route_paths(paths: list[str | Path]) -> list[Path]:
    """Route files named, and every route file under the folders named (see pipeline/route/files.py)."""
    return find_route_files(paths)


def stamp_of(file: Path) -> tuple:
    """What tells a changed route: its file's and its defaults.yaml's mtime and size."""
    out = []
    for p in (file, find_defaults(file.resolve().parent)):
        try:
            st = p.stat() if p else None
            out.append((st.st_mtime_ns, st.st_size) if st else None)
        except OSError:
            out.append(None)
    return tuple(out)


def load_entry(
    file: Path, variables: Mapping[str, str], profile: str | None = None, state: str | Path | None = None
) -> RouteEntry:
    """Read what scheduling needs from a route file; problems are kept in the entry, not raised."""
    stamp = stamp_of(file)
    entry = RouteEntry(file, file.stem, state_dir_for(file, state, None), stamp=stamp)
    lenient = LenientVariables(variables)
    try:
        doc = load_yaml_file(file, lenient)
        if not isinstance(doc.data, dict):
            raise RouteInvalid([doc.problem((), "a route file is a mapping with name, source and targets")])
        doc, project, _ = with_project(doc, file, lenient, profile=profile)
    except RouteInvalid as exc:
        entry.problem = str(exc)
        return entry
    data = doc.data
    entry.data, entry.project = data, project
    entry.name = str(data.get("name") or file.stem)
    entry.state_dir = state_dir_for(file, state, project, data)
    entry.notify = data.get("notify")
    entry.keys = write_keys(data, file, entry.state_dir)
    text = data.get("schedule")
    if text is not None:
        entry.schedule_text = str(text)
        try:
            entry.schedule = Schedule(str(text), data.get("timezone"))
        except ScheduleError as exc:
            entry.problem = str(doc.problem(("timezone",) if "time zone" in str(exc) else ("schedule",), str(exc)))
    return entry


def delivery_of(target) -> tuple[str, dict] | None:
    """(kind, options) of a target as the route file spells it, before validation; None if unclear."""
    deliver = target.get("deliver") if isinstance(target, dict) else None
    kinds = [k for k in deliver if k != "label"] if isinstance(deliver, dict) else []
    if len(kinds) != 1:
        return None
    opts = deliver[kinds[0]]
    return kinds[0], opts if isinstance(opts, dict) else {}


def write_keys(data: dict, file: Path, state_dir: Path) -> frozenset:
    """One key per thing a target writes: a dataset, a file, a table."""
    keys = set()
    for i, target in enumerate(data.get("targets") or []):
        found = delivery_of(target)
        if found is None:
            continue
        kind, opts = found
        if kind == "socrata":
            domain = str(opts.get("domain") or "local").rstrip("/").lower()
            portal = f"local:{Path(state_dir).resolve()}" if domain == "local" else domain.split("://")[-1]
            keys.add(("socrata", portal, opts.get("dataset") or f"create:{(opts.get('create') or {}).get('name')}"))
        elif "path" in opts:
            # normpath, not resolve(): the path may still hold an unset ${VAR} marker
            keys.add(("file", os.path.normpath(file.resolve().parent / str(opts["path"]))))
        elif "table" in opts:
            keys.add((kind, str(opts.get("url")), str(opts.get("schema") or ""), str(opts["table"])))
        else:
            keys.add((kind, str(file.resolve()), i))
    return frozenset(keys)


class Catalog:
    """The current routes of some folders and files, re-read when they change."""

    def __init__(
        self,
        paths: list[str | Path],
        variables: Mapping[str, str],
        profile: str | None = None,
        state: str | Path | None = None,
        on_skip: Callable[[str], None] | None = None,
    ):
        self.paths = list(paths)
        self.variables, self.profile, self.state = variables, profile, state
        self.entries: dict[Path, RouteEntry] = {}
        # YAML files found in the folders that are not routes: path -> (why, stamp when looked at)
        self.skipped: dict[Path, tuple[str, tuple]] = {}
        self.on_skip = on_skip or _say_on_stderr

    def scan(self) -> list[tuple[str, RouteEntry]]:
        """Re-read what changed; returns (what happened, entry) for added, changed and removed routes."""
        changes = []
        seen = set()
        newly_skipped = []
        for file, named in yaml_files(self.paths):
            key = file.resolve()
            stamp = stamp_of(file)
            if not named and key in self.skipped and self.skipped[key][1] == stamp:
                continue
            why = None if named else not_a_route(file)
            if why is not None:
                self.skipped[key] = (why, stamp)
                newly_skipped.append((file, why))
                continue
            self.skipped.pop(key, None)
            seen.add(key)
            old = self.entries.get(key)
            if old is not None and old.stamp == stamp:
                continue
            entry = load_entry(file, self.variables, self.profile, self.state)
            if entry.problem and entry.schedule is None and old is not None and old.schedule is not None:
                entry = _carry(entry, old)
            self.entries[key] = entry
            changes.append(("added" if old is None else "changed", entry))
        for key in [k for k in self.entries if k not in seen]:
            changes.append(("removed", self.entries.pop(key)))
        self._check_names()
        if newly_skipped:
            self.on_skip(skipped_note(newly_skipped))
        return changes

    def _check_names(self) -> None:
        first: dict[tuple, RouteEntry] = {}
        for entry in sorted(self.entries.values(), key=lambda e: str(e.file)):
            if entry.problem and entry.problem.startswith("route name"):
                entry.problem = None
            key = (entry.name, str(entry.state_dir))
            if key in first and entry.problem is None:
                entry.problem = (
                    f"route name '{entry.name}' is also used by {first[key].file}: names must be unique "
                    f"(they name the history, locks and logs)"
                )
            first.setdefault(key, entry)

    def routes(self) -> list[RouteEntry]:
        return sorted(self.entries.values(), key=lambda e: e.name)


def _say_on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _carry(entry: RouteEntry, old: RouteEntry) -> RouteEntry:
    """A route file that read before and no longer does keeps its last schedule, so that the
    scheduler can record (and notify) each run it misses instead of dropping the route silently;
    what the file can no longer say (its name, state folder, notify) comes from the last version."""
    if not entry.data:  # not even YAML: nothing of the new version can be trusted
        entry.name, entry.state_dir, entry.notify = old.name, old.state_dir, old.notify
        entry.project, entry.keys = old.project, old.keys
    entry.schedule, entry.schedule_text, entry.carried = old.schedule, old.schedule_text, True
    return entry

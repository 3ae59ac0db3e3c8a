"""Which files are route files: those named, and the route files among the YAML under the folders named.

A folder is searched at any depth, as `route test` does, skipping hidden folders (`.route/`,
`.git/`), the cases of `route test` (`NAME.tests/`) and Python caches; `defaults.yaml` is a
project's defaults, never a route. A folder of routes often holds other YAML too (notification
settings, a CI file, a test case's `case.yaml`): a YAML file found in a folder with none of a
route's own keys at its top (`source`, `source_transforms`, `targets`, `schedule`) is skipped,
and the commands say in one line which files they skipped and why, so that nothing is dropped in
silence. A file named on the command line is always taken as a route, and so is a file whose
YAML does not even parse: its problem is reported at its line rather than guessed away.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.route.yamllimits import MAX_FILE_BYTES, BoundedLoader

_SKIPPED_FOLDERS = ("__pycache__", "node_modules")
# Keys only a route file has at its top (a schedule alone is a route being written, whose problems
# must show); a case.yaml may give a `source` of its own, never targets.
_ROUTE_KEYS = ("source", "source_transforms", "targets", "schedule")


@dataclass
class RouteFiles:
    """The route files under some paths, and the YAML files skipped there with why."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def note(self) -> str:
        """One line naming the skipped files, or "" when none was skipped."""
        return skipped_note(self.skipped)


def scan_route_files(paths: Iterable[str | Path]) -> RouteFiles:
    """The route files named, and those found under the folders named, in a stable order."""
    out = RouteFiles()
    for path, named in yaml_files(paths):
        why = None if named else not_a_route(path)
        if why is None:
            out.files.append(path)
        else:
            out.skipped.append((path, why))
    return out


def find_route_files(paths: Iterable[str | Path]) -> list[Path]:
    """The route files named, and those found under the folders named (skipped files left out)."""
    return scan_route_files(paths).files


def yaml_files(paths: Iterable[str | Path]) -> list[tuple[Path, bool]]:
    """(file, named on the command line) for each file named and each YAML file under the folders named."""
    found: list[tuple[Path, bool]] = []
    for p in paths:
        path = Path(p)
        found.extend([(f, False) for f in sorted(_yaml_files(path))] if path.is_dir() else [(path, True)])
    return found


def not_a_route(path: Path) -> str | None:
    """Why a YAML file found in a folder is not a route file, or None when it may be one.

    Only the top-level keys are looked at (through the bounded loader, so a hostile file costs
    nothing); a file that cannot be read or parsed may be a broken route and is left to the loader."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        text = path.read_text(encoding="utf-8-sig")
        loader = BoundedLoader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if root is None:
        return "empty"
    if not isinstance(root, yaml.MappingNode):
        return "not a mapping of route settings"
    keys = {k.value for k, _ in root.value if isinstance(k, yaml.ScalarNode)}
    if path.stem == "case" and "targets" not in keys:
        return "the options of a `route test` case"
    if not keys & set(_ROUTE_KEYS):
        return "no source or targets"
    return None


def skipped_note(skipped: list[tuple[Path, str]]) -> str:
    """`note: skipped N YAML files that are not route files: a.yaml (why), ...`, or ""."""
    if not skipped:
        return ""
    listed = ", ".join(f"{path} ({why})" for path, why in skipped)
    if len(skipped) == 1:
        return f"note: skipped a YAML file that is not a route file: {listed}"
    return f"note: skipped {len(skipped)} YAML files that are not route files: {listed}"


def _yaml_files(folder: Path):
    for entry in folder.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if entry.name.endswith(".tests") or entry.name in _SKIPPED_FOLDERS:
                continue
            yield from _yaml_files(entry)
        elif entry.suffix in (".yaml", ".yml") and entry.stem != "defaults" and entry.is_file():
            yield entry

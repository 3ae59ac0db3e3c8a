"""Which files are route files: those named, and every *.yaml / *.yml under the folders named.

A folder is searched at any depth, as `route test` does, skipping hidden folders (`.route/`,
`.git/`), the cases of `route test` (`NAME.tests/`) and Python caches; `defaults.yaml` is a
project's defaults, not a route. A YAML file that is not a route is reported as an invalid route
file, like any other mistake, rather than skipped in silence.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

_SKIPPED_FOLDERS = ("__pycache__", "node_modules")


def find_route_files(paths: Iterable[str | Path]) -> list[Path]:
    """The route files named, and those found under the folders named, in a stable order."""
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        files.extend(sorted(_yaml_files(path)) if path.is_dir() else [path])
    return files


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

"""The `state:` setting read: a folder, or a database shared by every machine that runs routes.

`state: /var/lib/route` (or nothing: `.route` beside the route file) keeps everything in a folder,
as route always has. `state: postgresql://route@db.example.org/route` (or `sqlite:///...`) keeps
history, incremental marks, delivery journals, created datasets, notices, sync hashes and locks in
that database, so several machines can share the work and take over from each other; the password
goes in PGPASSWORD or ~/.pgpass, or as ${env:...} in the URL: the URL is never shown with it.

With a database, files still have a home: `artifacts:` (a folder or an fsspec URL every machine
can reach) takes rejects files and run logs, and a local scratch folder (`.route` beside the route
file) takes temporary files, downloads and the embedded local portal.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DATABASE_SCHEMES = ("postgresql", "postgres", "sqlite")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def is_database_url(text: object) -> bool:
    """Does this `state:` value name a database rather than a folder?"""
    match = _SCHEME.match(str(text)) if isinstance(text, str | os.PathLike) else None
    return bool(match) and match.group(1).split("+")[0].lower() in DATABASE_SCHEMES


def masked(url: str) -> str:
    """The URL as it may be shown: any password replaced by ***."""
    from pipeline.basics.sqlurls import mask_url

    return mask_url(url)


@dataclass(frozen=True)
class SharedState(os.PathLike):
    """A state kept in a database. It stands where a state folder stands (it is path-like: its local
    scratch folder), so code that keeps files beside the state keeps them in the scratch folder,
    and code that keeps records asks `shared()` and goes to the database."""

    url: str
    scratch: Path
    artifacts: str | None = None

    def __fspath__(self) -> str:
        return str(self.scratch)

    def __truediv__(self, other) -> Path:
        return self.scratch / other

    def __getattr__(self, name: str):
        """Path methods (mkdir, exists, resolve...) act on the scratch folder."""
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.scratch, name)

    def __str__(self) -> str:
        return masked(self.url)

    def __repr__(self) -> str:
        return f"SharedState({masked(self.url)!r})"


def shared(state_dir: object) -> SharedState | None:
    """The database state, when the state is one; None for a state folder."""
    return state_dir if isinstance(state_dir, SharedState) else None


def state_place(
    value: str | os.PathLike,
    *,
    base: Path,
    scratch: Path,
    artifacts: str | os.PathLike | None = None,
) -> Path | SharedState:
    """A folder (relative to `base`) or a SharedState for a database URL; `artifacts` relative to
    `base` when it is a folder."""
    if isinstance(value, SharedState):
        return value
    if is_database_url(value):
        text = str(value)
        if text.lower().startswith("sqlite:///") and not text.lower().startswith("sqlite:////"):
            path = Path(text[len("sqlite:///") :]).expanduser()  # relative to the defaults file
            text = "sqlite:///" + str(path if path.is_absolute() else (base / path).resolve())
        return SharedState(text, Path(scratch), artifacts_place(artifacts, base))
    return (Path(base) / Path(value).expanduser()).resolve() if not Path(value).is_absolute() else Path(value)


def artifacts_place(value: str | os.PathLike | None, base: Path) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    if _SCHEME.match(text) and not text.lower().startswith("file://"):
        return text
    path = Path(text.removeprefix("file://")).expanduser()
    return str(path if path.is_absolute() else (Path(base) / path).resolve())


def artifacts_folder(state_dir: Path | SharedState) -> Path:
    """The local folder a run writes its log and rejects file in: the state folder, the artifacts
    folder, or (when artifacts are an fsspec URL, copied there once the run ends) the scratch folder."""
    found = shared(state_dir)
    if found is None:
        return Path(state_dir)
    if found.artifacts and not _SCHEME.match(found.artifacts):
        return Path(found.artifacts)
    return found.scratch


def identity(state_dir: Path | SharedState) -> str:
    """What tells two states apart: a database's URL, a folder's resolved path."""
    found = shared(state_dir)
    return found.url if found is not None else str(Path(state_dir).resolve())


def from_option(value: str | os.PathLike) -> Path | SharedState:
    """A `--state` value given on the command line: a folder (relative to here) or a database URL."""
    return state_place(value, base=Path.cwd(), scratch=Path.cwd() / ".route")

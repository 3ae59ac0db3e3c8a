"""Rejects files and run logs of a database state, copied to `artifacts:` when that is a URL.

A run writes its log and rejects file in a local folder (pipeline/state/place.py:artifacts_folder)
as it goes; when `artifacts:` is an fsspec URL (s3://..., sftp://...), they are copied there once
the run has ended, so that every machine (and the dashboard) can reach them, and the history
records the rejects file by its URL. A copy that fails is a warning: the run's outcome stands, and
the file stays in the local folder, named in the warning.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from pipeline.state.place import shared


def artifacts_url(state_dir) -> str | None:
    """The fsspec URL artifacts go to, when they go to one (None: they stay where they were written)."""
    state = shared(state_dir)
    if state is None or not state.artifacts or "://" not in state.artifacts:
        return None
    return state.artifacts.rstrip("/")


def publish(state_dir, local: Path | str | None, kind: str, log: logging.Logger) -> str | None:
    """Copy a run's file (`kind`: rejects or logs) to the artifacts URL; its URL, or None."""
    base = artifacts_url(state_dir)
    if base is None or not local or not Path(local).exists():
        return None
    target = f"{base}/{kind}/{Path(local).name}"
    try:
        import fsspec

        with open(local, "rb") as src, fsspec.open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except Exception as exc:
        log.warning("could not copy %s to %s: %s; it stays in %s", Path(local).name, target, exc, local)
        return None
    Path(local).unlink(missing_ok=True)
    return target


def local_copy(state_dir, location: str) -> Path:
    """A run's file to read here: the path itself, or a copy of a file at the artifacts URL, fetched
    once into the scratch folder (`.route/artifacts/`). A file that cannot be fetched is a path
    that does not exist, which readers already take as "gone"."""
    if "://" not in str(location):
        return Path(location)
    cached = Path(state_dir) / "artifacts" / str(location).rstrip("/").rsplit("/", 2)[-2] / Path(location).name
    if not cached.exists():
        try:
            import fsspec

            cached.parent.mkdir(parents=True, exist_ok=True)
            with fsspec.open(location, "rb") as src, open(cached.with_suffix(".part"), "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            cached.with_suffix(".part").replace(cached)
        except Exception:
            return cached.with_suffix(".missing")
    return cached

"""Datasets route created, remembered in <state>/datasets.json (a database state: route_datasets) so
the next run updates the same one.

    {"http://127.0.0.1|local": {"my-route/portal": {"id": "abcd-1234", "name": "Cases"}}}

Entries are keyed by portal, then by `route/target`. A route that gives `create: {name: X}` and has
no entry of its own reuses the dataset another route created under the same name on the same
portal, so an example that deletes rows can follow the one that created them.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from pipeline.state.place import shared

FILE = "datasets.json"
_lock = threading.Lock()


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def lookup(state_dir: Path, portal: str, key: str, name: str | None = None) -> str | None:
    """The 4x4 recorded for `key` (route/target) on `portal`, else for a dataset called `name`."""
    if shared(state_dir) is not None:
        from pipeline.state.records import datasets_of

        datasets = datasets_of(shared(state_dir), portal)
    else:
        datasets = _load(Path(state_dir) / FILE).get(portal) or {}
    entry = datasets.get(key)
    if entry:
        return entry.get("id")
    if name:
        same = {e.get("id") for e in datasets.values() if e.get("name") == name}
        if len(same) == 1:
            return same.pop()
    return None


def record(state_dir: Path, portal: str, key: str, dataset_id: str, name: str) -> None:
    """Remember a created dataset (written atomically: a crash never leaves half a file)."""
    if shared(state_dir) is not None:
        from pipeline.state.records import dataset_put

        dataset_put(shared(state_dir), portal, key, dataset_id, name)
        return
    path = Path(state_dir) / FILE
    with _lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _load(path)
        data.setdefault(portal, {})[key] = {"id": dataset_id, "name": name}
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def forget(state_dir: Path, portal: str, key: str) -> None:
    if shared(state_dir) is not None:
        from pipeline.state.records import dataset_forget

        dataset_forget(shared(state_dir), portal, key)
        return
    path = Path(state_dir) / FILE
    with _lock:
        data = _load(path)
        if key in (data.get(portal) or {}):
            del data[portal][key]
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, path)

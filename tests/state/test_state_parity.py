"""Issue 18: a folder state and a PostgreSQL state give the same `route history` and `route status`."""

from __future__ import annotations

import re
import shutil

from clusterkit import fresh_database, route_cmd

ROUTES = {
    "good.yaml": "name: good\nschedule: '0 6 * * *'\nsource:\n  csv: {path: data.csv}\n"
    "targets:\n  - name: out\n    deliver:\n      csv: {path: out/good.csv}\n",
    "picky.yaml": "name: picky\nschedule: '0 7 * * 1'\nsource:\n  csv: {path: data.csv}\n"
    "source_transforms:\n  - cast: {n: integer}\n"
    "targets:\n  - name: out\n    deliver:\n      jsonl: {path: out/picky.jsonl}\n",
    "broken.yaml": "name: broken\nschedule: '*/5 * * * *'\nsource:\n  csv: {path: missing.csv}\n"
    "targets:\n  - name: out\n    deliver:\n      csv: {path: out/broken.csv}\n",
}


def project(folder):
    folder.mkdir()
    (folder / "data.csv").write_text("id,n\n1,10\n2,x\n3,30\n")
    for name, text in ROUTES.items():
        (folder / name).write_text(text)
    return folder


def shown(text: str, folder) -> str:
    """What a reader compares: run ids, times and durations vary between any two runs."""
    text = text.replace(str(folder), "<project>")
    text = re.sub(r"\d{8}T\d{6}-[0-9a-f]{6}", "<run-id>", text)
    text = re.sub(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(\+00:00)?", "<time>", text)
    text = re.sub(r'"pid": \d+', '"pid": <pid>', text)
    return re.sub(r" +", " ", text)


def test_folder_and_postgresql_states_show_the_same_history_and_status(tmp_path):
    outputs = {}
    with fresh_database() as url:
        for kind, state in (("folder", None), ("postgresql", url)):
            folder = project(tmp_path / kind)
            extra = ["--state", state] if state else []
            for name in ("good.yaml", "picky.yaml", "broken.yaml", "good.yaml"):
                route_cmd("execute", name, *extra, "-q", cwd=folder)
            outputs[kind] = [
                shown(route_cmd(*args, *extra, cwd=folder).stdout, folder)
                for args in (
                    ("history",),
                    ("history", "good"),
                    ("history", "--status", "failed"),
                    ("status", "."),
                    ("status", ".", "--json"),
                    ("history", "--json"),
                )
            ]
            if state is None:
                assert (folder / ".route" / "history.sqlite").exists()
                shutil.rmtree(folder / "out")
    for a, b in zip(outputs["folder"], outputs["postgresql"]):
        assert a.splitlines() == b.splitlines()
    history = outputs["folder"][0]
    assert history.count("success") == 3 and history.count("failed") == 1

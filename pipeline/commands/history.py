"""`route history`: past runs of a route, or of every route under the current folder.

Each route keeps its history in its own state folder (`.route/` beside the route file, or the
project's `state`), so a route name alone does not say where to look: the route files under the
current folder are searched, at any depth as the folder commands do, for the one with that name,
and its state folder is read. Without a name, the runs of every route found are listed together.
`--state DIR` reads one state folder directly, as before.

A run's counts are shown as a person reads them: rows read as the source's line says (its own
rejects included), and rows delivered per target (`portal 11, archive 11`), never a sum over
targets that counts each row once per target.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.basics.errors import RouteInvalid
from pipeline.ops.scheduling.catalog import RouteEntry, load_entry
from pipeline.route.files import find_route_files
from pipeline.route.project import LenientVariables, load_project, state_dir_for
from pipeline.runs.history import History, delivered_per_target
from pipeline.state.place import from_option, identity

ERROR_WIDTH = 80
# Per target in `--json`: rows created, updated, deleted, rejected, and the revision or request ids.
_TARGET_KEYS = (
    "name",
    "kind",
    "status",
    "routed",
    "delivered",
    "created",
    "updated",
    "deleted",
    "rejected",
    "location",
    "error",
    "details",
)


def show_history(
    route: str | None,
    *,
    state: str | None,
    status: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
    console: Console,
) -> None:
    """Print the runs of ROUTE (a route file or a route name), or of every route here."""
    since = _since(since)
    places = where_runs_are(route, state)
    runs: list[dict[str, Any]] = []
    for names, state_dir in places:
        runs += History(state_dir).runs(names, status, since, limit)
    runs.sort(key=lambda r: (r["started"], r["run_id"]), reverse=True)
    runs = runs[:limit]
    if as_json:
        click.echo(json.dumps([_as_json(r) for r in runs], indent=2, default=str))
        return
    if not runs:
        click.echo(_nothing_found(route, state, places))
        return
    table = Table(box=None, header_style="bold")
    for col in ("run", "route", "started", "status", "read", "rejected", "delivered", "error"):
        table.add_column(col, justify="right" if col in ("read", "rejected") else "left")
    for r in runs:
        report = _report(r)
        table.add_row(
            r["run_id"],
            escape(r["route"]),
            r["started"],
            r["status"],
            f"{report.get('records_read', r['rows_read']) or 0:,}",
            f"{r['rows_rejected'] or 0:,}",
            escape(delivered_per_target(r, report)),
            escape(error_shown(r)),
        )
    console.print(table)


def where_runs_are(route: str | None, state: str | None) -> list[tuple[list[str] | str | None, Path]]:
    """(the route names to list, or None for every route; the state folder holding their runs)."""
    if route and (route.endswith((".yaml", ".yml")) or Path(route).is_file()):
        entry = load_entry(Path(route), os.environ, state=state)  # unset ${VAR}s do not matter here
        if entry.problem and not Path(route).is_file():
            raise RouteInvalid(entry.problem)
        return [(entry.name, entry.state_dir)]
    if state:
        return [(route, from_option(state))]
    entries = _routes_here()
    if route:
        matches = [e for e in entries if e.name == route]
        folders = {identity(e.state_dir) for e in matches}
        if len(folders) > 1:
            files = ", ".join(str(e.file) for e in matches)
            raise RouteInvalid(
                f"error: several route files under {Path.cwd()} are named '{route}': {files}; "
                f"name the one you mean: route history {matches[0].file}"
            )
        if matches:
            return [(route, matches[0].state_dir)]
        return [(route, _state_here())]  # a route whose file is gone: the project's state, or ./.route
    if not entries:
        return [(None, _state_here())]
    by_place: dict[str, tuple[Path, list[str]]] = {}
    for e in entries:
        by_place.setdefault(identity(e.state_dir), (e.state_dir, []))[1].append(e.name)
    return [(names, place) for place, names in by_place.values()]


def shorten(text: str, width: int = ERROR_WIDTH) -> str:
    """The first line of `text`, cut at the end of a word with "…" when it goes on.

    A word ends at a space or, in a long path or name, at any other character that is not a
    letter or a digit; only a text with no such place in its second half is cut where it is."""
    lines = text.strip().splitlines()
    if not lines:
        return ""
    line = lines[0]
    if len(line) <= width and len(lines) == 1:
        return line
    if len(line) > width - 1:
        cut = line[: width - 1]
        ends = [i for i in range(width // 2, len(cut)) if not cut[i].isalnum()]
        spaces = [i for i in ends if cut[i] == " "]
        if spaces or ends:
            cut = cut[: (spaces or ends)[-1]]
        line = cut
    return line.rstrip(" ,;:") + "…"


def error_shown(run: dict) -> str:
    """The run's error for the table: the route file's folder left out (the route is on the row)."""
    error, route_file = run.get("error") or "", run.get("route_file") or ""
    if route_file and error.startswith(route_file):
        error = Path(route_file).name + error[len(route_file) :]
    return shorten(error)


def _nothing_found(route: str | None, state: str | None, places) -> str:
    names = [n for names, _ in places if isinstance(names, list) for n in names]
    if len(places) > 1:  # every route under this folder, in several state folders
        return f"no runs recorded for the {len(names)} routes under {Path.cwd()}"
    text = f"no runs{f' of {route}' if route else ''} recorded in {places[0][1]}"
    is_file = route and (route.endswith((".yaml", ".yml")) or Path(route).is_file())
    if route and not state and not is_file:
        # the name matched no route file here (else its state folder would have been read)
        if not any(e.name == route for e in _routes_here()):
            text += f" (no route file under {Path.cwd()} is named '{route}')"
    return text


def _routes_here() -> list[RouteEntry]:
    """The routes under the current folder, read lightly (unset ${VAR}s do not matter here)."""
    return [load_entry(f, os.environ) for f in find_route_files(["."])]


def _state_here() -> Path:
    """The project's state folder (defaults.yaml `state`), else ./.route."""
    return state_dir_for(Path("route.yaml"), None, load_project(Path.cwd(), LenientVariables(os.environ)))


def _report(run: dict) -> dict:
    try:
        return json.loads(run.get("report") or "{}")
    except ValueError:
        return {}


def _as_json(run: dict) -> dict:
    report = _report(run)
    run.pop("report", None)
    run["records_read"] = report.get("records_read", run["rows_read"])
    run["targets"] = [{k: t.get(k) for k in _TARGET_KEYS} for t in report.get("targets", [])]
    return run


def _since(since: str | None) -> str | None:
    if not since:
        return None
    try:
        return (
            dt.datetime.fromisoformat(since).isoformat() if "T" in since else dt.date.fromisoformat(since).isoformat()
        )
    except ValueError:
        raise RouteInvalid(
            f"error: --since takes a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM), got '{since}'"
        ) from None

"""Which routes and runs wrote a dataset, when the portal's state folder holds their run history.

A route's embedded portal lives in its state folder (`.route/portal.sqlite`) beside the run
history (`history.sqlite`, written by pipeline/runs/history.py). The portal imports nothing of the
runs layer (docs/architecture.md): it reads that file itself, read-only, and finds the runs whose
JSON report names this dataset in a target's details. Links point at `route dashboard`
(ROUTE_DASHBOARD_URL, default http://127.0.0.1:8700, the dashboard's default address).
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from html import escape
from pathlib import Path
from urllib.parse import quote

DASHBOARD = "http://127.0.0.1:8700"
SCANNED = 500  # the newest runs looked at


def dashboard_url() -> str:
    return (os.environ.get("ROUTE_DASHBOARD_URL") or DASHBOARD).rstrip("/")


def writers(state_dir: Path, fourfour: str, limit: int = 10) -> list[dict]:
    """The newest runs (at most `limit`) whose report says a target delivered to `fourfour`."""
    path = Path(state_dir) / "history.sqlite"
    if not path.exists():
        return []
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as con:
            rows = con.execute(
                "SELECT run_id, route, route_file, started, status, report FROM runs "
                "WHERE status != 'dry-run' ORDER BY started DESC LIMIT ?",
                (SCANNED,),
            ).fetchall()
    except sqlite3.Error:
        return []
    found = []
    for run_id, route, route_file, started, status, report in rows:
        try:
            data = json.loads(report or "{}")
        except ValueError:
            continue
        for t in data.get("targets") or [] if isinstance(data, dict) else []:
            if isinstance(t, dict) and (t.get("details") or {}).get("dataset") == fourfour:
                found.append(
                    {
                        "run_id": run_id,
                        "route": route,
                        "route_file": route_file,
                        "started": started,
                        "status": status,
                        "target": t.get("name"),
                        "delivered": t.get("delivered"),
                    }
                )
                break
        if len(found) >= limit:
            break
    return found


def writers_html(state_dir: Path, fourfour: str) -> str:
    runs = writers(state_dir, fourfour)
    if not runs:
        return "<p class='muted'>No run history in this portal's folder names this dataset.</p>"
    base = dashboard_url()
    routes = {}
    for r in runs:
        routes.setdefault(r["route"], r["route_file"])
    head = "".join(
        f"<li><a href='{escape(base)}/routes/{quote(name, safe='')}'>route {escape(name)}</a> "
        f"<span class='muted'>({escape(str(file or ''))})</span></li>"
        for name, file in routes.items()
    )
    rows = "".join(
        f"<tr><td><a href='{escape(base)}/runs/{quote(r['run_id'], safe='')}'>{escape(r['run_id'])}</a></td>"
        f"<td>{escape(r['route'])}</td><td>{escape(str(r['target']))}</td><td>{escape(r['status'])}</td>"
        f"<td>{escape(str(r['started'] or ''))}</td><td class='num'>{r['delivered'] or 0:,}</td></tr>"
        for r in runs
    )
    return (
        f"<p>Written by:</p><ul>{head}</ul><table><caption>Runs that wrote this dataset, newest first "
        f"(links open <code>route dashboard</code> at {escape(base)})</caption><thead><tr><th scope='col'>run</th>"
        "<th scope='col'>route</th><th scope='col'>target</th><th scope='col'>status</th>"
        f"<th scope='col'>started</th><th scope='col'>rows delivered</th></tr></thead><tbody>{rows}</tbody></table>"
    )

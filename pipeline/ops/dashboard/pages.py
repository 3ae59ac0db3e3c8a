"""The dashboard's pages about routes: the list of every route, and one route's page.

Pages are plain HTML that works without the script (filters are GET forms, actions POST forms);
static/dashboard.js adds the live parts (running runs, the chart). Every value is escaped here.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from urllib.parse import quote, urlencode

from pipeline.ops.dashboard.state import DashboardState, mask_route_text
from pipeline.ops.scheduling.catalog import RouteEntry

STATES = ("ok", "failing", "stale", "needs attention", "running", "never run", "invalid", "not scheduled")
ROUTE_FILE_MAX = 256 * 1024


def e(value) -> str:
    return escape("" if value is None else str(value))


def when(iso: str | None) -> str:
    """An ISO UTC time as `2026-12-03 08:40:56 UTC` in a <time> element."""
    if not iso:
        return "-"
    shown = iso.replace("T", " ")[:19] + " UTC"
    return f"<time datetime='{e(iso)}'>{e(shown)}</time>"


def badge(state: str) -> str:
    css = state.replace(" ", "-")
    return f"<span class='badge badge-{e(css)}'>{e(state)}</span>"


def layout(title: str, body: str, crumbs: list[tuple[str, str]] | None = None) -> str:
    trail = "".join(f"<li><a href='{e(href)}'>{e(text)}</a></li>" for href, text in crumbs or [])
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{e(title)} · route dashboard</title>"
        "<link rel='stylesheet' href='/static/dashboard.css'><link rel='stylesheet' href='/static/uPlot.min.css'>"
        "</head><body><a class='skip' href='#main'>Skip to content</a>"
        "<header><nav aria-label='Breadcrumb'><ol class='crumbs'><li><a href='/'>All routes</a></li>"
        f"{trail}</ol></nav></header><main id='main'><h1>{e(title)}</h1>{body}</main>"
        "<script src='/static/uPlot.iife.min.js' defer></script>"
        "<script src='/static/dashboard.js' defer></script></body></html>"
    )


def route_href(name: str) -> str:
    return "/routes/" + quote(name, safe="")


def run_href(run_id: str) -> str:
    return "/runs/" + quote(run_id, safe="")


def route_list(state: DashboardState, q: str = "", wanted: str = "") -> str:
    rows = []
    shown = 0
    statuses = state.statuses()
    for entry, s in statuses:
        hay = " ".join([s.route, s.file, s.state, s.reason, s.schedule or ""]).lower()
        if (q and q.lower() not in hay) or (wanted and s.state != wanted):
            continue
        shown += 1
        last = f"{when(s.last_run)} {badge(s.last_status)}" if s.last_status else "-"
        run_id = state.last_run_id(entry, s.last_run)
        if run_id:
            last = f"<a href='{e(run_href(run_id))}'>{when(s.last_run)}</a> {badge(s.last_status)}"
        rows.append(
            f"<tr data-state='{e(s.state)}'><th scope='row'><a href='{e(route_href(s.route))}'>{e(s.route)}</a>"
            f"<div class='muted small'>{e(s.file)}</div></th>"
            f"<td>{badge(s.state)}{f'<div class=small>{e(s.reason)}</div>' if s.reason else ''}</td>"
            f"<td>{e(s.schedule or '-')}</td><td>{'due now' if s.due and s.next_run else when(s.next_run)}</td>"
            f"<td>{last}</td><td>{when(s.last_success)}</td><td>{e(s.delivered)}</td></tr>"
        )
    options = "".join(
        f"<option value='{e(v)}'{' selected' if v == wanted else ''}>{e(v or 'any status')}</option>"
        for v in ("", *STATES)
    )
    form = (
        "<form class='filters' method='get' action='/' role='search'>"
        f"<label for='q'>Search</label><input id='q' name='q' type='search' value='{e(q)}'>"
        f"<label for='state'>Status</label><select id='state' name='state'>{options}</select>"
        "<button type='submit'>Filter</button></form>"
    )
    counts = {}
    for _, s in statuses:
        counts[s.state] = counts.get(s.state, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no routes"
    table = (
        "<table class='routes'><caption>Routes: "
        f"{shown} shown of {len(statuses)} ({e(summary)})</caption><thead><tr><th scope='col'>route</th>"
        "<th scope='col'>status</th><th scope='col'>schedule</th><th scope='col'>next run</th>"
        "<th scope='col'>last run</th><th scope='col'>last success</th>"
        f"<th scope='col'>delivered by the last run</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    running = (
        "<section aria-labelledby='running-h'><h2 id='running-h'>Running now</h2>"
        "<div id='running' data-poll='/api/running.json' aria-live='polite'>"
        f"{running_table(state.running())}</div></section>"
    )
    return layout("Routes", form + table + running)


def running_table(runs: list[dict]) -> str:
    if not runs:
        return "<p class='muted'>No run is running.</p>"
    rows = "".join(
        f"<tr><td><a href='{e(route_href(r['route']))}'>{e(r['route'])}</a></td>"
        f"<td><a href='{e(run_href(r['run_id']))}'>{e(r['run_id'])}</a></td>"
        f"<td>{e(r.get('progress', {}).get('elapsed', '-'))} s</td><td>"
        + e(", ".join(f"{t['name']} {t['arrived']:,}" for t in r.get("progress", {}).get("targets", [])) or "-")
        + "</td></tr>"
        for r in runs
    )
    return (
        "<table><thead><tr><th scope='col'>route</th><th scope='col'>run</th><th scope='col'>elapsed</th>"
        f"<th scope='col'>rows arrived per target</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def validation(entry: RouteEntry, state: DashboardState, registry) -> tuple[bool, str]:
    """`route validate --offline` on the route: (ok, message)."""
    from pipeline.basics.errors import RouteInvalid
    from pipeline.route.plan import build_plan

    if entry.problem:
        return False, entry.problem
    try:
        build_plan(
            entry.file,
            variables=state.variables,
            registry=registry,
            profile=state.profile,
            columns="strict",
            offline=True,
        )
    except RouteInvalid as exc:
        return False, str(exc)
    except Exception as exc:  # a route the planner cannot read at all: say so on the page
        return False, f"{type(exc).__name__}: {exc}"
    return True, "valid (checked offline: no portal or database was asked)"


def targets_table(entry: RouteEntry, runs: list[dict]) -> str:
    last_targets = {}
    for r in runs:
        for t in r["report_data"].get("targets") or []:
            last_targets.setdefault(t.get("name"), t)
    rows = []
    for i, target in enumerate(entry.data.get("targets") or []):
        if not isinstance(target, dict):
            continue
        name = str(target.get("name") or f"target {i + 1}")
        deliver = target.get("deliver") if isinstance(target.get("deliver"), dict) else {}
        kind = next((k for k in deliver if k != "label"), "-")
        opts = deliver.get(kind) if isinstance(deliver.get(kind), dict) else {}
        where = opts.get("dataset") or opts.get("path") or opts.get("table") or ""
        if not where and isinstance(opts.get("create"), dict):
            where = f"creates \u201c{opts['create'].get('name')}\u201d"
        seen = last_targets.get(name) or {}
        details = seen.get("details") or {}
        dataset = details.get("dataset") or ""
        rows.append(
            f"<tr><th scope='row'>{e(name)}</th><td>{e(kind)}</td><td>{e(opts.get('mode') or '')}</td>"
            f"<td>{e(where)}</td><td>{e(dataset)}{' ' + e(details.get('dataset_name')) if dataset else ''}</td>"
            f"<td>{e(seen.get('location') or '-')}</td><td>{e(target.get('when') or '')}</td></tr>"
        )
    return (
        "<table><thead><tr><th scope='col'>target</th><th scope='col'>delivery</th><th scope='col'>mode</th>"
        "<th scope='col'>configured</th><th scope='col'>dataset</th><th scope='col'>last delivered to</th>"
        f"<th scope='col'>when</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def secs(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def runs_table(runs: list[dict]) -> str:
    rows = "".join(
        f"<tr><td><a href='{e(run_href(r['run_id']))}'>{e(r['run_id'])}</a></td><td>{when(r['started'])}</td>"
        f"<td>{badge(r['status'])}</td><td class='num'>{r['rows_read'] or 0:,}</td>"
        f"<td class='num'>{r['rows_rejected'] or 0:,}</td><td>{e(r['delivered'])}</td>"
        f"<td class='num'>{secs(r['seconds'])}</td></tr>"
        for r in runs
    )
    return (
        "<table class='runs'><caption>Runs, newest first</caption><thead><tr><th scope='col'>run</th>"
        "<th scope='col'>started</th><th scope='col'>status</th><th scope='col'>rows read</th>"
        "<th scope='col'>rejected</th><th scope='col'>delivered per target</th><th scope='col'>seconds</th>"
        f"</tr></thead><tbody>{rows or '<tr><td colspan=7>No runs yet.</td></tr>'}</tbody></table>"
    )


def chart_data(runs: list[dict]) -> list[dict]:
    out = []
    for r in reversed(runs):
        if r["status"] in ("running", "dry-run") or not r.get("started"):
            continue
        out.append(
            {
                "started": r["started"],
                "rows": r["rows_delivered"] or 0,
                "read": r["rows_read"] or 0,
                "seconds": r["seconds"],
                "status": r["status"],
            }
        )
    return out


def route_page(state: DashboardState, entry: RouteEntry, registry) -> str:
    s = state.status(entry)
    runs = state.runs(entry)
    ok, message = validation(entry, state, registry)
    try:
        text = Path(entry.file).read_text(encoding="utf-8", errors="replace")[:ROUTE_FILE_MAX]
    except OSError as exc:
        text = f"(cannot read {entry.file}: {exc.strerror})"
    summary = (
        "<dl class='summary'>"
        f"<dt>status</dt><dd>{badge(s.state)} {e(s.reason)}</dd>"
        f"<dt>schedule</dt><dd>{e(s.schedule or '-')}</dd><dt>next run</dt><dd>{when(s.next_run)}</dd>"
        f"<dt>last run</dt><dd>{when(s.last_run)} {badge(s.last_status) if s.last_status else ''}</dd>"
        f"<dt>last success</dt><dd>{when(s.last_success)}</dd><dt>delivered by the last run</dt>"
        f"<dd>{e(s.delivered)}</dd><dt>file</dt><dd><code>{e(entry.file)}</code></dd>"
        f"<dt>state folder</dt><dd><code>{e(entry.state_dir)}</code></dd></dl>"
    )
    action = route_href(entry.name) + "/confirm"
    buttons = (
        "<div class='actions'>"
        f"<a class='button' href='{e(action)}?{urlencode({'action': 'run'})}'>Run now\u2026</a>"
        f"<a class='button secondary' href='{e(action)}?{urlencode({'action': 'dry-run'})}'>Dry run\u2026</a>"
        "<span class='muted small'>Each asks for confirmation first.</span></div>"
    )
    data = json.dumps(chart_data(runs)).replace("<", "\\u003c")
    chart = (
        "<section aria-labelledby='chart-h'><h2 id='chart-h'>Runs over time</h2>"
        "<figure><div id='chart' role='img' aria-label='Rows delivered and seconds per run over time; "
        "the same figures are in the table of runs below'></div>"
        f"<script type='application/json' id='chart-data'>{data}</script>"
        "<figcaption class='muted small'>Rows delivered (left axis) and duration in seconds (right axis) "
        "of each finished run.</figcaption></figure></section>"
    )
    valid = (
        f"<p class='{'ok' if ok else 'problem'}' role='status'><strong>Validation:</strong> "
        f"{'valid' if ok else 'invalid'}</p><pre class='validation'>{e(message)}</pre>"
    )
    body = (
        summary + buttons + chart + f"<section aria-labelledby='targets-h'><h2 id='targets-h'>Targets and datasets</h2>"
        f"{targets_table(entry, runs)}</section>"
        + f"<section aria-labelledby='runs-h'><h2 id='runs-h'>Runs</h2>{runs_table(runs)}</section>"
        + f"<section aria-labelledby='file-h'><h2 id='file-h'>Route file</h2>{valid}"
        f"<pre class='route-file' tabindex='0' aria-label='route file'>{e(mask_route_text(text))}</pre></section>"
    )
    return layout(f"Route {entry.name}", body, [(route_href(entry.name), entry.name)])


def confirm_page(entry: RouteEntry, action: str, csrf: str) -> str:
    what = "a dry run (reads and checks everything, delivers nothing)" if action == "dry-run" else "a run now"
    body = (
        f"<p>Start {e(what)} of <strong>{e(entry.name)}</strong> (<code>{e(entry.file)}</code>)?</p>"
        f"<form method='post' action='{e(route_href(entry.name))}/run'>"
        f"<input type='hidden' name='csrf' value='{e(csrf)}'>"
        f"<input type='hidden' name='action' value='{e(action)}'>"
        f"<button type='submit' id='confirm'>Yes, start {'the dry run' if action == 'dry-run' else 'the run'}"
        f"</button> <a href='{e(route_href(entry.name))}'>Cancel</a></form>"
    )
    return layout(f"Confirm: {action} {entry.name}", body, [(route_href(entry.name), entry.name)])

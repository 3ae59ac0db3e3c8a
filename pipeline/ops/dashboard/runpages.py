"""A run's page: per stage and per target counts and seconds, its error, its log, its rejects.

The rejects are a table with their reasons, paged and filtered by GET parameters (`q`: text in any
cell, `reason`: one reason, `offset`), and downloadable as CSV with the same filter. A run still
running shows its progress, which static/dashboard.js refreshes from /api/runs/ID.json.
"""

from __future__ import annotations

from urllib.parse import urlencode

from pipeline.ops.dashboard.pages import badge, e, layout, route_href, run_href, secs, when
from pipeline.ops.dashboard.state import DashboardState, read_rejects, run_json
from pipeline.ops.scheduling.catalog import RouteEntry

PAGE = 50


def steps_table(report: dict) -> str:
    rows = "".join(
        f"<tr><td>{e(s.get('stage'))}</td><td>{e(s.get('step'))}</td><td class='num'>{e(s.get('line'))}</td>"
        f"<td>{e(s.get('target') or '')}</td><td class='num'>{s.get('rows_in') or 0:,}</td>"
        f"<td class='num'>{s.get('rows_out') or 0:,}</td><td class='num'>{s.get('rejected') or 0:,}</td>"
        f"<td class='num'>{s.get('dropped') or 0:,}</td><td class='num'>{secs(s.get('seconds'))}</td></tr>"
        for s in report.get("steps") or []
    )
    if not rows:
        return "<p class='muted'>No step counts were recorded for this run.</p>"
    return (
        "<table class='steps'><thead><tr><th scope='col'>stage</th><th scope='col'>step</th>"
        "<th scope='col'>line</th><th scope='col'>target</th><th scope='col'>rows in</th>"
        "<th scope='col'>rows out</th><th scope='col'>rejected</th><th scope='col'>dropped</th>"
        f"<th scope='col'>seconds</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def targets_table(report: dict) -> str:
    rows = "".join(
        f"<tr><th scope='row'>{e(t.get('name'))}</th><td>{e(t.get('kind'))}</td>"
        + "".join(
            f"<td class='num'>{t.get(k) or 0:,}</td>"
            for k in ("routed", "delivered", "created", "updated", "deleted", "rejected")
        )
        + f"<td>{badge(t.get('status') or '-')}</td><td class='num'>{secs(t.get('seconds'))}</td>"
        f"<td>{e(t.get('location') or '')}{'<div class=problem>' + e(t['error']) + '</div>' if t.get('error') else ''}"
        "</td></tr>"
        for t in report.get("targets") or []
    )
    if not rows:
        return "<p class='muted'>No target counts were recorded for this run.</p>"
    return (
        "<table class='targets'><thead><tr><th scope='col'>target</th><th scope='col'>delivery</th>"
        "<th scope='col'>routed</th><th scope='col'>delivered</th><th scope='col'>created</th>"
        "<th scope='col'>updated</th><th scope='col'>deleted</th><th scope='col'>rejected</th>"
        "<th scope='col'>status</th><th scope='col'>seconds</th><th scope='col'>where</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def rejects_section(state: DashboardState, entry: RouteEntry, run: dict, q: str, reason: str, offset: int) -> str:
    path = state.files(entry, run).rejects
    if not path.exists():
        return (
            "<p class='muted'>This run rejected no row.</p>"
            if not run.get("rows_rejected")
            else ("<p class='muted'>The rejects file of this run is gone.</p>")
        )
    page = read_rejects(path, q, reason, offset, PAGE)
    href = run_href(run["run_id"])
    reasons = "".join(
        f"<option value='{e(r)}'{' selected' if r == reason else ''}>{e(r)} ({n:,})</option>" for r, n in page.reasons
    )
    form = (
        f"<form class='filters' method='get' action='{e(href)}#rejects'>"
        f"<label for='rq'>Text in any cell</label><input id='rq' name='q' type='search' value='{e(q)}'>"
        f"<label for='reason'>Reason</label><select id='reason' name='reason'><option value=''>any reason</option>"
        f"{reasons}</select><button type='submit'>Filter rejects</button></form>"
    )
    shown = [c for c in page.columns if c != "row"] + (["row"] if "row" in page.columns else [])
    head = "".join(f"<th scope='col'>{e(c)}</th>" for c in shown)
    body = "".join(
        "<tr>" + "".join(f"<td class='c-{e(c)}'>{e(r.get(c))}</td>" for c in shown) + "</tr>" for r in page.rows
    )
    nav = []
    base = {"q": q, "reason": reason}
    if offset > 0:
        prev = urlencode({**base, "offset": max(0, offset - PAGE)})
        nav.append(f"<a href='{e(href)}?{e(prev)}#rejects' rel='prev'>Previous {PAGE}</a>")
    if offset + PAGE < page.total:
        nxt = urlencode({**base, "offset": offset + PAGE})
        nav.append(f"<a href='{e(href)}?{e(nxt)}#rejects' rel='next'>Next {PAGE}</a>")
    first = offset + 1 if page.total else 0
    download = f"{href}/rejects.csv?{urlencode(base)}"
    return (
        form + f"<table class='rejects'><caption>Rejected rows {first:,}\u2013{offset + len(page.rows):,} of "
        f"{page.total:,}{' matching the filter' if q or reason else ''}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table><nav class='pager' aria-label='Rejects pages'>{' · '.join(nav)}</nav>"
        f"<p><a href='{e(download)}' download>Download {'these' if q or reason else 'all'} rejects as CSV</a></p>"
    )


def run_page(
    state: DashboardState, entry: RouteEntry, run: dict, q: str = "", reason: str = "", offset: int = 0
) -> str:
    report = run.get("report_data") or {}
    running = run["status"] == "running"
    data = run_json(entry, run, state.progress(entry, run) if running else None)
    summary = (
        "<dl class='summary'>"
        f"<dt>route</dt><dd><a href='{e(route_href(entry.name))}'>{e(entry.name)}</a></dd>"
        f"<dt>status</dt><dd id='run-status'>{badge(run['status'])}</dd>"
        f"<dt>started</dt><dd>{when(run.get('started'))}</dd><dt>ended</dt><dd>{when(run.get('ended'))}</dd>"
        f"<dt>seconds</dt><dd>{secs(data['seconds'])}</dd>"
        f"<dt>rows read</dt><dd id='rows-read'>{data['rows_read']:,}</dd>"
        f"<dt>rows rejected</dt><dd id='rows-rejected'>{data['rows_rejected']:,}</dd>"
        f"<dt>rows delivered</dt><dd id='rows-delivered'>{e(run.get('delivered') or data['rows_delivered'])}</dd>"
        "</dl>"
    )
    live = ""
    if running:
        live = (
            "<section aria-labelledby='live-h'><h2 id='live-h'>Progress</h2>"
            f"<div id='live' data-run='{e(run['run_id'])}' aria-live='polite'>"
            f"{progress_html(data.get('progress') or {})}</div></section>"
        )
    error = (
        f"<section aria-labelledby='error-h'><h2 id='error-h'>Error</h2><pre class='problem'>{e(run['error'])}</pre>"
        "</section>"
        if run.get("error")
        else ""
    )
    body = (
        summary
        + live
        + error
        + f"<section aria-labelledby='steps-h'><h2 id='steps-h'>Stages</h2>{steps_table(report)}</section>"
        + f"<section aria-labelledby='targets-h'><h2 id='targets-h'>Targets</h2>{targets_table(report)}</section>"
        + "<section aria-labelledby='rejects'><h2 id='rejects'>Rejected rows</h2>"
        + rejects_section(state, entry, run, q, reason, offset)
        + "</section><section aria-labelledby='log-h'><h2 id='log-h'>Log</h2>"
        f"<pre class='log' tabindex='0' aria-label='run log'>{e(state.log_text(entry, run)) or '(empty)'}</pre>"
        "</section>"
    )
    crumbs = [(route_href(entry.name), entry.name), (run_href(run["run_id"]), run["run_id"])]
    return layout(f"Run {run['run_id']}", body, crumbs)


def progress_html(progress: dict) -> str:
    targets = progress.get("targets") or []
    rows = "".join(
        f"<tr><th scope='row'>{e(t['name'])}</th><td class='num'>{t['arrived']:,}</td>"
        f"<td>{'committed' if t['committed'] else 'in progress'}</td></tr>"
        for t in targets
    )
    elapsed = progress.get("elapsed")
    head = f"<p>Running for {elapsed:g} s.</p>" if elapsed is not None else "<p>Starting\u2026</p>"
    if not rows:
        return head
    return (
        head + "<table><thead><tr><th scope='col'>target</th><th scope='col'>rows arrived</th>"
        f"<th scope='col'>state</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def starting_page(route: str, run_id: str, outcome: dict | None = None) -> str:
    if outcome is not None:  # its process ended before the run reached the history
        body = (
            f"<p>The run of <a href='{e(route_href(route))}'>{e(route)}</a> did not start: "
            f"<span id='run-status'>{badge(outcome['status'])}</span></p><pre class='problem'>{e(outcome['error'])}</pre>"
        )
        return layout(f"Run {run_id}", body, [(route_href(route), route), (run_href(run_id), run_id)])
    body = (
        f"<p>A run of <a href='{e(route_href(route))}'>{e(route)}</a>, started from this dashboard.</p>"
        f"<div id='live' data-run='{e(run_id)}' aria-live='polite'><p>Starting\u2026</p></div>"
    )
    return layout(f"Run {run_id}", body, [(route_href(route), route), (run_href(run_id), run_id)])

"""The local portal's data browser, `/d/{4x4}`: a dataset's rows, paged, sortable and filterable.

The page's query string is a SODA query (`$where`, `$q`, `$order`, `$limit`, `$offset`): the rows
it shows are built by the same query.build and query.run as `/resource/{4x4}` with those
parameters (the page links to that URL), so what the page shows is what /resource returns. Beside
the rows: the columns with their types and descriptions, the metadata (tags, category, license,
attribution, last update), a map of point, line and polygon columns (pages_map.py), and the routes
and runs that wrote the dataset (pages_history.py). Plain HTML: forms and links, no script.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from urllib.parse import urlencode

import orjson

from pipeline.portal import query, storage
from pipeline.portal.errors import PortalError
from pipeline.portal.http import Request, Response
from pipeline.portal.pages_history import writers_html
from pipeline.portal.pages_map import GEO_TYPES, svg_map
from pipeline.portal.views import view_json

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:0 0 2em;color:#1a1a1a;line-height:1.4}"
    "main,header{padding:0 1.5em}header{background:#1f3a5f;padding:.5em 1.5em}header a{color:#fff}"
    "table{border-collapse:collapse;margin:1em 0}caption{text-align:left;font-weight:600}"
    "td,th{border:1px solid #c4c4c4;padding:.25em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere}"
    "thead th{background:#eef1f5}code{background:#f3f4f6;padding:0 .2em}.muted{color:#555}.num{text-align:right}"
    "a{color:#0645ad}a:focus,button:focus,input:focus,select:focus{outline:3px solid #0b0c0c;box-shadow:0 0 0 6px #ffdd00}"
    ".filters{display:flex;flex-wrap:wrap;gap:.5em;align-items:center;margin:1em 0}"
    "input,select,button{font:inherit;padding:.2em .4em}button{background:#1f5fa8;color:#fff;border:1px solid "
    "#1f5fa8;border-radius:.25em}.problem{color:#8a1111}.tag{display:inline-block;border:1px solid #1f3a5f;"
    "border-radius:.6em;padding:0 .45em;margin-right:.3em;font-size:.9em}dl.meta{display:grid;grid-template-"
    "columns:max-content 1fr;gap:.2em 1em}dl.meta dt{font-weight:600}dl.meta dd{margin:0}.pager a{margin-right:1em}"
    "svg.map{border:1px solid #c4c4c4;max-width:100%;height:auto}svg.map .sea{fill:#f4f8fb}svg.map circle{fill:"
    "#b3261e;fill-opacity:.75;stroke:#fff}svg.map path{fill:#1f5fa8;fill-opacity:.25;stroke:#1f3a5f}"
    "svg.map path.line{fill:none}.skip{position:absolute;left:-9999px}.skip:focus{left:1em;top:1em;background:#fff}"
)
PAGE_SIZES = (10, 25, 50, 100, 500)
DEFAULT_PAGE = 25
MAP_ROWS = 1000  # the map shows at most this many matching rows
BROWSE = ("$where", "$q", "$order", "$limit", "$offset")


def page(title: str, body: str, status: int = 200) -> Response:
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        "<a class='skip' href='#main'>Skip to content</a><header><nav aria-label='Portal'>"
        f"<a href='/'>All datasets</a></nav></header><main id='main'>{body}</main></body></html>"
    )
    return Response(status, html.encode(), "text/html; charset=utf-8")


def when(epoch) -> str:
    if not epoch:
        return "-"
    moment = dt.datetime.fromtimestamp(int(epoch), dt.UTC)
    return f"<time datetime='{moment.isoformat()}'>{moment:%Y-%m-%d %H:%M:%S} UTC</time>"


def browse_params(req: Request) -> dict[str, str]:
    """The SODA parameters of the page (blank ones left out), with the page's own default $limit."""
    params = {k: v for k, v in req.params().items() if k in BROWSE and v.strip() != ""}
    params.setdefault("$limit", str(DEFAULT_PAGE))
    return params


def dataset_page(req: Request, fourfour: str) -> Response:
    params = browse_params(req)
    problem = ""
    with req.portal.store.read() as conn:
        ds = storage.require(conn, fourfour)
        req.check_read(ds)
        total = storage.row_count(conn, ds)
        try:
            q = query.build(ds, params)
            names, columns = query.run(conn, q)
            cq = query.build(ds, {k: v for k, v in params.items() if k in ("$where", "$q")} | {"$select": "count(*)"})
            matching = int(query.run(conn, cq)[1][0][0])
            geo = [c for c in ds.columns if c.type.soql in GEO_TYPES or c.type_name.lower() in GEO_TYPES]
            maps = []
            for col in geo[:2]:
                mq = query.build(
                    ds,
                    {k: v for k, v in params.items() if k in ("$where", "$q")}
                    | {"$select": col.field, "$limit": str(MAP_ROWS)},
                )
                # wire values may be pre-encoded JSON (orjson fragments): as /resource sends them
                maps.append((col, orjson.loads(orjson.dumps(query.wire(mq, query.run(conn, mq)[1])[0]))))
        except PortalError as err:
            problem = err.body().get("message") or str(err)
            q, names, columns, matching, maps = None, [], [], 0, []
    cells = [o.cells(c) for o, c in zip(q.outputs, columns)] if q and columns and columns[0] else []
    view = view_json(ds)
    body = (
        f"<h1>{escape(ds.name)}</h1><p><code>{ds.id}</code> · {total:,} rows · "
        f"{escape(view['publicationStage'])}{' · private' if ds.private else ''}</p>"
        f"<p>{escape(ds.description)}</p>"
        + metadata_html(ds, view)
        + "<section aria-labelledby='rows-h'><h2 id='rows-h'>Rows</h2>"
        + filter_form(ds, params)
        + (f"<p class='problem' role='alert'>The query failed: {escape(problem)}</p>" if problem else "")
        + rows_table(ds, params, names, cells, matching)
        + "</section>"
        + columns_html(ds)
        + "".join(
            f"<section aria-labelledby='map-{c.field}'><h2 id='map-{c.field}'>Map of {escape(c.name)}</h2>"
            f"{svg_map(values, c.field) or '<p class=muted>No coordinates in the matching rows.</p>'}</section>"
            for c, values in maps
        )
        + "<section aria-labelledby='writers-h'><h2 id='writers-h'>Routes and runs</h2>"
        + writers_html(req.portal.data_path.parent, ds.id)
        + "</section>"
    )
    return page(ds.name, body, 400 if problem else 200)


def metadata_html(ds, view: dict) -> str:
    license_ = view.get("license") or {}
    license_text = escape(license_.get("name") or view.get("licenseId") or "-")
    if license_.get("termsLink"):
        license_text = f"<a href='{escape(license_['termsLink'])}' rel='license'>{license_text}</a>"
    tags = "".join(f"<span class='tag'>{escape(str(t))}</span>" for t in ds.tags or []) or "-"
    attribution = escape(view.get("attribution") or "-")
    if view.get("attributionLink"):
        attribution = f"<a href='{escape(view['attributionLink'])}'>{attribution}</a>"
    custom = view.get("metadata", {}).get("custom_fields") or {}
    extra = "".join(
        f"<dt>{escape(str(group))}: {escape(str(k))}</dt><dd>{escape(str(v))}</dd>"
        for group, fields in custom.items()
        if isinstance(fields, dict)
        for k, v in fields.items()
    )
    return (
        "<section aria-labelledby='meta-h'><h2 id='meta-h'>About this dataset</h2><dl class='meta'>"
        f"<dt>category</dt><dd>{escape(ds.category or '-')}</dd><dt>tags</dt><dd>{tags}</dd>"
        f"<dt>license</dt><dd>{license_text}</dd><dt>attribution</dt><dd>{attribution}</dd>"
        f"<dt>rows last updated</dt><dd>{when(ds.rows_updated_at)}</dd>"
        f"<dt>metadata last updated</dt><dd>{when(ds.view_updated_at)}</dd>"
        f"<dt>created</dt><dd>{when(ds.created_at)}</dd>{extra}</dl>"
        f"<p class='muted'><a href='/resource/{ds.id}.json'>JSON</a> · <a href='/resource/{ds.id}.csv'>CSV</a> · "
        f"<a href='/api/views/{ds.id}.json'>metadata</a></p></section>"
    )


def filter_form(ds, params: dict) -> str:
    size = params.get("$limit", str(DEFAULT_PAGE))
    sizes = "".join(
        f"<option value='{n}'{' selected' if str(n) == size else ''}>{n}</option>"
        for n in sorted({*PAGE_SIZES, *([int(size)] if size.isdigit() else [])})
    )
    keep = f"<input type='hidden' name='$order' value='{escape(params['$order'])}'>" if params.get("$order") else ""
    return (
        f"<form class='filters' method='get' action='/d/{ds.id}' role='search'>"
        f"<label for='f-q'>Search text</label><input id='f-q' name='$q' type='search' "
        f"value='{escape(params.get('$q', ''))}'>"
        f"<label for='f-where'>SoQL filter (<code>$where</code>)</label><input id='f-where' name='$where' size='40' "
        f"placeholder=\"town = 'Hartford' AND gross > 1000\" value='{escape(params.get('$where', ''))}'>"
        f"<label for='f-limit'>Rows per page</label><select id='f-limit' name='$limit'>{sizes}</select>{keep}"
        "<button type='submit'>Apply</button></form>"
    )


def _href(ds, params: dict, **changes) -> str:
    merged = {k: v for k, v in ({**params, **changes}).items() if v not in (None, "")}
    return f"/d/{ds.id}?{urlencode(merged)}" if merged else f"/d/{ds.id}"


def rows_table(ds, params: dict, names: list[str], cells: list[list], matching: int) -> str:
    order = params.get("$order", "").strip()
    head = []
    for name in names:
        col = ds.by_field().get(name)
        sort = "none"
        if order == name:
            sort, nxt = "ascending", f"{name} DESC"
        elif order.lower() == f"{name} desc".lower():
            sort, nxt = "descending", name
        else:
            nxt = name
        label = escape(col.name if col else name)
        arrow = {"ascending": " \u25b2", "descending": " \u25bc"}.get(sort, "")
        head.append(
            f"<th scope='col' aria-sort='{sort}'><a href='{escape(_href(ds, params, **{'$order': nxt, '$offset': ''}))}'"
            f" title='sort by {label}'>{label}{arrow}</a><div class='muted'><code>{escape(name)}</code></div></th>"
        )
    body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in zip(*cells))
    try:
        offset, limit = int(params.get("$offset") or 0), int(params.get("$limit") or DEFAULT_PAGE)
    except ValueError:
        offset, limit = 0, DEFAULT_PAGE
    shown = len(cells[0]) if cells else 0
    nav = []
    if offset > 0:
        prev = _href(ds, params, **{"$offset": str(max(0, offset - limit)) if offset - limit > 0 else ""})
        nav.append(f"<a href='{escape(prev)}' rel='prev'>Previous page</a>")
    if offset + shown < matching and shown:
        nav.append(
            f"<a href='{escape(_href(ds, params, **{'$offset': str(offset + limit)}))}' rel='next'>Next page</a>"
        )
    resource = {k: v for k, v in params.items()}
    caption = (
        f"Rows {offset + 1 if shown else 0:,}\u2013{offset + shown:,} of {matching:,}"
        f"{' matching' if params.get('$where') or params.get('$q') else ''}"
    )
    return (
        f"<table class='rows'><caption>{caption}</caption><thead><tr>{''.join(head)}</tr></thead>"
        f"<tbody>{body}</tbody></table><nav class='pager' aria-label='Pages of rows'>{''.join(nav)}</nav>"
        f"<p class='muted'>These rows from the API: <a id='resource-link' "
        f"href='{escape(f'/resource/{ds.id}.json?{urlencode(resource)}')}'>"
        f"<code>{escape(f'/resource/{ds.id}.json?{urlencode(resource)}')}</code></a></p>"
    )


def columns_html(ds) -> str:
    ri = ds.ri.field if ds.ri else None
    rows = "".join(
        f"<tr><td><code>{escape(c.field)}</code>{' (row identifier)' if c.field == ri else ''}</td>"
        f"<td>{escape(c.name)}</td><td>{escape(c.type_name)}</td><td>{escape(c.description or '')}</td></tr>"
        for c in ds.columns
    )
    return (
        "<section aria-labelledby='cols-h'><h2 id='cols-h'>Columns</h2><table class='columns'><thead><tr>"
        "<th scope='col'>field name</th><th scope='col'>display name</th><th scope='col'>type</th>"
        f"<th scope='col'>description</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )

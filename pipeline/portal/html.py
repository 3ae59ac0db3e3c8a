"""A plain HTML page at `/`: the datasets, and for each its columns and first rows (`/d/{4x4}`)."""

from __future__ import annotations

from html import escape

from pipeline.portal import query, storage
from pipeline.portal.http import FOURFOUR, Request, Response
from pipeline.portal.views import view_json

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
    "margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}code{background:#f6f6f6;padding:0 .2em}.muted{color:#777}"
)
FIRST_ROWS = 20


def _page(title: str, body: str) -> Response:
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return Response(200, html.encode(), "text/html; charset=utf-8")


def _visible(req: Request, ds) -> bool:
    return not ds.private or bool(req.user) or req.portal.auth.open


def index(req: Request) -> Response:
    with req.portal.store.read() as conn:
        datasets = [(d, storage.row_count(conn, d)) for d in storage.all_datasets(conn) if _visible(req, d)]
    items = "".join(
        f"<tr><td><a href='/d/{d.id}'><code>{d.id}</code></a></td><td>{escape(d.name)}</td>"
        f"<td>{n:,}</td><td>{len(d.columns)}</td><td>{escape(d.stage)}{' (private)' if d.private else ''}</td></tr>"
        for d, n in datasets
    )
    table = (
        (f"<table><tr><th>id</th><th>name</th><th>rows</th><th>columns</th><th>stage</th></tr>{items}</table>")
        if datasets
        else "<p class='muted'>No datasets yet.</p>"
    )
    return _page(
        "Local portal",
        f"<h1>Local portal</h1><p class='muted'>{escape(str(req.portal.data_path))}</p>"
        f"{table}<p class='muted'>APIs: <code>/api/views/{{4x4}}.json</code>, "
        "<code>/resource/{4x4}.json</code>, <code>/api/publishing/v1</code></p>",
    )


def dataset(req: Request, fourfour: str) -> Response:
    with req.portal.store.read() as conn:
        ds = storage.require(conn, fourfour)
        req.check_read(ds)
        total = storage.row_count(conn, ds)
        q = query.build(ds, {"$limit": str(FIRST_ROWS)})
        names, columns = query.run(conn, q)
        cells = [o.cells(c) for o, c in zip(q.outputs, columns)] if columns and columns[0] else []
    view = view_json(ds)
    ri = ds.ri.field if ds.ri else None
    cols = "".join(
        f"<tr><td><code>{escape(c.field)}</code>{' (row identifier)' if c.field == ri else ''}</td>"
        f"<td>{escape(c.name)}</td><td>{escape(c.type_name)}</td></tr>"
        for c in ds.columns
    )
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in zip(*cells))
    return _page(
        ds.name,
        f"<p><a href='/'>all datasets</a></p><h1>{escape(ds.name)}</h1>"
        f"<p><code>{ds.id}</code> · {total:,} rows · {escape(view['publicationStage'])}</p>"
        f"<p>{escape(ds.description)}</p><h2>Columns</h2><table><tr><th>field name</th>"
        f"<th>display name</th><th>type</th></tr>{cols}</table>"
        f"<h2>First rows</h2><table><tr>{head}</tr>{body}</table>"
        f"<p class='muted'><a href='/resource/{ds.id}.json'>JSON</a> · "
        f"<a href='/resource/{ds.id}.csv'>CSV</a> · <a href='/api/views/{ds.id}.json'>metadata</a></p>",
    )


def routes(router) -> None:
    router.add("GET", r"/", index)
    router.add("GET", rf"/d/{FOURFOUR}", dataset)

"""The portal's HTML pages: the datasets at `/`, and each dataset's data browser at `/d/{4x4}`
(pipeline/portal/pages.py: rows paged, sorted and filtered through SoQL, columns, metadata, a map,
and the routes and runs that wrote it)."""

from __future__ import annotations

from html import escape

from pipeline.portal import storage
from pipeline.portal.http import FOURFOUR, Request, Response
from pipeline.portal.pages import dataset_page, page, when


def _visible(req: Request, ds) -> bool:
    return not ds.private or bool(req.user) or req.portal.auth.open


def index(req: Request) -> Response:
    with req.portal.store.read() as conn:
        datasets = [(d, storage.row_count(conn, d)) for d in storage.all_datasets(conn) if _visible(req, d)]
    items = "".join(
        f"<tr><td><a href='/d/{d.id}'><code>{d.id}</code></a></td><td><a href='/d/{d.id}'>{escape(d.name)}</a></td>"
        f"<td class='num'>{n:,}</td><td class='num'>{len(d.columns)}</td><td>{escape(d.category or '')}</td>"
        f"<td>{escape(', '.join(str(t) for t in d.tags or []))}</td><td>{when(d.rows_updated_at)}</td>"
        f"<td>{escape(d.stage)}{' (private)' if d.private else ''}</td></tr>"
        for d, n in datasets
    )
    table = (
        (
            "<table><caption>Datasets</caption><thead><tr><th scope='col'>id</th><th scope='col'>name</th>"
            "<th scope='col'>rows</th><th scope='col'>columns</th><th scope='col'>category</th>"
            "<th scope='col'>tags</th><th scope='col'>rows last updated</th><th scope='col'>stage</th></tr>"
            f"</thead><tbody>{items}</tbody></table>"
        )
        if datasets
        else "<p class='muted'>No datasets yet.</p>"
    )
    return page(
        "Local portal",
        f"<h1>Local portal</h1><p class='muted'>{escape(str(req.portal.data_path))}</p>"
        f"{table}<p class='muted'>APIs: <code>/api/views/{{4x4}}.json</code>, "
        "<code>/resource/{4x4}.json</code>, <code>/api/publishing/v1</code></p>",
    )


def dataset(req: Request, fourfour: str) -> Response:
    return dataset_page(req, fourfour)


def routes(router) -> None:
    router.add("GET", r"/", index)
    router.add("GET", rf"/d/{FOURFOUR}", dataset)

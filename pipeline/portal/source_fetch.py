"""The bytes of DSMAPI sources that are not uploaded: a view (the dataset's own rows) or a URL.

A view source is the dataset as CSV, a header of field names and each cell in the text form its
column type reads back (numbers, `true`/`false`, ISO timestamps, WKT), so its input columns keep
the dataset's types. A URL source is fetched once (http or https, at most `max_bytes`, within
`timeout` seconds); a failure fails the source with the reason.
"""

from __future__ import annotations

import csv
import io
import urllib.error
import urllib.request

from pipeline.portal import storage
from pipeline.portal.storage import quote
from pipeline.portal.wire import column_type

BATCH = 20_000


class FetchError(ValueError):
    """The source's bytes cannot be had."""


def view_csv(conn, fourfour: str) -> bytes:
    """The dataset's rows as CSV (field names, then cells), in :id order."""
    ds = storage.require(conn, fourfour)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.field for c in ds.columns])
    if not ds.columns:
        return out.getvalue().encode()
    types = [column_type(c.type_name) for c in ds.columns]
    cursor = conn.execute(f"SELECT {', '.join(quote(c.phys) for c in ds.columns)} FROM {quote(ds.table)} ORDER BY _sid")
    while True:
        rows = cursor.fetchmany(BATCH)
        if not rows:
            break
        cells = [t.cell(list(values)) for t, values in zip(types, zip(*rows))]
        writer.writerows(zip(*cells))
    return out.getvalue().encode()


def view_types(conn, fourfour: str) -> dict[str, str]:
    """{field name: dataTypeName} of the dataset a view source reads."""
    return {c.field: c.type_name for c in storage.require(conn, fourfour).columns}


def url_bytes(url: str, max_bytes: int, timeout: float = 30) -> tuple[bytes, str]:
    """(body, content type) of an http(s) URL; FetchError when it cannot be read."""
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise FetchError(f"the URL must be http or https, not {str(url)[:80]!r}")
    request = urllib.request.Request(url, headers={"User-Agent": "route-local-portal/1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only)
            body = response.read(max_bytes + 1)
            content_type = response.headers.get("Content-Type") or "text/csv"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FetchError(f"could not fetch {url}: {exc}") from None
    if len(body) > max_bytes:
        raise FetchError(f"{url} is larger than {max_bytes} bytes")
    return body, content_type.split(";")[0].strip().lower()

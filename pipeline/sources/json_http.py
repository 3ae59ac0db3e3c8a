"""HTTP for the json source: GETs through the shared HTTP layer, and the page loop (by link,
offset or page number).

Retries (429, 5xx, timeouts, dropped connections; back-off or the server's Retry-After) and
refusals with the server's message are the layer's (pipeline/http/). Header values (credentials)
are never part of a message or log line: requests are named by the page number and the URL
without the `params`, and every message goes through the run's secret mask. With credentials in
the headers, redirects are followed only within the url's host, so headers never reach another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from pipeline import http as layer
from pipeline.basics.errors import RunFailed

if TYPE_CHECKING:
    import requests  # the responses pipeline.http's Session returns (it imports requests when made)

USER_AGENT = "route-etl (json source)"
_HINTS = {
    400: "check params",
    401: "check the credentials in headers",
    403: "the credentials in headers may not read this",
    404: "check the url",
    405: "the url does not accept GET",
    422: "check params",
}


@dataclass
class Paging:
    """How to ask for the next page: by "link" (`next` expression or the Link header), "offset",
    "page" (a page number), or None for one request."""

    by: str | None = None
    next: Any = None  # compiled JMESPath, or None for the Link header
    next_text: str | None = None
    param: str | None = None
    size_param: str | None = None
    size: int | None = None
    start: int = 0


class JsonSession(layer.Session):
    """The layer's session, naming failures without an answer as the json source always has."""

    def describe(self, failure: str, host: str) -> str:
        if failure in ("timeout", "connect_timeout"):
            return f"no answer within {self.timeout:g} s"
        return f"could not connect to {host}, or the connection dropped"


class HttpClient:
    """GETs to one endpoint with the source's headers, timeout and retry policy."""

    def __init__(
        self,
        url: str,
        *,
        headers: dict,
        credentials: bool,
        timeout: float,
        retries: int,
        backoff: float,
        cancelled: threading.Event,
        log,
        mask: Callable[[str], str],
    ):
        self.mask = mask
        self.session = JsonSession(
            policy=layer.RetryPolicy(retries, backoff),
            timeout=timeout,
            headers=headers,
            cancelled=cancelled,
            log=log,
            mask=mask,
            user_agent=USER_AGENT,
            same_host_redirects=credentials,
        )

    def close(self) -> None:
        self.session.close()

    def get(self, url: str, params: dict | None, what: str) -> requests.Response:
        """The answer to GET `url`, after retries and redirects; RunFailed otherwise."""
        try:
            return self.session.request("GET", url, params=params, what=what)
        except layer.Refused as exc:
            hint = _HINTS.get(exc.status)
            raise RunFailed(f"{exc}" + (f" ({hint})" if hint else "")) from None
        except layer.RedirectRefused as exc:
            raise RunFailed(
                self.mask(
                    f"{what} redirects to another host ({exc.host}); the source sends its "
                    "headers only to the url's host: use the final address as url"
                )
            ) from None


def pages(
    client: HttpClient,
    url: str,
    params: dict,
    paging: Paging,
    max_pages: int | None,
    parse: Callable[[requests.Response, int, str], tuple[Any, list]],
    shown: Callable[[str], str],
    log,
) -> Iterator[tuple[int, list, str]]:
    """(page number, records, description) for each page, until an empty page, the last link or
    max_pages. `parse(response, number, where)` gives (the page's document, its records)."""
    by = paging.by
    position = paging.start
    seen = {url: 1}
    previous = None
    number = 0
    while True:
        number += 1
        query = dict(params) if number == 1 or by in ("offset", "page") else None
        where = f"page {number} ({shown(url)})"
        if by in ("offset", "page"):
            query[paging.param] = position
            if paging.size_param:
                query[paging.size_param] = paging.size
            where = f"page {number} ({shown(url)}, {paging.param}={position})"
        response = client.get(url, query or None, where)
        if by in ("offset", "page"):
            digest = hash(response.content)
            if number > 1 and digest == previous:
                raise RunFailed(
                    f"{where} is the same as page {number - 1}: the server seems to ignore "
                    f"'{paging.param}'; check paging.param"
                )
            previous = digest
        document, records = parse(response, number, where)
        yield number, records, where
        if not records:
            return
        if by == "link":
            link = (
                paging.next.search(document) if paging.next is not None else response.links.get("next", {}).get("url")
            )
            if not link or not isinstance(link, str):
                return
            following = urljoin(response.url, link)
            if following in seen:
                raise RunFailed(
                    f"the next link of {where} leads back to page {seen[following]}; the pages would never end"
                )
            url = following
            seen[url] = number + 1
        elif by == "offset":
            position += len(records)
        elif by == "page":
            position += 1
        else:
            return
        if max_pages is not None and number >= max_pages:
            log.warning("json source: stopped after max_pages (%d) pages; the server has more", max_pages)
            return

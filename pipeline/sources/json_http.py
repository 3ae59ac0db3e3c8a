"""HTTP for the json source: one GET with retries, and the page loop (by link, offset or page number).

429, 5xx, timeouts and dropped connections are retried with exponential back-off and jitter, or
after the Retry-After the server asked for; any other 4xx stops the run with the server's own
message. Header values (credentials) are never part of a message or log line: requests are named
by the page number and the URL without the `params`, and every message goes through the run's
secret mask. Redirects are followed by hand so that headers are never sent to another host.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests

from ..errors import RunFailed
from ..socrata.http import retry_after_seconds

USER_AGENT = "route-etl (json source)"
MAX_WAIT = 300.0          # never wait longer than this between attempts, whatever Retry-After says
MAX_REDIRECTS = 10
_HINTS = {400: "check params", 401: "check the credentials in headers",
          403: "the credentials in headers may not read this", 404: "check the url",
          405: "the url does not accept GET", 422: "check params"}


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


@dataclass
class Paging:
    """How to ask for the next page: by "link" (`next` expression or the Link header), "offset",
    "page" (a page number), or None for one request."""

    by: str | None = None
    next: Any = None          # compiled JMESPath, or None for the Link header
    next_text: str | None = None
    param: str | None = None
    size_param: str | None = None
    size: int | None = None
    start: int = 0


class HttpClient:
    """GETs to one endpoint with the source's headers, timeout and retry policy."""

    def __init__(self, url: str, *, headers: dict, credentials: bool, timeout: float, retries: int,
                 backoff: float, cancelled: threading.Event, log, mask: Callable[[str], str]):
        self.origin = origin(url)
        self.credentials = credentials  # headers other than Accept, User-Agent, ...
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.cancelled, self.log, self.mask = cancelled, log, mask
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self.session.headers.update(headers)

    def close(self) -> None:
        self.session.close()

    def get(self, url: str, params: dict | None, what: str) -> requests.Response:
        """The answer to GET `url`, after retries and same-host redirects; RunFailed otherwise."""
        attempt = 0
        while True:
            attempt += 1
            wait, reason = None, ""
            try:
                response = self._follow(url, params, what)
            except requests.exceptions.Timeout:
                reason = f"no answer within {self.timeout:g} s"
            except requests.exceptions.ConnectionError:
                reason = f"could not connect to {urlsplit(url).netloc}, or the connection dropped"
            except requests.exceptions.RequestException as exc:
                raise RunFailed(self.mask(f"{what}: the request failed: {type(exc).__name__}")) from None
            else:
                status = response.status_code
                if status < 300:
                    return response
                message = server_message(response)
                if status != 429 and status < 500:
                    hint = _HINTS.get(status)
                    raise RunFailed(self.mask(
                        f"{what} was refused: HTTP {status} {response.reason or ''}".rstrip()
                        + (f": {message}" if message else "") + (f" ({hint})" if hint else "")))
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                reason = f"HTTP {status}" + (f" ({message})" if message else "")
                response.close()
            if attempt > self.retries:
                raise RunFailed(self.mask(f"{what}: gave up after {attempt} attempts; last: {reason}"))
            delay = min(MAX_WAIT, wait) if wait is not None else \
                min(MAX_WAIT, self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
            self.log.warning("%s", self.mask(f"{what}: {reason}; retrying in {delay:.1f} s "
                                             f"(attempt {attempt + 1} of {self.retries + 1})"))
            if self.cancelled.wait(delay):
                raise RunFailed(self.mask(f"{what}: cancelled while waiting to retry ({reason})"))

    def _follow(self, url: str, params: dict | None, what: str) -> requests.Response:
        for _ in range(MAX_REDIRECTS + 1):
            response = self.session.get(url, params=params, allow_redirects=False,
                                        timeout=(min(10.0, self.timeout), self.timeout))
            location = response.headers.get("Location")
            if not (response.is_redirect and location):
                return response
            response.close()
            target = urljoin(response.url, location)
            if self.credentials and origin(target) != self.origin:
                raise RunFailed(self.mask(f"{what} redirects to another host ({urlsplit(target).netloc}); the "
                                          "source sends its headers only to the url's host: use the final "
                                          "address as url"))
            url, params = target, None
        raise RunFailed(self.mask(f"{what}: more than {MAX_REDIRECTS} redirects"))


def server_message(response: requests.Response, most: int = 300) -> str:
    """What the server said about a refusal: a JSON body's message field, else its text."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = response.text
    for _ in range(3):  # {"error": {"message": ...}} and [{"message": ...}]
        if isinstance(body, list) and body:
            body = body[0]
        if isinstance(body, dict):
            found = next((body[k] for k in ("message", "error_description", "error", "detail", "title",
                                            "errors", "msg") if body.get(k)), None)
            body = found if found is not None else orjson.dumps(body).decode()
    text = re.sub(r"\s+", " ", body if isinstance(body, str) else orjson.dumps(body).decode()).strip()
    return text if len(text) <= most else text[: most - 3] + "..."


def pages(client: HttpClient, url: str, params: dict, paging: Paging, max_pages: int | None,
          parse: Callable[[requests.Response, int, str], tuple[Any, list]], shown: Callable[[str], str],
          log) -> Iterator[tuple[int, list, str]]:
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
                raise RunFailed(f"{where} is the same as page {number - 1}: the server seems to ignore "
                                f"'{paging.param}'; check paging.param")
            previous = digest
        document, records = parse(response, number, where)
        yield number, records, where
        if not records:
            return
        if by == "link":
            link = paging.next.search(document) if paging.next is not None else \
                response.links.get("next", {}).get("url")
            if not link or not isinstance(link, str):
                return
            following = urljoin(response.url, link)
            if following in seen:
                raise RunFailed(f"the next link of {where} leads back to page {seen[following]}; the pages "
                                "would never end")
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

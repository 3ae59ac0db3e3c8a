"""A keep-alive session that sends one request at a time through the retry policy.

One attempt is classified here: an accepted status returns the response; 429, 5xx, timeouts and
dropped connections are Transient (with whether the request may have been applied); any other
answer is Refused with the server's own message. Messages name requests by the caller's `what`
and hosts by name only, and go through `mask`, which replaces every secret the session was given
(passwords, tokens, header values) and whatever the caller's own mask knows.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import orjson

from pipeline.http.errors import (
    NOT_APPLIED,
    NOT_PROCESSED,
    TRANSIENT,
    UNKNOWN,
    HttpError,
    RedirectRefused,
    Refused,
    Transient,
)
from pipeline.http.retry import RetryPolicy, retry_after_seconds

if TYPE_CHECKING:
    import requests

# requests (and urllib3) load when a Session is made: every stage package imports this layer, and
# planning a route (`route validate`) makes no request.

MAX_REDIRECTS = 10


def is_loopback(host: str) -> bool:
    """True for a host name or address of this machine (plain http is allowed only there)."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


class Session:
    """HTTP with one connection pool, default headers and auth, a timeout, retries and a mask.

    `same_host_redirects` follows redirects only within the first URL's scheme and host (for
    sessions whose headers are credentials: requests itself drops only Authorization).
    """

    def __init__(
        self,
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 60.0,
        headers: dict | None = None,
        auth: tuple[str, str] | None = None,
        pool: int = 8,
        cancelled: threading.Event | None = None,
        log=None,
        secrets: Iterable[str] = (),
        mask: Callable[[str], str] | None = None,
        peer: str = "the server",
        user_agent: str = "route-etl",
        same_host_redirects: bool = False,
    ):
        self.policy = policy or RetryPolicy()
        self.timeout = float(timeout)
        self.cancelled = cancelled or threading.Event()
        self.log = log
        self.peer = peer
        self.same_host_redirects = same_host_redirects
        known = set(secrets)  # header values are secrets only when the caller says so
        if auth and auth[1]:  # the password, and the Basic header a server might echo
            known |= {auth[1], base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()}
        self.secrets = sorted((s for s in known if s), key=len, reverse=True)
        self.outer_mask = mask
        import requests  # see the top: loaded by the first Session
        from requests.adapters import HTTPAdapter

        self.requests = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(pool, 2), max_retries=0)
        self.requests.mount("http://", adapter)
        self.requests.mount("https://", adapter)
        self.requests.headers.update({"User-Agent": user_agent, "Accept": "application/json"})
        self.requests.headers.update(headers or {})
        self.requests.auth = auth

    def mask(self, text: str) -> str:
        """`text` with every secret this session knows (and the caller's mask knows) as ***."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return self.outer_mask(text) if self.outer_mask is not None else text

    def close(self) -> None:
        self.requests.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params=None,
        data=None,
        json=None,
        headers: dict | None = None,
        repeatable: bool = True,
        ok: Callable[[int], bool] | Iterable[int] | None = None,
    ) -> requests.Response:
        """Send a request, retrying transient failures; the response, or an HttpError.

        `what` names the request in messages ("page 2 (https://api.example.org/items)");
        `repeatable` says whether sending it twice is harmless; `ok` the statuses accepted
        (default: any below 300).
        """
        hdrs = dict(headers or {})
        if json is not None:
            data = orjson.dumps(json)
            hdrs.setdefault("Content-Type", "application/json")
        accept = _acceptor(ok)
        return self.policy.run(
            lambda: self.attempt(method, url, what=what, params=params, data=data, headers=hdrs, ok=accept),
            what=what,
            repeatable=repeatable,
            cancelled=self.cancelled,
            log=self.log,
            mask=self.mask,
            peer=self.peer,
        )

    def attempt(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params=None,
        data=None,
        headers=None,
        ok: Callable[[int], bool] = lambda status: status < 300,
    ) -> requests.Response:
        """One try: the response when its status is accepted; Transient or Refused otherwise."""
        import requests

        host = urlsplit(url).netloc
        try:
            response = self._send(method, url, what=what, params=params, data=data, headers=headers)
        except requests.exceptions.ConnectTimeout:
            raise Transient(self.describe("connect_timeout", host), outcome=NOT_APPLIED) from None
        except requests.exceptions.Timeout:
            raise Transient(self.describe("timeout", host)) from None
        except requests.exceptions.ConnectionError as exc:
            if before_sending(exc):
                raise Transient(self.describe("refused", host), outcome=NOT_APPLIED) from None
            raise Transient(self.describe("dropped", host)) from None
        except requests.exceptions.RequestException as exc:
            raise HttpError(self.mask(f"{what}: the request to {host} failed: {type(exc).__name__}")) from None
        status = response.status_code
        if ok(status):
            return response
        message = server_message(response)
        if status in TRANSIENT:
            response.close()
            raise Transient(
                f"HTTP {status}" + (f" ({message})" if message else ""),
                status=status,
                outcome=NOT_APPLIED if status in NOT_PROCESSED else UNKNOWN,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        raise Refused(
            self.mask(
                f"{what} was refused: HTTP {status} {response.reason or ''}".rstrip()
                + (f": {message}" if message else "")
            ),
            status=status,
            phrase=response.reason or "",
            body=_body(response),
            text=response.text,
            server_message=message,
            headers=response.headers,
        )

    def describe(self, failure: str, host: str) -> str:
        """A failure without an answer in a few words: connect_timeout, timeout, refused or dropped."""
        return {
            "connect_timeout": f"could not connect to {host} within {self.timeout:g} s",
            "timeout": f"no answer from {host} within {self.timeout:g} s",
            "refused": f"could not connect to {host}",
            "dropped": f"the connection to {host} was dropped before the answer",
        }[failure]

    def _send(self, method: str, url: str, *, what: str, params, data, headers) -> requests.Response:
        timeout = (min(10.0, self.timeout), self.timeout)
        if not self.same_host_redirects:
            return self.requests.request(method, url, params=params, data=data, headers=headers, timeout=timeout)
        first = origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            response = self.requests.request(
                method, url, params=params, data=data, headers=headers, timeout=timeout, allow_redirects=False
            )
            location = response.headers.get("Location")
            if not (response.is_redirect and location):
                return response
            response.close()
            target = urljoin(response.url, location)
            if origin(target) != first:
                host = urlsplit(target).netloc
                raise RedirectRefused(
                    self.mask(
                        f"{what} redirects to another host ({host}); the request's credentials go only to its own host"
                    ),
                    host=host,
                )
            url, params = target, None
        raise HttpError(self.mask(f"{what}: more than {MAX_REDIRECTS} redirects"))


def _acceptor(ok) -> Callable[[int], bool]:
    if ok is None:
        return lambda status: status < 300
    if callable(ok):
        return ok
    accepted = frozenset(ok)
    return accepted.__contains__


def _body(response: requests.Response):
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text


def server_message(response: requests.Response, most: int = 300) -> str:
    """What the server said about a failure, in one line: a JSON body's message field, else its text."""
    body = _body(response)
    for _ in range(3):  # {"error": {"message": ...}} and [{"message": ...}]
        if isinstance(body, list) and body:
            body = body[0]
        if isinstance(body, dict):
            found = next(
                (
                    body[k]
                    for k in ("message", "error_description", "error", "detail", "title", "errors", "msg")
                    if body.get(k)
                ),
                None,
            )
            body = found if found is not None else orjson.dumps(body).decode()
    text = re.sub(r"\s+", " ", body if isinstance(body, str) else orjson.dumps(body).decode()).strip()
    return text if len(text) <= most else text[: most - 3] + "..."


def before_sending(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection failed before the request was sent (so nothing was applied)."""
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    seen = set()
    err: BaseException | None = exc
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, (NewConnectionError, NameResolutionError, ConnectionRefusedError)):
            return True
        err = (
            getattr(err, "reason", None)
            or (err.args[0] if err.args and isinstance(err.args[0], BaseException) else None)
            or err.__cause__
            or err.__context__
        )
    return False

"""One keep-alive HTTP session to a portal, with the retry policy every Socrata call shares.

Transient failures (429, 5xx, timeouts, dropped connections) are retried with exponential back-off
and jitter, or after exactly the `Retry-After` the portal asked for. A request whose outcome may
be unknown (the connection dropped after the body was sent, a 500) is retried only when the caller
says repeating it is harmless (`repeatable=True`: reads, upserts keyed by a row identifier,
deletes); otherwise OutcomeUnknown is raised so the caller can say which rows may have arrived.
Credentials travel only in the Authorization header; no message built here contains them.
"""

from __future__ import annotations

import email.utils
import ipaddress
import random
import threading
import time
import uuid
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from .errors import (
    NOT_APPLIED,
    NOT_PROCESSED,
    TRANSIENT,
    UNKNOWN,
    OutcomeUnknown,
    SocrataError,
    error_fields,
    explain,
)

USER_AGENT = "route-etl (socrata delivery)"
MAX_WAIT = 300.0     # never sleep longer than this between attempts, whatever Retry-After says


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalise_domain(domain: str) -> str:
    """`https://data.ct.gov/` -> `https://data.ct.gov`; a bare host name means https.

    Plain http is refused except on loopback (a served local portal): real portals refuse Basic
    auth over http, and credentials must never travel in clear text.
    """
    text = domain.strip().rstrip("/")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{domain}' is not a portal address: write it as https://data.example.gov")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"'{domain}' has a path; give only the portal address, e.g. https://{parts.netloc}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(f"'{domain}' uses plain http: use https:// (plain http is only allowed "
                         f"for a portal on this machine, such as 127.0.0.1)")
    return f"{parts.scheme}://{parts.netloc}"


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds, possibly fractional, or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class SocrataSession:
    """HTTP to one portal: base URL, auth, app token, timeouts and retries in one place."""

    def __init__(self, domain: str, *, auth: dict | None = None, timeout: float = 120.0,
                 retries: int = 5, backoff: float = 1.0, pool: int = 8,
                 cancelled: threading.Event | None = None, log=None, label: str | None = None):
        self.base = normalise_domain(domain)
        self.label = label or self.base        # the portal as messages name it
        self.host = urlsplit(self.base).netloc
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.cancelled = cancelled or threading.Event()
        self.log = log
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(pool, 2), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self.session.trust_env = True
        auth = auth or {}
        user = auth.get("username") or auth.get("api_key_id")
        secret = auth.get("password") if auth.get("username") else auth.get("api_key_secret")
        if user and secret:
            self.session.auth = (user, secret)
        if auth.get("app_token"):
            self.session.headers["X-App-Token"] = auth["app_token"]
        self.has_auth = bool(user and secret)

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base + path

    def close(self) -> None:
        self.session.close()

    # -- the one request loop ---------------------------------------------------------------

    def request(self, method: str, path: str, *, what: str, dataset: str = "", params=None,
                json=None, data=None, headers=None, repeatable: bool = True,
                ok=(200, 201, 202, 204)) -> requests.Response:
        """Send one request, retrying transient failures; raise SocrataError when it fails.

        `what` names the request in messages ("upsert of rows 2-10001"); `repeatable` says whether
        sending it twice is harmless.
        """
        hdrs = dict(headers or {})
        if json is not None:
            data = orjson.dumps(json)
            hdrs.setdefault("Content-Type", "application/json")
        request_id = uuid.uuid4().hex
        hdrs["X-Socrata-RequestId"] = request_id
        attempt = 0
        while True:
            attempt += 1
            outcome, wait, reason, status, response = UNKNOWN, None, "", None, None
            try:
                response = self.session.request(method, self.url(path), params=params, data=data,
                                                headers=hdrs,
                                                timeout=(min(10.0, self.timeout), self.timeout))
            except requests.exceptions.ConnectTimeout:
                outcome, reason = NOT_APPLIED, f"could not connect to {self.host} within {self.timeout:g} s"
            except requests.exceptions.Timeout:
                reason = f"no answer from {self.host} within {self.timeout:g} s"
            except requests.exceptions.ConnectionError as exc:
                if _before_sending(exc):
                    outcome, reason = NOT_APPLIED, f"could not connect to {self.host}"
                else:
                    reason = f"the connection to {self.host} was dropped before the answer"
            except requests.exceptions.RequestException as exc:
                raise SocrataError(f"{what}: the request to {self.host} failed: {type(exc).__name__}",
                                   request_id=request_id) from None
            else:
                status = response.status_code
                if status in ok:
                    response.request_id = response.headers.get("X-Socrata-RequestId") or request_id
                    return response
                code, message = error_fields(_body(response))
                if status not in TRANSIENT:
                    raise SocrataError(explain(status, code, message, what=what, dataset=dataset, domain=self.label),
                                       status=status, code=code, server_message=message,
                                       request_id=request_id, outcome=NOT_APPLIED)
                outcome = NOT_APPLIED if status in NOT_PROCESSED else UNKNOWN
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                reason = f"HTTP {status}" + (f" ({message})" if message else "")
                response.close()
            if outcome == UNKNOWN and not repeatable:
                raise OutcomeUnknown(f"{what}: {reason}; the portal may or may not have applied it",
                                     status=status, request_id=request_id, outcome=UNKNOWN)
            if attempt > self.retries:
                raise SocrataError(f"{what}: gave up after {attempt} attempts; last: {reason}",
                                   status=status, request_id=request_id, outcome=outcome)
            delay = self._delay(attempt, wait)
            if self.log is not None:
                self.log.warning("%s: %s; retrying in %.1f s (attempt %d of %d)", what, reason, delay,
                                 attempt + 1, self.retries + 1)
            if self.cancelled.wait(delay):
                raise SocrataError(f"{what}: cancelled while waiting to retry ({reason})",
                                   status=status, request_id=request_id, outcome=outcome)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # The portal said when; add a little jitter so parallel batches do not return in step.
            return min(MAX_WAIT, retry_after * random.uniform(1.0, 1.1))
        return min(MAX_WAIT, self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))

    def get_json(self, path: str, *, what: str, dataset: str = "", params=None):
        response = self.request("GET", path, what=what, dataset=dataset, params=params)
        return _json(response, what)

    def send_json(self, method: str, path: str, body=None, *, what: str, dataset: str = "",
                  repeatable: bool = True, params=None):
        response = self.request(method, path, what=what, dataset=dataset, json=body, params=params,
                                repeatable=repeatable)
        return _json(response, what) if response.content else None


def _json(response: requests.Response, what: str):
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise SocrataError(f"{what}: the portal answered something that is not JSON "
                           f"(HTTP {response.status_code}, {response.headers.get('Content-Type', 'no type')})",
                           status=response.status_code) from None


def _body(response: requests.Response):
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text


def _before_sending(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection failed before the request was sent (so nothing was applied)."""
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    seen = set()
    err: BaseException | None = exc
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, (NewConnectionError, NameResolutionError, ConnectionRefusedError)):
            return True
        err = getattr(err, "reason", None) or (err.args[0] if err.args and isinstance(err.args[0], BaseException) else None) \
            or err.__cause__ or err.__context__
    return False

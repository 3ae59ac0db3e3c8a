"""The HTTP session to one portal: the shared layer (pipeline.http) with Socrata's ways.

Retries, back-off, Retry-After, cancellation and masking are the layer's (see pipeline/http/).
What is Socrata's is here: the portal's address (https only, except on this machine), Basic auth
or an API key and the app token, a request id on every request, and refusals turned into a
sentence that says what to do (errors.explain) from the portal's error body. A request whose
outcome may be unknown (the connection dropped after the body was sent, a 500) is retried only
when the caller says repeating it is harmless (`repeatable=True`: reads, upserts keyed by a row
identifier, deletes); otherwise OutcomeUnknown is raised so the caller can say which rows may
have arrived. Credentials travel only in headers, and no message contains them.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import orjson

from pipeline import http as layer
from pipeline.http import is_loopback
from pipeline.socrata.errors import NOT_APPLIED, UNKNOWN, OutcomeUnknown, SocrataError, error_fields, explain

if TYPE_CHECKING:
    import requests


USER_AGENT = "route-etl (socrata delivery)"


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
    if parts.username or parts.password:
        # A user or password in the address would be printed and stored wherever the domain is.
        raise ValueError(f"'{parts.hostname}': give the user and password under auth:, not in the portal address")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"'{domain}' has a path; give only the portal address, e.g. https://{parts.netloc}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(
            f"'{domain}' uses plain http: use https:// (plain http is only allowed "
            f"for a portal on this machine, such as 127.0.0.1)"
        )
    return f"{parts.scheme}://{parts.netloc}"


class SocrataSession:
    """HTTP to one portal: base URL, auth, app token, timeouts and retries in one place."""

    def __init__(
        self,
        domain: str,
        *,
        auth: dict | None = None,
        timeout: float = 120.0,
        retries: int = 5,
        backoff: float = 1.0,
        pool: int = 8,
        cancelled: threading.Event | None = None,
        log=None,
        label: str | None = None,
    ):
        self.base = normalise_domain(domain)
        self.label = label or self.base  # the portal as messages name it
        # Requests in flight the portal asks for (the local portal: one), when it says so; Socrata does not.
        self.preferred_concurrency: int | None = None
        self.host = urlsplit(self.base).netloc
        auth = auth or {}
        user = auth.get("username") or auth.get("api_key_id")
        secret = auth.get("password") if auth.get("username") else auth.get("api_key_secret")
        self.has_auth = bool(user and secret)
        token = auth.get("app_token")
        self.session = layer.Session(
            policy=layer.RetryPolicy(retries, backoff),
            timeout=timeout,
            pool=pool,
            cancelled=cancelled,
            log=log,
            auth=(user, secret) if self.has_auth else None,
            headers={"X-App-Token": token} if token else None,
            secrets=[token or ""],
            peer="the portal",
            user_agent=USER_AGENT,
        )

    @property
    def policy(self) -> layer.RetryPolicy:
        return self.session.policy

    @property
    def retries(self) -> int:
        return self.session.policy.retries

    @property
    def timeout(self) -> float:
        return self.session.timeout

    @property
    def cancelled(self) -> threading.Event:
        return self.session.cancelled

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base + path

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        dataset: str = "",
        params=None,
        json=None,
        data=None,
        headers=None,
        repeatable: bool = True,
        ok=(200, 201, 202, 204),
    ) -> requests.Response:
        """Send one request, retrying transient failures; raise SocrataError when it fails.

        `what` names the request in messages ("upsert of rows 2-10001"); `repeatable` says whether
        sending it twice is harmless.
        """
        request_id = uuid.uuid4().hex
        hdrs = {**(headers or {}), "X-Socrata-RequestId": request_id}
        try:
            response = self.session.request(
                method,
                self.url(path),
                what=what,
                params=params,
                json=json,
                data=data,
                headers=hdrs,
                repeatable=repeatable,
                ok=ok,
            )
        except layer.Refused as exc:
            code, message = error_fields(exc.body)
            raise SocrataError(
                self.session.mask(explain(exc.status, code, message, what=what, dataset=dataset, domain=self.label)),
                status=exc.status,
                code=code,
                server_message=self.session.mask(message),
                request_id=request_id,
                outcome=NOT_APPLIED,
            ) from None
        except layer.OutcomeUnknown as exc:
            raise OutcomeUnknown(str(exc), status=exc.status, request_id=request_id, outcome=UNKNOWN) from None
        except layer.HttpError as exc:
            raise SocrataError(str(exc), status=exc.status, request_id=request_id, outcome=exc.outcome) from None
        response.request_id = response.headers.get("X-Socrata-RequestId") or request_id
        preferred = response.headers.get("X-Preferred-Concurrency", "")
        if preferred.isdigit() and 1 <= int(preferred) <= 32:
            self.preferred_concurrency = int(preferred)
        return response

    def retrying(self, attempt, *, what: str):
        """`attempt()` under this session's retry policy: it raises pipeline.http.Transient to be
        tried again (a step that must look before it repeats a request); SocrataError when it never
        succeeds."""
        try:
            return self.policy.run(
                attempt,
                what=what,
                cancelled=self.cancelled,
                log=self.session.log,
                mask=self.session.mask,
                peer="the portal",
            )
        except layer.HttpError as exc:
            raise SocrataError(str(exc), status=exc.status, outcome=exc.outcome) from None

    def get_json(self, path: str, *, what: str, dataset: str = "", params=None):
        response = self.request("GET", path, what=what, dataset=dataset, params=params)
        return _json(response, what)

    def send_json(
        self, method: str, path: str, body=None, *, what: str, dataset: str = "", repeatable: bool = True, params=None
    ):
        response = self.request(
            method, path, what=what, dataset=dataset, json=body, params=params, repeatable=repeatable
        )
        return _json(response, what) if response.content else None


def _json(response: requests.Response, what: str):
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise SocrataError(
            f"{what}: the portal answered something that is not JSON "
            f"(HTTP {response.status_code}, {response.headers.get('Content-Type', 'no type')})",
            status=response.status_code,
        ) from None

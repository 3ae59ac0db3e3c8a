"""Requests, responses and routing, independent of the socket server that carries them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import orjson

from pipeline.portal import behaviour
from pipeline.portal.errors import PortalError, bad_request

JSON = "application/json; charset=utf-8"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = JSON
    headers: dict = field(default_factory=dict)


def json_response(obj, status: int = 200, headers: dict | None = None) -> Response:
    return Response(status, orjson.dumps(obj), JSON, headers or {})


def error_response(err: PortalError, dsmapi: bool = False) -> Response:
    body = behaviour.dsmapi_error(err) if dsmapi else err.body()
    return Response(err.status, orjson.dumps(body), JSON, dict(err.headers))


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: object
    body: bytes
    portal: object
    user: str | None = None

    @classmethod
    def parse(cls, method, target, headers, body, portal) -> Request:
        path, _, qs = target.partition("?")
        from urllib.parse import unquote

        return cls(method, unquote(path), parse_qs(qs, keep_blank_values=True), headers, body, portal)

    def param(self, name: str, default=None):
        values = self.query.get(name)
        return values[0] if values else default

    def params(self) -> dict[str, str]:
        """First value of every query parameter, app token left out."""
        return {k: v[0] for k, v in self.query.items() if k != "$$app_token"}

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def json(self, default=None):
        """The body as JSON (sodapy sends JSON with no Content-Type); 400 when it is not JSON."""
        if not self.body.strip():
            return default
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise bad_request("req.body.malformed-json", f"The request body is not valid JSON: {exc}") from None

    def json_object(self) -> dict:
        body = self.json({})
        if not isinstance(body, dict):
            raise bad_request("req.body.not-an-object", "The request body must be a JSON object")
        return body

    def whole(self, name: str, default: int) -> int:
        """A query parameter that must be a whole number, 0 or more (400 otherwise; capped at 2^63-1)."""
        text = self.param(name)
        if text in (None, ""):
            return default
        if not text.strip().isascii() or not text.strip().isdigit():
            raise bad_request("req.param.not-a-number", f"{name} must be a whole number, 0 or more; got '{text[:40]}'")
        digits = text.strip().lstrip("0") or "0"
        return 2**63 - 1 if len(digits) > 19 else min(int(digits), 2**63 - 1)

    # ---- auth
    def require_user(self) -> str:
        """The authenticated user; 403 when the request carries no credentials and needs them."""
        if self.user:
            return self.user
        if self.portal.auth.open:
            return "anonymous"
        raise behaviour.not_logged_in()

    def check_read(self, ds) -> None:
        if ds.private:
            self.require_user()


def member(body: dict, key: str) -> dict:
    """`body[key]` as a JSON object: {} when absent or null, 400 when it is anything but an object
    (hostile bodies such as {"action": 5} must not reach `.get` on an int)."""
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request("req.body.not-an-object", f"'{key}' in the request body must be a JSON object", key=key)
    return value


class Router:
    """(method, path pattern) -> handler(request, **groups)."""

    def __init__(self):
        self.routes: list[tuple[str, re.Pattern, object]] = []

    def add(self, methods: str, pattern: str, handler) -> None:
        for method in methods.split():
            self.routes.append((method, re.compile(pattern + r"\Z"), handler))

    def find(self, method: str, path: str):
        allowed = False
        for m, pattern, handler in self.routes:
            match = pattern.match(path)
            if match:
                if m == method or (method == "HEAD" and m == "GET"):
                    return handler, match.groupdict()
                allowed = True
        if allowed:
            raise PortalError(405, "method_not_allowed", f"{method} is not allowed on {path}")
        raise PortalError(404, "not_found", f"Nothing at {path}", {"path": path})


FOURFOUR = r"(?P<fourfour>[a-z0-9]{4}-[a-z0-9]{4})"

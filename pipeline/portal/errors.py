"""Refusals the portal answers with: an HTTP status and Socrata's error body (§1 of the reference)."""

from __future__ import annotations

from pipeline.basics.errors import RouteError


class PortalError(RouteError):
    """A request the portal refuses. `body()` is what goes on the wire.

    The body carries both `code` (what the dev docs and .NET read) and `errorCode` (what
    soda-fountain writes and soda-java reads), so every client finds the name it looks for.
    """

    def __init__(self, status: int, code: str, message: str, data: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.data = data or {}
        self.headers = headers or {}

    def body(self) -> dict:
        return {"code": self.code, "errorCode": self.code, "error": True, "message": self.message, "data": self.data}


class Maltyped(ValueError):
    """A value that does not fit its column's type; the caller turns it into a 400."""

    def __init__(self, field: str, expected: str, got):
        self.field = field
        self.expected = expected
        self.got = got
        super().__init__(f"for field '{field}' we expected '{expected}' but got {_show(got)}")


def _show(value) -> str:
    import orjson

    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return f"'{text[:200]}'"


def bad_request(code: str, message: str, **data) -> PortalError:
    return PortalError(400, code, message, data)


def not_found(code: str, message: str, **data) -> PortalError:
    return PortalError(404, code, message, data)

"""What went wrong talking to a portal, and what the publisher should do about it.

Socrata answers errors in several body shapes (`message`, `code` or `errorCode`, `data`); the client
keeps the status, the code and the server's own words, classifies the failure, and turns it into a
sentence that says what to do. Nothing here ever sees credentials: messages are built from the
status, the body and the dataset id only.

    SocrataError (RunFailed)      any failure the client gives up on; `outcome` says whether the
    │                             request certainly changed nothing ("not_applied") or may have
    │                             ("unknown"), so an append knows whether rows may have arrived
    └── OutcomeUnknown            a request that must not be repeated got no clear answer
"""

from __future__ import annotations

from pipeline.basics.errors import RunFailed

NOT_APPLIED = "not_applied"
UNKNOWN = "unknown"

# Statuses that are retried: the server (or a proxy) had a transient problem.
TRANSIENT = {408, 429, 500, 502, 503, 504}
# Of those, the ones after which the request certainly was not applied (throttled, unavailable).
NOT_PROCESSED = {429, 503}


class SocrataError(RunFailed):
    """The portal refused a request, or never answered it after every retry."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        server_message: str = "",
        request_id: str = "",
        outcome: str = NOT_APPLIED,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.server_message = server_message
        self.request_id = request_id
        self.outcome = outcome


class OutcomeUnknown(SocrataError):
    """A non-repeatable request (an append) may or may not have been applied."""


def error_fields(body) -> tuple[str, str]:
    """(code, message) from any of the error body shapes Socrata uses."""
    if isinstance(body, dict):
        code = body.get("code") or body.get("errorCode") or ""
        message = body.get("message") or body.get("error") or ""
        if not isinstance(message, str):
            message = ""
        return str(code), message
    if isinstance(body, str):
        return "", body.strip()[:300]
    return "", ""


def explain(status: int, code: str, server_message: str, *, what: str, dataset: str = "", domain: str = "") -> str:
    """A sentence a publisher can act on, for a refused request (`what` names the request)."""
    said = f" The portal said: {server_message}" if server_message else ""
    target = f"dataset {dataset}" if dataset else "the dataset"
    on = f" on {domain}" if domain else ""
    low = f"{code} {server_message}".lower()
    if status == 401:
        return (
            f"{what}: the portal{on} refused the credentials (HTTP 401). Check auth.username and "
            f"auth.password (or auth.api_key_id and auth.api_key_secret) in the route, and the "
            f"environment variables they come from.{said}"
        )
    if status == 403:
        if "authentication_required" in low or "logged in" in low:
            return (
                f"{what}: the portal{on} requires credentials for {target} (HTTP 403): add "
                f"auth.username and auth.password (or an API key) to the route.{said}"
            )
        if "derived" in low or "sync" in low:
            return (
                f"{what}: {target}{on} is a derived or synced view and cannot be written (HTTP "
                f"403); deliver to the dataset it comes from.{said}"
            )
        return (
            f"{what}: the account in auth has no permission to change {target}{on} (HTTP 403); "
            f"ask the dataset owner to make it a collaborator (editor), or use an account that "
            f"is one.{said}"
        )
    if status == 404:
        return (
            f"{what}: {target} was not found{on} (HTTP 404). Check `dataset` (and `domain`), or "
            f"add `create:` to the delivery so route creates it.{said}"
        )
    if "column-not-found" in low or "not found on the dataset" in low or "no such column" in low:
        return (
            f"{what}: a field sent is not a column of {target}{on} (HTTP {status}): map route "
            f"columns to the dataset's field names with `columns:`.{said}"
        )
    if "maltyped" in low or ("expected" in low and "got" in low):
        return (
            f"{what}: the portal refused a value of the wrong type for {target}{on} (HTTP {status}); "
            f"cast the column in target_transforms to the dataset column's type.{said}"
        )
    if "derived" in low or "sync" in low:
        return f"{what}: {target}{on} is a derived or synced view and cannot be written.{said}"
    if status == 409:
        return (
            f"{what}: {target}{on} is busy with another change (HTTP 409); wait for it to finish and run again.{said}"
        )
    if status == 413:
        return f"{what}: the request was too large for the portal (HTTP 413); lower `batch_rows`.{said}"
    return f"{what}: the portal{on} answered HTTP {status}{f' ({code})' if code else ''}.{said}"

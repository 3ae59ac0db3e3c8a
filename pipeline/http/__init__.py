"""One HTTP layer for every caller: the Socrata client, the json source, webhooks, the log dataset.

A `Session` is one keep-alive connection pool with a `RetryPolicy` (tenacity underneath):
transient failures are retried with exponential back-off or after the server's Retry-After,
final refusals carry the server's own message, a cancelled run stops waiting at once, and every
message goes through the session's mask so no secret is ever part of one. See errors.py for
what is raised.
"""

from pipeline.http.errors import (
    NOT_APPLIED,
    NOT_PROCESSED,
    TRANSIENT,
    UNKNOWN,
    Cancelled,
    GaveUp,
    HttpError,
    OutcomeUnknown,
    RedirectRefused,
    Refused,
    Transient,
)
from pipeline.http.retry import MAX_WAIT, RetryPolicy, retry_after_seconds
from pipeline.http.session import Session, is_loopback, server_message

__all__ = [
    "MAX_WAIT",
    "NOT_APPLIED",
    "NOT_PROCESSED",
    "TRANSIENT",
    "UNKNOWN",
    "Cancelled",
    "GaveUp",
    "HttpError",
    "OutcomeUnknown",
    "RedirectRefused",
    "Refused",
    "RetryPolicy",
    "Session",
    "Transient",
    "is_loopback",
    "retry_after_seconds",
    "server_message",
]

"""What the HTTP layer raises, and how a failed attempt is told apart from a final answer.

HttpError (RunFailed)     a request failed for good; `outcome` says whether the server certainly
│                         did not apply it ("not_applied") or may have ("unknown")
├── Refused               a final answer: any 4xx but 408 and 429 (or a status the caller does not
│                         accept); keeps the status, reason phrase and body for the caller's words
├── GaveUp                every attempt failed transiently
├── Cancelled             the run was cancelled while waiting to retry
├── OutcomeUnknown        a request that must not be repeated got no clear answer
└── RedirectRefused       a request carrying credentials was redirected to another host

Transient                 one failed attempt worth another (429, 5xx, timeout, dropped
                          connection); the retry policy catches it, callers never see it
"""

from __future__ import annotations

from pipeline.basics.errors import RunFailed

NOT_APPLIED = "not_applied"
UNKNOWN = "unknown"

# Statuses that are retried: the server (or a proxy in front of it) had a passing problem.
TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
# Of those, the ones after which the request certainly was not applied (throttled, unavailable).
NOT_PROCESSED = frozenset({429, 503})


class HttpError(RunFailed):
    """A request that failed for good; the message is masked and names the request."""

    def __init__(self, message: str, *, status: int | None = None, outcome: str = NOT_APPLIED, reason: str = ""):
        super().__init__(message)
        self.status = status
        self.outcome = outcome
        self.reason = reason  # the last failure in a few words ("HTTP 500", "could not connect ...")


class Refused(HttpError):
    """The server said no, and repeating the request will not change its mind."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        phrase: str = "",
        body=None,
        text: str = "",
        server_message: str = "",
        headers=None,
    ):
        super().__init__(message, status=status, reason=f"HTTP {status}")
        self.phrase = phrase  # "Not Found"
        self.body = body  # the body as JSON, or its text when it is not JSON
        self.text = text
        self.server_message = server_message  # what the server said, in one line (unmasked)
        self.headers = dict(headers or {})


class GaveUp(HttpError):
    """Every attempt failed with a transient failure."""

    def __init__(self, message: str, *, attempts: int, **more):
        super().__init__(message, **more)
        self.attempts = attempts


class Cancelled(HttpError):
    """The run was cancelled while the request waited to be tried again."""


class OutcomeUnknown(HttpError):
    """A request that must not be sent twice may or may not have been applied."""


class RedirectRefused(HttpError):
    """The server redirected a request carrying credentials to another host; it was not followed."""

    def __init__(self, message: str, *, host: str):
        super().__init__(message)
        self.host = host


class Transient(Exception):
    """One attempt failed in a way another attempt may not: retried by the policy."""

    def __init__(
        self, reason: str, *, status: int | None = None, outcome: str = UNKNOWN, retry_after: float | None = None
    ):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.outcome = outcome
        self.retry_after = retry_after

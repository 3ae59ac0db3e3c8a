"""When to try a request again, and how long to wait first: a thin policy over tenacity.

Exponential back-off with jitter (`backoff * 2 ** (attempt - 1)`, times 0.5 to 1.5), or exactly
the Retry-After the server asked for (plus up to 10 % so parallel requests do not return in
step), never more than `max_wait`. The wait is a `threading.Event.wait`, so a cancelled run stops
waiting at once. A request that is not repeatable is retried only when the failure says it was
certainly not applied (connection refused, 429, 503); otherwise OutcomeUnknown is raised.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from pipeline.http.errors import NOT_APPLIED, Cancelled, GaveUp, OutcomeUnknown, Transient

if TYPE_CHECKING:
    import tenacity

MAX_WAIT = 300.0  # never sleep longer than this between attempts, whatever Retry-After says
T = TypeVar("T")


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


class RetryPolicy:
    """How many times to retry (`retries` after the first attempt) and how long to wait between."""

    def __init__(self, retries: int = 5, backoff: float = 1.0, max_wait: float = MAX_WAIT):
        self.retries = max(0, int(retries))
        self.backoff = float(backoff)
        self.max_wait = float(max_wait)

    @property
    def attempts(self) -> int:
        return self.retries + 1

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            return min(self.max_wait, retry_after * random.uniform(1.0, 1.1))
        return min(self.max_wait, self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))

    def run(
        self,
        attempt: Callable[[], T],
        *,
        what: str,
        repeatable: bool = True,
        cancelled: threading.Event | None = None,
        log=None,
        mask: Callable[[str], str] = str,
        peer: str = "the server",
    ) -> T:
        """`attempt()` until it returns, retrying on Transient; GaveUp, Cancelled or OutcomeUnknown
        when it never succeeds. Any other exception from `attempt` passes through at once.

        `what` names the request in messages and log lines; `peer` names the other side ("the
        portal") in the OutcomeUnknown message.
        """
        import tenacity  # loaded with the first request, not with every module that can make one

        cancelled = cancelled or threading.Event()
        last: list[Transient] = []

        def wait(state: tenacity.RetryCallState) -> float:
            return self.delay(state.attempt_number, state.outcome.exception().retry_after)

        def warn(state: tenacity.RetryCallState) -> None:
            failure = state.outcome.exception()
            last[:] = [failure]
            if log is not None:
                log.warning(
                    "%s",
                    mask(
                        f"{what}: {failure.reason}; retrying in {state.next_action.sleep:.1f} s "
                        f"(attempt {state.attempt_number + 1} of {self.attempts})"
                    ),
                )

        def sleep(seconds: float) -> None:
            if cancelled.wait(seconds):
                failure = last[0]
                raise Cancelled(
                    mask(f"{what}: cancelled while waiting to retry ({failure.reason})"),
                    status=failure.status,
                    outcome=failure.outcome,
                    reason=failure.reason,
                )

        def give_up(state: tenacity.RetryCallState):
            failure = state.outcome.exception()
            raise GaveUp(
                mask(f"{what}: gave up after {state.attempt_number} attempts; last: {failure.reason}"),
                attempts=state.attempt_number,
                status=failure.status,
                outcome=failure.outcome,
                reason=failure.reason,
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=wait,
            sleep=sleep,
            before_sleep=warn,
            retry=tenacity.retry_if_exception(
                lambda exc: isinstance(exc, Transient) and (repeatable or exc.outcome == NOT_APPLIED)
            ),
            retry_error_callback=give_up,
        )
        try:
            return retrying(attempt)
        except Transient as failure:  # not repeatable, and it may have been applied
            raise OutcomeUnknown(
                mask(f"{what}: {failure.reason}; {peer} may or may not have applied it"),
                status=failure.status,
                outcome=failure.outcome,
                reason=failure.reason,
            ) from None

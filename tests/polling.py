"""Waiting for something that happens in another thread or process: poll the condition until a
deadline, so a test is as quick as the machine allows and fails with what it was waiting for."""

from __future__ import annotations

import time


def wait_until(condition, timeout: float = 30.0, what: str = "a condition", every: float = 0.02) -> None:
    """Return as soon as condition() is true; raise TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every)

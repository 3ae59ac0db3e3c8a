"""Failures on purpose, so that a client's retries are tested against a real HTTP peer.

    faults = portal.faults
    faults.fail(3)                        # the 3rd write from now is answered 500, nothing written
    faults.fail(2, status=503, times=2)   # the 2nd and 3rd writes: 503
    faults.throttle(1, retry_after=2)     # the next write: 429 with Retry-After: 2
    faults.delay(1, seconds=0.5)          # the next write waits 0.5 s, then runs normally
    faults.drop(4)                        # the 4th write: connection closed before anything is written
    faults.drop(4, after_commit=True)     # the 4th write is committed, then the connection closes
                                          #   without an answer (the client cannot know it worked)
    faults.fail(1, path="/resource/")     # count only writes whose path starts with /resource/
    faults.slow_jobs(0.5)                 # revision applies answer "in progress", finish 0.5 s later;
                                          #   output schema conversions finish 0.5 s later too
    faults.clear()                        # forget every rule (and slow_jobs)
    faults.fired                          # [(rule, method, path), ...] what fired, in order
    faults.writes                         # writes seen since the portal started

A write is a POST, PUT, PATCH or DELETE. `nth` counts the writes that match the rule from the moment
the rule is added (1 = the next one); `times` is how many consecutive matching writes it hits
(None = every one from the nth on). Rules are checked in the order they were added; delays add up,
and the first failure or drop wins.

The same rules as text (`route portal serve --faults SPEC`, `LocalPortal(faults=SPEC)`), comma
separated: KIND@N[xT][=ARG][/PATH-PREFIX], KIND one of 500, 503 (or any 5xx/4xx status), 429
(ARG = Retry-After seconds, default 1), delay (ARG = seconds), drop, drop-after; T is a count or *.
Example: "500@3,503@5x2,429@2=1,delay@1=0.5,drop@4,drop-after@6/resource".
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

_SPEC = re.compile(
    r"(?P<kind>\d{3}|delay|drop|drop-after)@(?P<nth>\d+)(?:x(?P<times>\d+|\*))?"
    r"(?:=(?P<arg>\d+(?:\.\d+)?))?(?P<path>/\S*)?"
)


@dataclass
class Rule:
    kind: str  # status | delay | drop
    nth: int = 1
    times: int | None = 1
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0
    after_commit: bool = False
    path: str | None = None
    seen: int = 0

    def hits(self, method: str, path: str) -> bool:
        if self.path and not path.startswith(self.path):
            return False
        self.seen += 1
        if self.seen < self.nth:
            return False
        return self.times is None or self.seen < self.nth + self.times

    def __str__(self) -> str:
        what = {"status": str(self.status), "delay": "delay", "drop": "drop-after" if self.after_commit else "drop"}
        return f"{what[self.kind]}@{self.nth}"


class FaultError(ValueError):
    pass


class Faults:
    """The portal's fault rules (see the module docstring for the whole API)."""

    def __init__(self, spec: str | None = None):
        self._lock = threading.Lock()
        self.rules: list[Rule] = []
        self.fired: list[tuple[str, str, str]] = []
        self.writes = 0
        self.job_delay = 0.0
        if spec:
            self.add_spec(spec)

    # ---- programming
    def _add(self, rule: Rule) -> Faults:
        if rule.nth < 1:
            raise FaultError("nth counts from 1 (the next write)")
        with self._lock:
            self.rules.append(rule)
        return self

    def fail(self, nth: int = 1, status: int = 500, times: int | None = 1, path: str | None = None) -> Faults:
        return self._add(Rule("status", nth, times, status=status, path=path))

    def throttle(self, nth: int = 1, retry_after: float = 1, times: int | None = 1, path: str | None = None) -> Faults:
        return self._add(Rule("status", nth, times, status=429, retry_after=retry_after, path=path))

    def delay(self, nth: int = 1, seconds: float = 0.5, times: int | None = 1, path: str | None = None) -> Faults:
        return self._add(Rule("delay", nth, times, seconds=seconds, path=path))

    def drop(self, nth: int = 1, after_commit: bool = False, times: int | None = 1, path: str | None = None) -> Faults:
        return self._add(Rule("drop", nth, times, after_commit=after_commit, path=path))

    def slow_jobs(self, seconds: float) -> Faults:
        self.job_delay = float(seconds)
        return self

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.job_delay = 0.0

    def add_spec(self, spec: str) -> Faults:
        """Add the rules written in `spec` (syntax in the module docstring)."""
        for item in filter(None, (s.strip() for s in re.split(r"[,\s]+", spec))):
            m = _SPEC.fullmatch(item)
            if not m:
                raise FaultError(
                    f"fault '{item}' is not KIND@N[xT][=ARG][/PATH] (e.g. 500@3, 429@2=1, "
                    f"delay@1=0.5, drop@4, drop-after@6)"
                )
            kind, nth, arg, path = m["kind"], int(m["nth"]), m["arg"], m["path"]
            times = None if m["times"] == "*" else int(m["times"] or 1)
            if kind == "delay":
                self.delay(nth, float(arg or 0.5), times, path)
            elif kind in ("drop", "drop-after"):
                self.drop(nth, kind == "drop-after", times, path)
            elif kind == "429":
                self.throttle(nth, float(arg or 1), times, path)
            else:
                status = int(kind)
                if not 400 <= status <= 599:
                    raise FaultError(f"fault '{item}': the status must be 4xx or 5xx")
                self.fail(nth, status, times, path)
        return self

    # ---- used by the server
    def on_write(self, method: str, path: str) -> tuple[float, Rule | None]:
        """(seconds to wait, the failure or drop rule that fires or None) for one write."""
        wait, action = 0.0, None
        with self._lock:
            self.writes += 1
            for rule in self.rules:
                if rule.hits(method, path):
                    self.fired.append((str(rule), method, path))
                    if rule.kind == "delay":
                        wait += rule.seconds
                    elif action is None:
                        action = rule
        return wait, action

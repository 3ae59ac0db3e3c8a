"""Notifications: tell people when a route fails, rejects too much, goes stale or recovers.

`notify:` in a route (or in the project's defaults.yaml) lists targets, each `email:` or
`webhook:` with the events it wants (`on:`). Sending never fails a run: a target that cannot be
reached is logged and the others still get the message.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import Problem
from .email import NotifyError, send_email
from .events import Event
from .webhook import send_webhook

EVENTS = ("failure", "rejects", "stale", "recovery", "success")
KINDS = ("email", "webhook")

__all__ = ["EVENTS", "Event", "NotifyError", "check_targets", "fix_on_keys", "targets_of", "wanted", "notify"]


def targets_of(config: Any) -> list[dict]:
    """The notify setting as a list of targets (one mapping is one target)."""
    if isinstance(config, dict):
        return [config]
    return [t for t in config or [] if isinstance(t, dict)]


def fix_on_keys(doc, config: Any, path: tuple) -> None:
    """YAML 1.1 (PyYAML) reads a bare `on:` key as true; turn it back into "on", positions included.

    Editors (YAML 1.2) and the JSON schema see `on`, so that is what the file means."""
    items = [(path, config)] if isinstance(config, dict) else \
        [(path + (i,), t) for i, t in enumerate(config)] if isinstance(config, list) else []
    for where, target in items:
        if not isinstance(target, dict) or True not in target or "on" in target:
            continue
        fixed = {("on" if k is True else k): v for k, v in target.items()}
        target.clear()
        target.update(fixed)
        for table in (doc.marks, doc.key_marks, doc.styles):
            for key in [k for k in table if k[:len(where) + 1] == where + (True,)]:
                table[where + ("on",) + key[len(where) + 1:]] = table.pop(key)


def check_targets(doc, config: Any, path: tuple) -> list[Problem]:
    """What the schema cannot say: each target is exactly one of email or webhook."""
    items = [(path, config)] if isinstance(config, dict) else \
        [(path + (i,), t) for i, t in enumerate(config)] if isinstance(config, list) else []
    problems = []
    for where, target in items:
        if not isinstance(target, dict):
            continue
        kinds = [k for k in KINDS if k in target]
        if not kinds:
            problems.append(doc.problem(where, "a notify target needs `email: {to: ..., host: ...}` or "
                                               "`webhook: {url: ...}`"))
        elif len(kinds) > 1:
            problems.append(doc.problem(where + (kinds[1],), "a notify target is either email or webhook: start "
                                                             "a new list item with '-' for the other", at_key=True))
    return problems


def wanted(target: dict, event: Event) -> bool:
    """Does `target` want `event`? rejects events also need the count over its `rejects_over`."""
    threshold = target.get("rejects_over")
    default = ["failure", "stale", "recovery"] + (["rejects"] if threshold is not None else [])
    if event.kind not in target.get("on", default):
        return False
    if event.kind == "rejects":
        rejected, read = event.counts.get("rejected", 0), event.counts.get("read", 0)
        if isinstance(threshold, str):
            return rejected > float(threshold.rstrip("%")) / 100.0 * read
        return rejected > (threshold or 0)
    return True


def notify(event: Event, config: Any, log: logging.Logger) -> list[dict]:
    """Send `event` to every target of `config` that wants it; one outcome per target tried."""
    outcomes = []
    for target in targets_of(config):
        if not wanted(target, event):
            continue
        kind = "email" if "email" in target else "webhook"
        options = target[kind]
        label = _describe(kind, options)
        try:
            (send_email if kind == "email" else send_webhook)(options, event)
        except NotifyError as exc:
            log.warning("could not send the %s notification (%s): %s", event.kind, label, exc)
            outcomes.append({"event": event.kind, "target": label, "ok": False, "error": str(exc)})
            continue
        except Exception as exc:  # a notification must never break a run
            log.warning("could not send the %s notification (%s): %s: %s", event.kind, label, type(exc).__name__, exc)
            outcomes.append({"event": event.kind, "target": label, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
            continue
        log.info("sent the %s notification (%s)", event.kind, label)
        outcomes.append({"event": event.kind, "target": label, "ok": True})
    return outcomes


def _describe(kind: str, options: dict) -> str:
    try:
        from . import email, webhook

        return (email if kind == "email" else webhook).describe(options)
    except Exception:
        return kind

"""Notifications: tell people when a route fails, rejects too much, goes stale or recovers.

`notify:` in a route (or in the project's defaults.yaml) lists targets, each `email:` or
`webhook:` with the events it wants (`on:`). Sending never fails a run: a target that cannot be
reached is logged and the others still get the message.
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.ops.notify.email import NotifyError, send_email
from pipeline.ops.notify.events import Event
from pipeline.ops.notify.webhook import send_webhook
from pipeline.route.notifyconfig import EVENTS, KINDS, check_targets, fix_on_keys, targets_of

__all__ = ["EVENTS", "KINDS", "Event", "NotifyError", "check_targets", "fix_on_keys", "targets_of", "wanted", "notify"]


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
            outcomes.append(
                {"event": event.kind, "target": label, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
            )
            continue
        log.info("sent the %s notification (%s)", event.kind, label)
        outcomes.append({"event": event.kind, "target": label, "ok": True})
    return outcomes


def _describe(kind: str, options: dict) -> str:
    try:
        from pipeline.ops.notify import email, webhook

        return (email if kind == "email" else webhook).describe(options)
    except Exception:
        return kind

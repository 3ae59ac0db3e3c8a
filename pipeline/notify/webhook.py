"""Webhook notifications: the event as JSON, or a Slack message, or a Microsoft Teams card.

    notify:
      - webhook: {url: "${SLACK_WEBHOOK_URL}", format: slack}
        on: [failure, recovery]

A webhook URL usually embeds its secret, so messages name only its host.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import requests

from .email import DEFAULT_TIMEOUT, NotifyError
from .events import Event

_COLOURS = {"failure": "attention", "stale": "warning", "rejects": "warning", "recovery": "good", "success": "good"}


def payload(fmt: str, event: Event) -> dict:
    """The request body for `fmt` (json, slack or teams)."""
    if fmt == "slack":
        return {"text": event.subject(),
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{event.headline}*"}},
                           {"type": "section", "text": {"type": "mrkdwn", "text": "```" + _body(event) + "```"}}]}
    if fmt == "teams":
        facts = [{"title": k, "value": str(v)} for k, v in event.where.items() if v]
        card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                "version": "1.4", "msteams": {"width": "Full"},
                "body": [{"type": "TextBlock", "text": event.headline, "weight": "Bolder", "size": "Medium",
                          "wrap": True, "color": _COLOURS.get(event.kind, "default")},
                         {"type": "TextBlock", "text": _body(event), "wrap": True, "fontType": "Monospace"},
                         {"type": "FactSet", "facts": facts}]}
        return {"type": "message", "summary": event.subject(),
                "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]}
    return {"event": event.kind, "text": event.text(), **event.to_dict()}


def send_webhook(options: dict, event: Event) -> None:
    """POST the payload; one retry on a dropped connection, 429 or 5xx. NotifyError on failure."""
    url = options["url"]
    host = urlsplit(url).netloc or url
    body = payload(options.get("format", "json"), event)
    headers = {"User-Agent": "route-notify", **(options.get("headers") or {})}
    timeout = float(options.get("timeout") or DEFAULT_TIMEOUT)
    for attempt in (1, 2):
        try:
            response = requests.post(url, json=body, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            if attempt == 2:
                raise NotifyError(f"cannot reach the webhook at {host}: {type(exc).__name__}") from None
            time.sleep(0.5)
            continue
        if response.status_code < 300:
            return
        if attempt == 2 or not (response.status_code == 429 or response.status_code >= 500):
            raise NotifyError(f"the webhook at {host} answered {response.status_code}: {response.text[:200]}")
        time.sleep(0.5)


def describe(options: dict) -> str:
    return f"{options.get('format', 'json')} webhook at {urlsplit(options['url']).netloc}"


def _body(event: Event) -> str:
    """The text without the headline (shown on its own above it)."""
    return event.text().split("\n", 2)[-1].strip()

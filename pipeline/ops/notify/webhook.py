"""Webhook notifications: the event as JSON, or a Slack message, or a Microsoft Teams card.

    notify:
      - webhook: {url: "${SLACK_WEBHOOK_URL}", format: slack}
        on: [failure, recovery]

A webhook URL usually embeds its secret, so messages name only its host, and the URL and header
values are masked in any message all the same. Sent through the shared HTTP layer: one retry
on a dropped connection, 429 or 5xx, never waiting long (a notification must not hold up a run).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pipeline import http as layer
from pipeline.ops.notify.email import DEFAULT_TIMEOUT, NotifyError
from pipeline.ops.notify.events import Event

_COLOURS = {"failure": "attention", "stale": "warning", "rejects": "warning", "recovery": "good", "success": "good"}


def payload(fmt: str, event: Event) -> dict:
    """The request body for `fmt` (json, slack or teams)."""
    if fmt == "slack":
        return {
            "text": event.subject(),
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*{event.headline}*"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "```" + _body(event) + "```"}},
            ],
        }
    if fmt == "teams":
        facts = [{"title": k, "value": str(v)} for k, v in event.where.items() if v]
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "msteams": {"width": "Full"},
            "body": [
                {
                    "type": "TextBlock",
                    "text": event.headline,
                    "weight": "Bolder",
                    "size": "Medium",
                    "wrap": True,
                    "color": _COLOURS.get(event.kind, "default"),
                },
                {"type": "TextBlock", "text": _body(event), "wrap": True, "fontType": "Monospace"},
                {"type": "FactSet", "facts": facts},
            ],
        }
        return {
            "type": "message",
            "summary": event.subject(),
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
        }
    return {"event": event.kind, "text": event.text(), **event.to_dict()}


RETRIES = 1
BACKOFF = 0.5
MAX_WAIT = 10.0  # a Retry-After longer than this is not waited for in full


def send_webhook(options: dict, event: Event) -> None:
    """POST the payload; one retry on a dropped connection, 429 or 5xx. NotifyError on failure."""
    url = options["url"]
    host = urlsplit(url).netloc or url
    headers = options.get("headers") or {}
    path = urlsplit(url).path.strip("/")  # Slack and Teams keep the secret in the path
    secrets = [url, path if len(path) >= 16 else "", *(str(v) for v in headers.values() if len(str(v)) >= 4)]
    session = layer.Session(
        policy=layer.RetryPolicy(RETRIES, BACKOFF, MAX_WAIT),
        timeout=float(options.get("timeout") or DEFAULT_TIMEOUT),
        headers=headers,
        secrets=secrets,
        peer="the webhook",
        user_agent="route-notify",
    )
    try:
        session.request("POST", url, json=payload(options.get("format", "json"), event), what=f"the webhook at {host}")
    except layer.HttpError as exc:  # no answer at all: say so first
        raise NotifyError(f"cannot reach {exc}" if exc.status is None else str(exc)) from None
    finally:
        session.close()


def describe(options: dict) -> str:
    return f"{options.get('format', 'json')} webhook at {urlsplit(options['url']).netloc}"


def _body(event: Event) -> str:
    """The text without the headline (shown on its own above it)."""
    return event.text().split("\n", 2)[-1].strip()

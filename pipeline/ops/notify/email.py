"""Email notifications over SMTP: plain text, STARTTLS or SMTPS, credentials from `${VAR}`.

notify:
  - email:
      to: [data-team@agency.gov]
      host: smtp.agency.gov
      port: 587                      # STARTTLS is on by default on 587
      username: ${SMTP_USER}
      password: ${SMTP_PASSWORD}
    on: [failure, stale, recovery]
"""

from __future__ import annotations

import ipaddress
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pipeline.ops.notify.events import Event

DEFAULT_TIMEOUT = 10.0


class NotifyError(Exception):
    """A notification could not be sent; logged by the caller, never raised into a run."""


def recipients(options: dict) -> list[str]:
    to = options["to"]
    return [to] if isinstance(to, str) else list(to)


def connection_settings(options: dict) -> tuple[int, bool, bool]:
    """(port, ssl, starttls) with the defaults applied."""
    use_ssl = bool(options.get("ssl", False))
    starttls = options.get("starttls")
    port = options.get("port") or (465 if use_ssl else 587 if starttls else 25)
    if starttls is None:
        starttls = port == 587 and not use_ssl
    return int(port), use_ssl, bool(starttls) and not use_ssl


def message(options: dict, event: Event) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = event.subject()
    msg["From"] = options.get("from") or f"route@{socket.getfqdn()}"
    msg["To"] = ", ".join(recipients(options))
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=socket.getfqdn())
    msg["X-Route-Event"] = event.kind
    msg["X-Route-Name"] = event.route
    msg.set_content(event.text())
    return msg


def send_email(options: dict, event: Event) -> None:
    """Send `event` to the options' recipients; NotifyError says what went wrong."""
    host = options["host"]
    port, use_ssl, starttls = connection_settings(options)
    timeout = float(options.get("timeout") or DEFAULT_TIMEOUT)
    user, password = options.get("username"), options.get("password")
    if user and not (use_ssl or starttls) and not _loopback(host):
        raise NotifyError(
            f"refusing to send the SMTP password to {host}:{port} unencrypted: set starttls: true "
            f"(port 587) or ssl: true (port 465)"
        )
    try:
        context = ssl.create_default_context(cafile=options.get("ca_file"))
    except (OSError, ssl.SSLError) as exc:
        raise NotifyError(f"cannot read ca_file {options.get('ca_file')}: {exc}") from None
    msg = message(options, event)
    try:
        if use_ssl:
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if starttls:
                smtp.starttls(context=context)
            if user:
                smtp.login(user, password or "")
            smtp.send_message(msg)
    except smtplib.SMTPAuthenticationError as exc:
        raise NotifyError(f"the SMTP server {host}:{port} refused the login of {user}: {_reply(exc)}") from None
    except smtplib.SMTPNotSupportedError:
        raise NotifyError(
            f"the SMTP server {host}:{port} does not offer STARTTLS: set starttls: false "
            f"(and no password) or use ssl: true"
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise NotifyError(f"the SMTP server {host}:{port} refused the recipients {', '.join(exc.recipients)}") from None
    except smtplib.SMTPResponseException as exc:
        raise NotifyError(f"the SMTP server {host}:{port} answered {exc.smtp_code}: {_reply(exc)}") from None
    except ssl.SSLError as exc:
        raise NotifyError(
            f"TLS with {host}:{port} failed ({exc.reason or exc}); for a private CA give ca_file"
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise NotifyError(f"cannot reach the SMTP server {host}:{port}: {exc}") from None


def describe(options: dict) -> str:
    return f"email to {', '.join(recipients(options))} via {options['host']}"


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

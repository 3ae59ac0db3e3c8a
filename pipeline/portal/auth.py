"""Who is asking: HTTP Basic with a username and password or an API key id and secret (§1).

Secrets are compared in constant time and never logged or echoed. App tokens (`X-App-Token` header
or `$$app_token` parameter) are accepted and not checked: on a real portal they only change
throttling. An OAuth token (`Authorization: OAuth <token>`) is accepted when it equals a user's secret.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading

from pipeline.portal import behaviour


class Auth:
    def __init__(self, users: dict[str, str] | None = None):
        self._users = dict(users or {})
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        """True when no user is configured: every request is allowed (a local try-out)."""
        return not self._users and behaviour.OPEN_WHEN_NO_USERS

    def add(self, name: str, secret: str) -> None:
        with self._lock:
            self._users[name] = secret

    def names(self) -> list[str]:
        return sorted(self._users)

    def identify(self, headers) -> str | None:
        """The user named by the Authorization header; None without one; 401 when it is wrong."""
        header = headers.get("Authorization")
        if not header:
            return None
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise behaviour.bad_credentials() from None
            name, sep, secret = decoded.partition(":")
            if sep and self._matches(name, secret):
                return name
        elif scheme in ("oauth", "bearer"):
            token = value.strip()
            for name, secret in list(self._users.items()):
                if hmac.compare_digest(secret.encode(), token.encode()):
                    return name
        if self.open:
            return None
        raise behaviour.bad_credentials()

    def _matches(self, name: str, secret: str) -> bool:
        expected = self._users.get(name)
        if expected is None:
            hmac.compare_digest(secret.encode(), b"-" * len(secret.encode()))  # same work either way
            return False
        return hmac.compare_digest(expected.encode(), secret.encode())

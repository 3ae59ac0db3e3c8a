"""The embedded local portal: `domain` omitted or `local` means a portal on <state>/portal.sqlite.

It is served over HTTP on 127.0.0.1 (a free port) for the duration of the run, and the delivery
and the source talk to it exactly as to any portal: one code path. Every component of one run
shares one server (kept in the run's `extras`), started by the first and stopped by the last.
When the route gives no credentials, a random account made for this run is used.
"""

from __future__ import annotations

import secrets
import threading

from pipeline.basics.errors import RunFailed

LOCAL_NAMES = (None, "", "local")
_KEY = "socrata.local_portal"


def is_local(domain) -> bool:
    return domain in LOCAL_NAMES


class _Shared:
    def __init__(self, portal, server, users: dict, internal: tuple[str, str]):
        self.portal = portal
        self.server = server
        self.users = users
        self.internal = internal
        self.refs = 0


def acquire(run, auth: dict | None) -> tuple[str, dict]:
    """Start (or join) the run's local portal; returns its URL and the auth to use with it."""
    lock = run.extras.setdefault(_KEY + ".lock", threading.Lock())
    with lock:
        shared: _Shared | None = run.extras.get(_KEY)
        user, secret = _credentials(auth)
        if shared is None:
            try:
                from pipeline.portal import LocalPortal
            except ImportError as exc:
                raise RunFailed(f"the local portal is not available ({exc}); give `domain:` a portal address") from None
            internal = ("route-" + secrets.token_hex(4), secrets.token_urlsafe(18))
            users = {internal[0]: internal[1]}
            if user:
                users[user] = secret
            run.secrets.add(internal[1])
            run.state_dir.mkdir(parents=True, exist_ok=True)
            portal = LocalPortal(run.state_dir / "portal.sqlite", users=users)
            server = portal.serve(host="127.0.0.1", port=0, tls=False)
            shared = _Shared(portal, server, users, internal)
            run.extras[_KEY] = shared
        elif user and user not in shared.users:
            shared.users[user] = secret  # the portal keeps this mapping; a later component may add to it
            _add_user(shared.portal, user, secret)
        shared.refs += 1
        use = dict(auth or {})
        if not user:
            use.update(username=shared.internal[0], password=shared.internal[1])
        return shared.server.url, use


def label(run) -> str:
    """The embedded portal as messages name it (its port changes every run, so not its URL)."""
    return f"the local portal in {run.state_dir / 'portal.sqlite'}"


def release(run) -> None:
    """Stop the local portal when its last user is done."""
    lock = run.extras.setdefault(_KEY + ".lock", threading.Lock())
    with lock:
        shared: _Shared | None = run.extras.get(_KEY)
        if shared is None:
            return
        shared.refs -= 1
        if shared.refs <= 0:
            run.extras.pop(_KEY, None)
            try:
                shared.server.stop()
            finally:
                close = getattr(shared.portal, "close", None)
                if callable(close):
                    close()


def _credentials(auth: dict | None) -> tuple[str | None, str | None]:
    auth = auth or {}
    if auth.get("username"):
        return auth["username"], auth.get("password") or ""
    if auth.get("api_key_id"):
        return auth["api_key_id"], auth.get("api_key_secret") or ""
    return None, None


def _add_user(portal, user: str, secret: str) -> None:
    add = getattr(portal, "add_user", None)
    if callable(add):
        add(user, secret)
    else:
        users = getattr(portal, "users", None)
        if isinstance(users, dict):
            users[user] = secret

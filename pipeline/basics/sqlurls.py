"""Database URLs for the sql source and delivery: engines, and messages that never show a password.

A route writes any SQLAlchemy URL, usually with `${DB_PASSWORD}` already substituted. Everything
here that turns a URL or a driver's error into text masks the password (as `***`, in its plain and
its URL-quoted form), so messages, logs and history never hold it.

A URL without a driver uses the one our extras install: `postgresql://` -> psycopg 3
(`route-etl[postgres]`), `mysql://` and `mariadb://` -> PyMySQL (`route-etl[mysql]`).
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus

from pipeline.basics.errors import OptionError, RunFailed

DEFAULT_DRIVERS = {"postgresql": "psycopg", "postgres": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}

# Python module of a driver -> how to install it
INSTALL = {
    "psycopg": "pip install 'route-etl[postgres]'",
    "psycopg2": "pip install psycopg2-binary (or use postgresql+psycopg:// with pip install 'route-etl[postgres]')",
    "pymysql": "pip install 'route-etl[mysql]'",
    "MySQLdb": "pip install mysqlclient (or use mysql+pymysql:// with pip install 'route-etl[mysql]')",
    "sqlalchemy": "pip install 'route-etl[sql]'",
}


def parse_url(url: str):
    """The SQLAlchemy URL object for `url`, with our default drivers; OptionError if unparsable."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(_quote_credentials(url))
    except (ArgumentError, ValueError) as exc:
        raise OptionError(
            f"'{mask_text(url, url)}' is not a database URL such as "
            "postgresql://user:${DB_PASSWORD}@host/db or sqlite:///data/local.db "
            f"({mask_text(str(exc), url)})",
            ("url",),
        ) from None
    name = parsed.drivername
    if "+" not in name and name in DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=f"{'postgresql' if name == 'postgres' else name}+{DEFAULT_DRIVERS[name]}")
    return parsed


def _quote_credentials(url: str) -> str:
    """`url` with its user and password URL-quoted when they hold an '@' (a `${DB_PASSWORD}` such as
    `p@ss` written as is): the last '@' is the one before the host. SQLAlchemy would split at the
    first, connect to a host named after the end of the password and show that part in messages.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or rest.count("@") < 2:
        return url
    userinfo, host = rest.rsplit("@", 1)
    user, colon, password = userinfo.partition(":")
    return f"{scheme}://{quote(user, safe='')}{colon}{quote(password, safe='')}@{host}"


def mask_url(url) -> str:
    """The URL as text with its password replaced by ***."""
    try:
        return parse_url(
            str(url) if not hasattr(url, "render_as_string") else url.render_as_string(hide_password=False)
        ).render_as_string(hide_password=True)
    except OptionError:
        return "<database URL>"


def _secrets(url) -> list[str]:
    password = None
    try:
        from sqlalchemy.engine import make_url  # not parse_url: its own error message masks through here

        password = make_url(_quote_credentials(url)).password if isinstance(url, str) else url.password
    except Exception:  # an unparsable URL: fall back to what looks like user:password@ (to the last @)
        m = re.search(r"://[^:/@]*:(.*)@", str(url))
        password = m.group(1) if m else None
    if not password:
        return []
    password = str(password)
    return sorted({password, quote(password, safe=""), quote_plus(password)}, key=len, reverse=True)


def mask_text(text: str, url) -> str:
    """`text` with every form of the URL's password replaced by ***."""
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


def sqlite_file(parsed, base_dir=None):
    """The SQLite file of a URL, made absolute against `base_dir` (the route's folder); None if in memory."""
    from pathlib import Path

    if (
        parsed.get_backend_name() != "sqlite"
        or parsed.database in (None, "", ":memory:")
        or str(parsed.query.get("uri", "")).lower() == "true"
        or parsed.database.startswith("file:")
    ):
        return None
    path = Path(parsed.database).expanduser()
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path


def make_engine(url: str, base_dir=None, **kwargs):
    """An Engine for `url`; a missing driver is an OptionError naming what to install.

    A relative SQLite path is relative to `base_dir` (the route file's folder), like every
    other path in a route.
    """
    try:
        import sqlalchemy
    except ImportError:
        raise OptionError(f"SQL needs SQLAlchemy: {INSTALL['sqlalchemy']}", ("url",)) from None
    parsed = parse_url(url)
    path = sqlite_file(parsed, base_dir)
    if path is not None:
        parsed = parsed.set(database=str(path))
    try:
        return sqlalchemy.create_engine(parsed, **kwargs)
    except ImportError as exc:
        module = (getattr(exc, "name", None) or str(exc)).split(".")[0]
        how = INSTALL.get(module, f"pip install the package that provides the Python module '{module}'")
        raise OptionError(
            f"the database driver for {parsed.drivername}:// is not installed (no module '{module}'): {how}", ("url",)
        ) from None
    except Exception as exc:  # NoSuchModuleError (unknown dialect), bad arguments
        raise OptionError(f"cannot use {mask_url(parsed)}: {mask_text(reason(exc), url)}", ("url",)) from None


def reason(exc: BaseException) -> str:
    """The driver's own words for a database error, without SQLAlchemy's wrapping and links."""
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):  # PyMySQL: (code, text)
        text = f"{args[1]} (error {args[0]})"
    else:
        text = str(orig)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "sqlalche.me" not in ln]
    return " ".join(lines[:3]) or type(orig).__name__


def connect_error(exc: BaseException, url) -> RunFailed:
    """A RunFailed for a failed connection: where to, and why (no password)."""
    return RunFailed(f"cannot connect to {mask_url(url)}: {mask_text(reason(exc), url)}")

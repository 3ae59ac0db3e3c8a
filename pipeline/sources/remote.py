"""Files from anywhere for the file sources (csv, excel, json, geo): a path or glob on this machine,
or a URL that fsspec opens: http(s)://, sftp://, s3://, ftp://, file:// and chains such as
`zip://member.csv::https://host/archive.zip`.

`Location` is where a source's `path` points, with the credentials of its `auth:` block (and of
the URL's user:password, taken out of the URL before fsspec sees it). It lists the files a glob
matches (`matches()`, with their size and modification time, for pick.py), and each `Found` file
opens as a binary stream:

- on this machine, the file itself (`open(path, "rb")`), exactly as before;
- remotely, a `RemoteReader`: the file read in blocks (a streaming GET for HTTP; the protocol's
  own block reads for S3, SFTP and FTP), never held whole. A connection that drops mid-file
  (an exception, or an end before the size the server announced) is retried with the HTTP
  layer's RetryPolicy: a new connection, positioned at the byte reached (by seeking, a Range
  request, or skipping what was read), so the reader above never notices.

`Found.local_copy()` downloads a remote file into the state folder for readers that need to seek
(Excel, GDAL), after checking the disk has room for it, and removes it when done (held in the
run's journal meanwhile, so the next run removes it if this one is killed).

Unreachable hosts, refused credentials and missing files end in one RunFailed naming the URL
without its password, through the run's secret mask (every credential is added to it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.http import is_loopback
from pipeline.sources.remote_stream import BLOCK, RemoteReader, classify, close_fs

DISK_MARGIN = 256 << 20  # left free on the state folder's disk after a download
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")

_NOT_SECRET = {"username", "region", "endpoint_url", "anonymous", "tls", "known_hosts_only"}
_FOR = {
    "sftp": {"username", "password", "key_file", "passphrase", "known_hosts_only"},
    "ftp": {"username", "password", "tls"},
    "http": {"username", "password", "headers"},
    "s3": {"access_key_id", "secret_access_key", "session_token", "region", "endpoint_url", "anonymous"},
}


def is_url(path: str) -> bool:
    return bool(_URL.match(path)) or "::" in path


def has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _protocol(url: str) -> str:
    scheme = url.split("://", 1)[0].lower()
    return {"https": "http", "ssh": "sftp", "s3a": "s3"}.get(scheme, scheme)


def _datetime(value: Any) -> float | None:
    """Seconds since the epoch of a modification time as the file systems give it."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        if re.fullmatch(r"\d{14}(\.\d+)?", value):  # FTP's MLSD: 20240131120000
            return dt.datetime.strptime(value[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC).timestamp()
        with contextlib.suppress(TypeError, ValueError):
            return email.utils.parsedate_to_datetime(value).timestamp()  # HTTP's Last-Modified
        with contextlib.suppress(ValueError):
            return _datetime(dt.datetime.fromisoformat(value))
    return None


def modified_of(info: dict) -> float | None:
    stamp = info.get("date_time")  # a zip member's (year, month, day, hour, minute, second)
    if isinstance(stamp, tuple | list) and len(stamp) == 6:
        return dt.datetime(*stamp, tzinfo=dt.UTC).timestamp()
    for key in ("mtime", "LastModified", "last_modified", "modify", "Last-Modified", "updated", "created"):
        when = _datetime(info.get(key))
        if when is not None:
            return when
    return None


@dataclass
class Found:
    """One file to read: where it is, the name messages use, and what its listing said."""

    where: Path | str  # a local Path, or the file system's own path of a remote file
    shown: str  # as the route names it (relative to the route file) or the URL without password
    location: Location
    size: int | None = None
    modified: float | None = None  # seconds since the epoch, when the listing says

    @property
    def remote(self) -> bool:
        return not isinstance(self.where, Path)

    @property
    def name(self) -> str:
        return str(self.where).rstrip("/").rsplit("/", 1)[-1]

    def open(self):
        """A binary stream of the file, read in blocks (remote: retried when the connection drops)."""
        if not self.remote:
            try:
                return open(self.where, "rb")
            except OSError as exc:
                raise RunFailed(f"{self.location.what}: cannot read {self.shown}: {exc.strerror or exc}") from None
        return RemoteReader(self)

    @contextlib.contextmanager
    def local_copy(self) -> Iterator[Path]:
        """The file on this machine: itself, or a download into the state folder, removed after."""
        if not self.remote:
            yield self.where
            return
        folder = Path(self.location.run.state_dir) / "downloads"
        folder.mkdir(parents=True, exist_ok=True)
        if self.size is not None:
            free = shutil.disk_usage(folder).free
            if self.size + DISK_MARGIN > free:
                raise RunFailed(
                    f"{self.location.what}: {self.shown} is {self.size / 2**20:,.0f} MiB, more than the "
                    f"{max(free - DISK_MARGIN, 0) / 2**20:,.0f} MiB free on the disk of {folder} "
                    f"(where it is downloaded before it is read); free some space"
                )
        suffix = "".join(Path(self.name).suffixes[-1:])
        fd, name = tempfile.mkstemp(prefix="download-", suffix=suffix, dir=folder)
        target, journal = Path(name), self.location.run.journal
        journal.hold(None, "tmp", path=name)
        try:
            with os.fdopen(fd, "wb") as out, self.open() as stream:
                while block := stream.read(BLOCK):
                    out.write(block)
            self.location.run.log.info("%s: downloaded %s to read it", self.location.what, self.shown)
            yield target
        finally:
            target.unlink(missing_ok=True)
            journal.let(None, "tmp", path=name)


class Location:
    """Where a source's `path` points (see the module docstring)."""

    def __init__(self, path: str, run, *, what: str, auth: dict | None = None):
        self.text, self.run, self.what = path, run, what
        self.auth = dict(auth or {})
        for key, value in self.auth.items():
            if key not in _NOT_SECRET and isinstance(value, str) and len(value) >= 4:
                run.secrets.add(value)
            if key == "headers":
                run.secrets.update(v for v in value.values() if len(v) >= 4)
        if path.lower().startswith("file://"):
            path = unquote(urlsplit(path).path)
        self.remote = is_url(path)
        self.local_text = None if self.remote else path
        if not self.remote:
            if self.auth:
                raise OptionError("auth goes with a remote path (sftp://, s3://, https://, ...)", ("auth",))
            return
        self._parse(path)

    # -- a URL ---------------------------------------------------------------------------------

    def _parse(self, path: str) -> None:
        *chain, last = path.split("::")
        parts = urlsplit(last)
        protocol = _protocol(last)
        if protocol not in ("http", "sftp", "s3", "ftp", "file") or any(
            _protocol(link) not in ("zip",) for link in chain
        ):
            raise OptionError(
                f"{self.run.mask(path)}: route reads files over http(s)://, sftp://, s3://, ftp:// and "
                f"file://, and zip members as zip://member::URL",
                ("path",),
            )
        if not parts.hostname and protocol != "file":
            raise OptionError(f"{self.run.mask(path)}: the URL names no host (or bucket)", ("path",))
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        if password:
            self.run.secrets.add(password)
        host = parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else ""
        clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
        self.protocol, self.chain, self.host = protocol, chain, parts.hostname or ""
        self.base = f"{parts.scheme}://{host}"
        self.url = "::".join([*chain, clean])  # without user:password
        self.shown_url = self.run.mask(
            "::".join([*chain, urlunsplit((parts.scheme, (f"{user}@" if user else "") + host, *parts[2:]))])
        )
        unknown = sorted(set(self.auth) - _FOR[protocol if protocol != "file" else "http"])
        if unknown and protocol != "file":
            raise OptionError(f"auth: {', '.join(unknown)} does not go with {protocol}://", ("auth",))
        self.kwargs = self._kwargs(protocol, user, password, parts)
        clear = parts.scheme.lower() == "http" and (password or self.auth) and not is_loopback(self.host)
        if clear:
            raise OptionError("credentials would travel in clear text over http://; use https://", ("path",))
        self.globbed = has_glob(chain[0].split("://", 1)[1] if chain else parts.path)
        self.inner = parts.path if not chain else chain[0].split("://", 1)[1]

    def _kwargs(self, protocol: str, user: str | None, password: str | None, parts) -> dict:
        a = self.auth
        user, password = a.get("username", user), a.get("password", password)
        if protocol == "sftp":
            kw: dict[str, Any] = {
                "timeout": 30,
                "allow_agent": False,
                "look_for_keys": not (password or a.get("key_file")),
            }
            kw.update({k: v for k, v in (("username", user), ("password", password), ("port", parts.port)) if v})
            if a.get("key_file"):
                kw["key_filename"] = str(Path(a["key_file"]).expanduser())
            if a.get("passphrase"):
                kw["passphrase"] = a["passphrase"]
            kw["host_key_policy"] = "reject" if a.get("known_hosts_only") else "auto_add"
            return kw
        if protocol == "ftp":
            kw = {"timeout": 30, "tls": bool(a.get("tls"))}
            kw.update({k: v for k, v in (("username", user), ("password", password), ("port", parts.port)) if v})
            return kw
        if protocol == "s3":
            client: dict[str, Any] = {}
            if a.get("region"):
                client["region_name"] = a["region"]
            if a.get("endpoint_url"):
                client["endpoint_url"] = a["endpoint_url"]
            kw = {"client_kwargs": client, "config_kwargs": {"retries": {"max_attempts": 2}, "connect_timeout": 20}}
            for ours, theirs in (("access_key_id", "key"), ("secret_access_key", "secret"), ("session_token", "token")):
                if a.get(ours):
                    kw[theirs] = a[ours]
            if a.get("anonymous"):
                kw["anon"] = True
            return kw
        if protocol == "http":
            kw = {"headers": dict(a.get("headers") or {})}
            if user and password:
                import aiohttp

                kw["client_kwargs"] = {"auth": aiohttp.BasicAuth(user, password)}
            return kw
        return {}

    def fs(self, headers: dict | None = None):
        """A new file system object (a new connection): after a drop, the old one may be dead.
        `headers`: more HTTP request headers (a Range to resume at)."""
        try:
            import fsspec
        except ImportError:
            raise RunFailed(
                f"{self.what}: reading remote files needs fsspec: pip install 'route-etl[remote]'"
            ) from None
        kw = {**self.kwargs, "skip_instance_cache": True}
        if headers:
            kw["headers"] = {**kw.get("headers", {}), **headers}
        target = {"http": "https" if self.url.split("::")[-1].startswith("https") else "http"}.get(
            self.protocol, self.protocol
        )
        try:
            if self.chain:
                fs, path = fsspec.core.url_to_fs(self.url, **{target: kw})
            else:
                fs, path = fsspec.core.url_to_fs(self.url, **kw)
        except ImportError as exc:
            raise RunFailed(
                f"{self.what}: reading {self.protocol}:// needs {exc.name}: pip install 'route-etl[remote]'"
            ) from None
        except Exception as exc:  # noqa: BLE001 - connecting (sftp, ftp) happens here
            raise self.failure(exc, self.shown_url) from None
        if self.protocol == "s3" and hasattr(fs, "retries"):
            fs.retries = 2
        return fs, path

    def shown_of(self, path: str) -> str:
        """The URL of a file the file system lists, without password, masked."""
        if self.chain:
            inner = self.shown_url.split("::", 1)[1]
            return self.run.mask(f"zip://{path.lstrip('/')}::{inner}")
        if self.protocol == "http":
            parts = urlsplit(path)
            return self.run.mask(
                urlunsplit((parts.scheme, parts.hostname or "", *parts[2:]))
                if parts.port is None
                else urlunsplit((parts.scheme, f"{parts.hostname}:{parts.port}", *parts[2:]))
            )
        if self.protocol == "s3":
            return self.run.mask(f"s3://{path.lstrip('/')}")
        prefix = self.shown_url.split("://", 1)[0] + "://" + urlsplit(self.shown_url).netloc
        return self.run.mask(prefix + ("" if path.startswith("/") else "/") + path)

    # -- listing ---------------------------------------------------------------------------------

    def matches(self, modified: bool = False) -> list[Found]:
        """The remote files the path names (one, or those its glob matches), sorted by path;
        `modified`: ask an HTTP server for each file's Last-Modified (a folder listing has none)."""
        fs, path = self.fs()
        try:
            if self.globbed:
                listed = fs.glob(path, detail=True)
                items = sorted((p, info) for p, info in listed.items() if info.get("type", "file") == "file")
                if not items:
                    raise RunFailed(f"{self.what}: no file matches {self.shown_url}")
            else:
                info = fs.info(path)
                if info.get("type") == "directory":
                    raise RunFailed(f"{self.what}: {self.shown_url} is a folder; to read its files use a glob")
                items = [(path, info)]
        except RunFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - every protocol raises its own types
            raise self.failure(exc, self.shown_url) from None
        finally:
            close_fs(fs)
        found = []
        for p, info in items:
            if modified and self.protocol == "http" and not self.chain and "Last-Modified" not in info:
                info = self._info(p, info)
            found.append(Found(p, self.shown_of(p), self, info.get("size"), modified_of(info)))
        return found

    def _info(self, path: str, listed: dict) -> dict:
        fs, _ = self.fs()
        try:
            return {**listed, **fs.info(path)}
        except Exception as exc:  # noqa: BLE001
            raise self.failure(exc, self.shown_of(path)) from None
        finally:
            close_fs(fs)

    # -- after a good run -------------------------------------------------------------------------

    def move(self, found: Found, folder: str) -> str:
        """Move a remote file into `folder` (absolute on its server, or relative to its folder)."""
        if self.chain or self.protocol == "http":
            raise RunFailed(
                f"{self.what}: after_read cannot move {found.shown}: {self.protocol}:// files are read-only"
            )
        fs, _ = self.fs()
        parent = str(found.where).rsplit("/", 1)[0] if "/" in str(found.where) else ""
        if self.protocol == "s3":
            bucket = str(found.where).split("/", 1)[0]
            dest_dir = f"{bucket}/{folder.strip('/')}" if folder.startswith("/") else f"{parent}/{folder.strip('/')}"
        else:
            dest_dir = folder.rstrip("/") if folder.startswith("/") else f"{parent}/{folder.strip('/')}"
        dest = f"{dest_dir}/{found.name}"
        try:
            if self.protocol != "s3":
                fs.makedirs(dest_dir, exist_ok=True)
            fs.mv(str(found.where), dest)
        except Exception as exc:  # noqa: BLE001
            raise self.failure(exc, found.shown, doing=f"move to {dest_dir}") from None
        finally:
            close_fs(fs)
        return self.shown_of(dest)

    def delete(self, found: Found) -> None:
        if self.chain or self.protocol == "http":
            raise RunFailed(
                f"{self.what}: after_read cannot delete {found.shown}: {self.protocol}:// files are read-only"
            )
        fs, _ = self.fs()
        try:
            fs.rm_file(str(found.where))
        except Exception as exc:  # noqa: BLE001
            raise self.failure(exc, found.shown, doing="delete") from None
        finally:
            close_fs(fs)

    # -- failures --------------------------------------------------------------------------------

    def failure(self, exc: BaseException, shown: str, doing: str = "read") -> RunFailed:
        """One clear message for what a user can cause: a missing file, a refused login, no server."""
        kind, detail = classify(exc)
        what, host = self.what, self.host or "the server"
        if self.protocol == "s3":  # the host is the bucket: name the store
            endpoint = urlsplit(self.auth.get("endpoint_url") or "")
            host = f"the S3 store at {endpoint.netloc}" if endpoint.netloc else "S3"
            if kind == "denied":  # a 403 without a body: wrong keys, or keys that may not read it
                kind, detail = "credentials", f"{detail}: wrong keys, or keys not allowed to read it"
        text = {
            "missing": f"{what}: file not found: {shown}",
            "credentials": f"{what}: {host} refused the credentials for {shown} ({detail}); check auth"
            + ("" if self.protocol == "s3" else " (or the user and password in the URL)"),
            "denied": f"{what}: not allowed to {doing} {shown} ({detail})",
            "key": f"{what}: cannot use the key file to log in for {shown} ({detail}); check auth: key_file "
            f"and passphrase",
            "unreachable": f"{what}: cannot reach {host} for {shown}: {detail}",
        }.get(kind, f"{what}: cannot {doing} {shown}: {detail}")
        return RunFailed(self.run.mask(text))

"""Reading a remote file as a stream, for remote.py: `RemoteReader` (blocks, retried when the
connection drops) and `classify`, which tells the failures of every protocol's library apart
(a missing file, refused credentials, no server, a dropped connection).

A reader holds at most one read's worth of the file (the caller asks for a block at a time);
HTTP is one streaming GET, resumed with a Range request (or, from a server without ranges, by
skipping what was read), S3, SFTP and FTP are read with their own ranged block reads and resumed
by seeking. Retries follow the HTTP layer's RetryPolicy (back-off with jitter, a cancelled run
stops waiting at once); a drop after part of a block arrived keeps that part and connects again.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import threading
from typing import Any

from pipeline.http import RetryPolicy, Transient
from pipeline.http.errors import NOT_APPLIED

BLOCK = 4 << 20  # bytes per ranged read (S3, SFTP, FTP); HTTP streams
RETRIES, BACKOFF = 5, 1.0  # as the json source's HTTP requests
SFTP_REQUEST = 32768  # paramiko's largest read request


def close_fs(fs) -> None:
    """Close a file system's connection (sftp, ftp), when it has one to close."""
    for name in ("close", "quit"):
        with contextlib.suppress(Exception):
            client = getattr(fs, "client", None) if name == "close" else getattr(fs, "ftp", None)
            if client is not None:
                getattr(client, name)()
                return


def classify(exc: BaseException) -> tuple[str, str]:
    """(kind, a few words) for an exception of any protocol's library: missing, credentials,
    denied, unreachable, dropped (worth another attempt) or other."""
    name = type(exc).__name__
    text = str(exc).strip() or name
    status = getattr(exc, "status", None) or getattr(exc, "code", None)
    code = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        status = status or response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, PermissionError | FileNotFoundError) and cause is not None and cause is not exc:
        inner, words = classify(cause)  # fsspec's http says "not found" for a host it cannot reach
        if inner in ("credentials", "unreachable"):
            return inner, words
    if isinstance(exc, FileNotFoundError) or code in ("NoSuchKey", "NoSuchBucket", "404") or status == 404:
        return "missing", text
    if name in ("SSHException", "PasswordRequiredException") and "key" in text.lower():
        return "key", text
    if name in ("AuthenticationException", "BadAuthenticationType", "PasswordRequiredException") or (
        name == "SSHException" and "auth" in text.lower()
    ):
        return "credentials", text
    if name == "error_perm" and text.startswith("530"):
        return "credentials", text
    if name == "error_perm" and text[:3] in ("550", "450"):
        return "missing", text
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken") or status == 401:
        return "credentials", code or f"HTTP {status}"
    if isinstance(exc, PermissionError) or code in ("AccessDenied", "403") or status == 403:
        return "denied", code or text
    if isinstance(exc, socket.gaierror) or name in (
        "ClientConnectorError",
        "ClientConnectorDNSError",
        "EndpointConnectionError",
        "NoValidConnectionsError",
        "ConnectTimeoutError",
    ):
        return "unreachable", _short(exc)
    if isinstance(exc, ConnectionRefusedError) or "connection refused" in text.lower():
        return "unreachable", "connection refused"
    if isinstance(exc, ConnectionError | TimeoutError | EOFError) or name in (
        "ClientPayloadError",
        "ServerDisconnectedError",
        "ClientOSError",
        "SSHException",
        "error_temp",
        "IncompleteReadError",
        "ResponseStreamingError",
        "ReadTimeoutError",
        "Dropped",
    ):
        return "dropped", _short(exc)
    if isinstance(exc, OSError) and ("socket" in text.lower() or "closed" in text.lower()):
        return "dropped", _short(exc)
    return "other", text


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"^\[Errno [^\]]*\]\s*", "", text)[:200]


class Dropped(Exception):
    """The server ended a file before the size it announced."""


class RemoteReader(io.RawIOBase):
    """A remote file as a binary stream (see the module docstring): reads of up to `size` bytes
    (a whole block when the file has that many), retried on a dropped connection."""

    def __init__(self, found):
        self.found, self.location = found, found.location
        run = self.location.run
        self.policy = RetryPolicy(RETRIES, BACKOFF)
        self.cancelled: threading.Event = getattr(run, "cancelled", None) or threading.Event()
        self.offset = 0
        self._fs = None
        self._file = None
        self._open()

    def readable(self) -> bool:
        return True

    def _open(self) -> None:
        location, found = self.location, self.found
        http = location.protocol == "http" and not location.chain
        self._fs, _ = location.fs({"Range": f"bytes={self.offset}-"} if http and self.offset else None)
        kw: dict[str, Any] = {}
        if http:
            kw["block_size"] = 0  # one streaming GET; a Range request resumes it
        elif location.protocol in ("s3", "ftp", "sftp") and not location.chain:
            kw["block_size"] = BLOCK
        try:
            self._file = self._fs.open(str(found.where), "rb", **kw)
            if self.offset:
                self._position()
        except Exception as exc:  # noqa: BLE001
            self._drop()
            kind, detail = classify(exc)
            if kind == "dropped":
                raise Transient(f"the connection dropped ({detail})", outcome=NOT_APPLIED) from None
            raise location.failure(exc, found.shown) from None

    def _position(self) -> None:
        """Go on at self.offset in the new connection: seek, a 206 answer, or skip what was read."""
        f = self._file
        answer = getattr(f, "r", None)
        if answer is not None:
            if getattr(answer, "status", 200) == 206:
                return
        else:
            try:
                f.seek(self.offset)
                return
            except (ValueError, OSError, io.UnsupportedOperation):
                pass
        left = self.offset
        while left:
            skipped = f.read(min(BLOCK, left))
            if not skipped:
                raise Dropped(f"the file ended at byte {self.offset - left:,} while resuming")
            left -= len(skipped)

    def _drop(self) -> None:
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()
        if self._fs is not None:
            close_fs(self._fs)
        self._file = self._fs = None

    def close(self) -> None:
        self._drop()
        super().close()

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(BLOCK), b""))
        return self.policy.run(
            lambda: self._attempt(size),
            what=f"{self.location.what}: reading {self.found.shown}",
            cancelled=self.cancelled,
            log=self.location.run.log,
            mask=self.location.run.mask,
        )

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _pipelined(self) -> bool:
        """SFTP with a known size: a block is asked for as many requests in flight at once
        (paramiko's readv), not one request after the other."""
        return self.location.protocol == "sftp" and self.found.size is not None and hasattr(self._file, "readv")

    def _readv(self, size: int):
        start, end = self.offset, min(self.offset + size, self.found.size)
        if start >= end:
            return iter(())
        return self._file.readv([(at, min(SFTP_REQUEST, end - at)) for at in range(start, end, SFTP_REQUEST)])

    def _attempt(self, size: int) -> bytes:
        if self._file is None:
            self._open()
        pieces, got = [], 0
        try:
            if self._pipelined():  # (the file's own position stays where it was: not read below)
                pieces = list(self._readv(size))
                got = sum(map(len, pieces))
            while got < size and not self._pipelined():
                piece = self._file.read(size - got)
                if not piece:
                    break
                pieces.append(piece)
                got += len(piece)
            if not got and self.found.size is not None and self.offset < self.found.size:
                raise Dropped(f"the file ended at byte {self.offset:,} of {self.found.size:,}")
        except Exception as exc:  # noqa: BLE001 - each protocol's library raises its own
            kind, detail = classify(exc)
            self._drop()
            if kind != "dropped":
                raise self.location.failure(exc, self.found.shown) from None
            if not pieces:
                raise Transient(
                    f"the connection dropped at byte {self.offset:,} ({detail})", outcome=NOT_APPLIED
                ) from None
            run = self.location.run  # keep what arrived; the next read connects again
            run.log.warning(
                "%s",
                run.mask(
                    f"{self.location.what}: reading {self.found.shown}: the connection dropped at byte "
                    f"{self.offset + got:,} ({detail}); connecting again to read on from there"
                ),
            )
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self.offset += len(data)
        return data

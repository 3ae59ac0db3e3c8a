"""Request bodies, read within limits, so a hostile or broken client cannot exhaust the portal.

server.py reads a body only after the request's credentials pass, and this module never reads past
the portal's maximum body size, counted twice: the bytes on the wire and, for
`Content-Encoding: gzip`, the bytes they inflate to. Decompression streams (a zlib decompressobj
with `max_length`, piece by piece), so a 400 KB gzip bomb costs the portal at most the limit, never
the gigabytes it would inflate to. The framing is checked before anything is read: a negative,
non-numeric, repeated or oversized `Content-Length` is refused at once, never waited on.

A refusal is a PortalError (400 or 413, Socrata's error body); the rest of the body is left
unread, so the caller answers and closes the connection.
"""

from __future__ import annotations

import re
import zlib

from pipeline.portal.errors import PortalError, bad_request

DEFAULT_MAX_BODY = 256 * 1024 * 1024
PIECE = 64 * 1024  # bytes read from the socket (and inflated) at a time
_LENGTH = re.compile(r"[0-9]{1,19}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
_MAX_TRAILERS = 64
_INFLATE_STEP = 1 << 20  # output per decompress call: zlib briefly holds twice what it returns


class ClientGone(Exception):
    """The client closed the connection before the whole body arrived: nothing to answer."""


def too_large(limit: int, what: str) -> PortalError:
    return PortalError(
        413,
        "req.body.too-large",
        f"The request body is larger than this portal accepts ({what} over {show_size(limit)}); "
        "send smaller batches, or start the portal with a larger --max-body",
        {"limit": limit},
    )


def show_size(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n:,} bytes"


def parse_size(text: str) -> int:
    """`256MB`, `1GiB`, `512k` or a number of bytes -> bytes (KB/MB/GB are binary, as in most servers)."""
    m = re.fullmatch(r"\s*([0-9]+)\s*([kmg]?)(i?b)?\s*", text, re.I)
    if not m:
        raise ValueError(f"'{text}' is not a size; write e.g. 256MB, 1GB or 1048576")
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def framing(headers, limit: int) -> int | None:
    """The body's declared length (0 without one); None for a chunked body. Refuses bad framing
    before a byte of the body is read: that is what keeps `Content-Length: -1` from holding a thread."""
    codings = ",".join(headers.get_all("Transfer-Encoding") or [])
    lengths = headers.get_all("Content-Length") or []
    if codings.strip():
        last = codings.split(",")[-1].strip().lower()
        if last != "chunked":
            raise bad_request(
                "req.header.transfer-encoding",
                f"Transfer-Encoding '{codings.strip()[:100]}' is not supported; send chunked or a Content-Length",
            )
        if lengths:  # both at once is how requests are smuggled (RFC 9112 §6.3)
            raise bad_request(
                "req.header.content-length", "A request cannot carry both Content-Length and Transfer-Encoding"
            )
        return None
    if not lengths:
        return 0
    values = {v.strip() for v in ",".join(lengths).split(",")}
    value = values.pop() if len(values) == 1 else None
    if value is None or not _LENGTH.fullmatch(value):
        shown = ", ".join(lengths)[:100]
        raise bad_request(
            "req.header.content-length", f"Content-Length '{shown}' is not a number of bytes", content_length=shown
        )
    if int(value) > limit:
        raise too_large(limit, f"Content-Length {int(value):,} bytes")
    return int(value)


def read(rfile, headers, length: int | None, limit: int) -> bytes:
    """The whole body, decoded when it is gzip; `length` is what `framing` returned."""
    encoding = (headers.get("Content-Encoding") or "").strip().lower()
    gzipped = encoding in ("gzip", "x-gzip")
    if length is not None and not gzipped:  # the common case: one read, no pieces to join
        data = rfile.read(length)
        if len(data) < length:
            raise ClientGone()
        return data
    pieces = _chunked(rfile, limit) if length is None else _exact(rfile, length)
    if gzipped:
        pieces = Gunzip(limit).inflate(pieces)
    return b"".join(list(pieces))


def _exact(rfile, length: int):
    left = length
    while left:
        data = rfile.read(min(left, PIECE))
        if not data:
            raise ClientGone()
        left -= len(data)
        yield data


def _chunked(rfile, limit: int):
    total = 0
    while True:
        line = rfile.readline(1024)
        if not line:
            raise ClientGone()
        if not line.endswith(b"\n"):
            raise _bad_chunk("a chunk-size line longer than 1 KiB")
        size_text = line.split(b";")[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise _bad_chunk(f"chunk size {size_text[:40]!r} is not a hexadecimal number")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > limit:
            raise too_large(limit, "chunked body")
        yield from _exact(rfile, size)
        if rfile.readline(3) not in (b"\r\n", b"\n"):
            raise _bad_chunk("a chunk does not end with CRLF")
    for _ in range(_MAX_TRAILERS):
        line = rfile.readline(1024)
        if line in (b"\r\n", b"\n", b""):
            return
    raise _bad_chunk(f"more than {_MAX_TRAILERS} trailer lines")


def _bad_chunk(why: str) -> PortalError:
    return bad_request("req.body.bad-chunk", f"The chunked request body is malformed: {why}")


class Gunzip:
    """Streaming gzip decoding that never produces more than `limit` bytes in all.

    Members may follow one another (as gzip.decompress allows), and zero bytes after the last one
    are ignored; anything else after a member, a truncated stream or corrupt data is a 400.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.out = 0

    def inflate(self, pieces):
        d = zlib.decompressobj(31)
        between = b""  # bytes after a finished member, before the next one starts
        fed = False
        for data in pieces:
            fed = fed or bool(data)
            while data:
                if d.eof:
                    data = (between + data).lstrip(b"\0")
                    between = b""
                    if len(data) < 2:
                        between = data
                        break
                    if data[:2] != b"\x1f\x8b":
                        raise _bad_gzip("it has data after the end of the compressed stream")
                    d = zlib.decompressobj(31)
                yield from self._member(d, data)
                data = d.unused_data if d.eof else b""
        if fed and (not d.eof or between.strip(b"\0")):
            raise _bad_gzip("the compressed stream ends early")

    def _member(self, d, data: bytes):
        """Inflate `data` into `d` a step at a time, until it has taken all of it (or its end)."""
        while True:
            step = min(self.limit - self.out + 1, _INFLATE_STEP)
            try:
                out = d.decompress(data, step)
            except zlib.error as exc:
                raise _bad_gzip(str(exc)) from None
            self.out += len(out)
            if self.out > self.limit:
                raise too_large(self.limit, "gzip body once decompressed")
            if out:
                yield out
            data = d.unconsumed_tail
            if d.eof or (len(out) < step and not data):
                return


def _bad_gzip(why: str) -> PortalError:
    return bad_request("req.body.bad-gzip", f"The request body is not valid gzip: {why}")

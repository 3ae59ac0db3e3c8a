"""A workbook part's XML, passed on in bounded time: comments dropped, every other token bounded.

Python's XML parser (expat 2.5, as Python 3.11 bundles it) scans an unfinished token again each
time more input arrives, and iterparse feeds it 16 KB at a time: one huge token costs time
quadratic in its size. A 96 KB workbook holding a 90 MB comment kept openpyxl (and our own survey
of a sheet) busy for more than ten minutes. No spreadsheet program writes such a token (a cell
holds at most 32,767 characters), so:

- comments are dropped as they stream by: they mean nothing to a reader, so dropping them is
  exact, and a comment of any size costs one pass of bytes.find;
- any other token (a text, a tag, a CDATA section, a processing instruction) longer than
  MAX_TOKEN stops the read with TokenTooLong, which says how long and where;
- a document type declaration, which no workbook part has and which is the way in for entity
  expansion, is refused the same way.

`clean_pieces` is the generator; `GuardedXml` wraps it as the file object that iterparse and
openpyxl's sheet parser read from.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator

MAX_TOKEN = 1 << 20  # 1 MB: expat reads one in 0.03 s; 8 MB would take 3 s, 90 MB hours
READ_SIZE = 1 << 18  # must stay below MAX_TOKEN (see _Runs)

_ENDS = {"comment": b"-->", "CDATA section": b"]]>", "processing instruction": b"?>"}


class TokenTooLong(Exception):
    """A token over MAX_TOKEN bytes (or a DOCTYPE): `kind`, its `size` so far, its byte `offset`."""

    def __init__(self, kind: str, size: int, offset: int):
        self.kind, self.size, self.offset = kind, size, offset
        what = "a document type declaration" if kind == "DOCTYPE" else f"a {kind} longer than {_mb(MAX_TOKEN)}"
        super().__init__(f"{what} at byte {offset:,} of its XML")


def _mb(size: int) -> str:
    return f"{size / (1 << 20):.0f} MB" if size >= 1 << 20 else f"{size:,} bytes"


class _Runs:
    """Measures the longest stretch between two '<' in what is passed on: a text or a tag.

    Pieces are at most READ_SIZE plus a few bytes, so a stretch inside one piece is short; only a
    stretch running over several pieces is counted here.
    """

    def __init__(self, on_long: Callable[[TokenTooLong], None]):
        self.run = 0
        self.start = 0
        self.on_long = on_long

    def feed(self, piece: bytes, offset: int) -> None:
        first = piece.find(b"<")
        if first < 0:
            if self.run == 0:
                self.start = offset
            self.run += len(piece)
            if self.run > MAX_TOKEN:
                self.on_long(TokenTooLong("text or tag", self.run, self.start))
                self.run = 0  # reported once; a recorder goes on from here
            return
        if self.run + first > MAX_TOKEN:
            self.on_long(TokenTooLong("text or tag", self.run + first, self.start))
        last = piece.rfind(b"<")
        self.run = len(piece) - last - 1
        self.start = offset + last


def _raise(exc: TokenTooLong) -> None:
    raise exc


def clean_pieces(
    raw: Iterable[bytes], *, drop_comments: bool = True, on_long: Callable[[TokenTooLong], None] = _raise
) -> Iterator[bytes]:
    """The bytes of `raw` again, comments left out (with drop_comments), tokens bounded.

    `on_long` gets each TokenTooLong; the default raises it. A recorder that returns instead lets
    the scan go on (the fast extent scan does that: calamine reads long tokens in linear time).
    """
    runs = _Runs(on_long)
    pending = b""
    inside: str | None = None  # the special token being passed: comment, CDATA section, ...
    size = start = 0  # of that token so far, and where it began
    offset = 0  # bytes of raw input before `pending`
    chunks = iter(raw)
    done = False
    while not done:
        chunk = next(chunks, b"")
        done = not chunk
        buf = pending + chunk
        base = offset - len(pending)  # the byte of the part at buf[0]
        offset += len(chunk)
        i, out, specials = 0, [], _Specials(buf)
        while True:
            if inside is not None:
                end = _ENDS[inside]
                j = buf.find(end, i)
                stop = j + len(end) if j >= 0 else (len(buf) if done else max(i, len(buf) - len(end) + 1))
                size += stop - i
                if inside != "comment" or not drop_comments:
                    if size > MAX_TOKEN:
                        on_long(TokenTooLong(inside, size, start))
                        size = -(1 << 62)  # reported once
                    out.append(buf[i:stop])
                i = stop
                if j < 0:
                    break
                inside = None
                continue
            s = specials.next(i)
            if s < 0:
                stop = len(buf) if done or not buf.endswith(b"<") else len(buf) - 1
                out.append(buf[i:stop])
                i = stop
                break
            if len(buf) - s < 9 and not done:  # too short to tell which: wait for more
                out.append(buf[i:s])
                i = s
                break
            out.append(buf[i:s])
            head = buf[s : s + 9]
            if head.startswith(b"<!--"):
                inside, skip = "comment", 4
            elif head.startswith(b"<![CDATA["):
                inside, skip = "CDATA section", 9
            elif head.startswith(b"<?"):
                inside, skip = "processing instruction", 2
            else:  # <!DOCTYPE, <!ENTITY, ...
                on_long(TokenTooLong("DOCTYPE", 0, base + s))
                out.append(buf[s : s + 2])  # a recorder goes on: pass it on as it is
                i = s + 2
                continue
            size, start = skip, base + s
            if inside != "comment" or not drop_comments:
                out.append(buf[s : s + skip])
            i = s + skip
        pending = buf[i:]
        piece = b"".join(out)
        if piece:
            runs.feed(piece, base)  # (offsets past a dropped comment are approximate)
            yield piece


class _Specials:
    """Finds each '<!' and '<?' of one buffer, left to right, in one pass over it.

    Looks for the rare '!' and '?' (memchr speed) rather than for '<', which is every few bytes,
    and remembers where each was found, so that thousands of tiny comments in a buffer cost one
    pass, not one pass each.
    """

    def __init__(self, buf: bytes):
        self.buf = buf
        self.found = {b"!": -2, b"?": -2}  # position of the mark (after its '<'); -1: none left

    def next(self, i: int) -> int:
        """Where the next '<!' or '<?' starts at or after i; -1 if none."""
        best = -1
        for mark, j in self.found.items():
            if j != -1 and j < i + 1:
                j = self.buf.find(mark, i + 1)
                while j >= 0 and self.buf[j - 1] != 60:  # 60: '<'
                    j = self.buf.find(mark, j + 1)
                self.found[mark] = j
            if j >= 0 and (best < 0 or j - 1 < best):
                best = j - 1
        return best


def raw_chunks(stream, size: int = READ_SIZE) -> Iterator[bytes]:
    """A binary file's bytes in pieces of `size`."""
    while True:
        chunk = stream.read(size)
        if not chunk:
            return
        yield chunk


class GuardedXml:
    """A read-only binary file of `stream`'s XML, cleaned by clean_pieces (raises TokenTooLong)."""

    def __init__(self, stream, drop_comments: bool = True):
        self.stream = stream
        self._pieces = clean_pieces(raw_chunks(stream), drop_comments=drop_comments)
        self._piece, self._at = b"", 0

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all with -1); b"" only at the end."""
        if size < 0:
            rest = self._piece[self._at :] + b"".join(self._pieces)
            self._piece, self._at = b"", 0
            return rest
        while self._at >= len(self._piece):
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            self._piece, self._at = piece, 0
        data = self._piece[self._at : self._at + size]
        self._at += len(data)
        return data

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> GuardedXml:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def prefetched(items: Iterable[bytes], depth: int = 4) -> Iterator[bytes]:
    """`items` again, produced by a thread of their own up to `depth` ahead of the consumer.

    Reading a zip member is mostly zlib inflating, which releases the GIL: with the pieces made
    in a thread, inflating the next piece overlaps whatever the consumer does with this one (the
    quick extent scan: its regular-expression pass). An error in the producer is raised here; a
    consumer that stops early stops the producer.
    """
    done = object()
    pipe: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(item) -> bool:
        """Hand `item` over, unless the consumer has stopped; False then."""
        while not stop.is_set():
            try:
                pipe.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's files, closed by the thread that ran it

    worker = threading.Thread(target=produce, name="xml-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = pipe.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()

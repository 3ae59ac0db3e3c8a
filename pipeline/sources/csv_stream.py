"""Bytes in, checked UTF-8 out: the streams the csv source's readers parse.

Both readers (pyarrow and Python's csv module) parse UTF-8, so every file goes through
`Utf8Stream` first: it strips a byte order mark, checks UTF-8 input block by block (an ASCII block,
the common case, costs one `isascii()`), and transcodes any other encoding with Python's codecs.
A byte that is not valid in the encoding stops the run with the file, line and byte offset, found
where it happens instead of as a conversion error somewhere downstream.

`LineReader` reads the lines before the data (skipped lines, comments, the header) and hands the
rest on as a `DataStream`, which appends an end-of-file sentinel record: if a reader sees the
sentinel as a record of its own, the file did not end inside a quoted field; if it does not, a
quote was opened and never closed, and the run stops instead of swallowing the rest of the file.
"""

from __future__ import annotations

import codecs
import io
from pathlib import Path

from pipeline.basics.errors import RunFailed

BLOCK = 1 << 20
UTF8_BOM = codecs.BOM_UTF8
# A field value no real file holds (private-use code points around a name): the sentinel record
# is this value in every column.
SENTINEL = "\ue000route-end-of-file\ue000"
MAX_HEAD_LINE = 16 << 20


def is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


class Utf8Stream(io.RawIOBase):
    """The file's text as UTF-8 bytes, without a byte order mark; invalid input raises RunFailed."""

    def __init__(self, path: Path | None, encoding: str, shown: str, opener=None):
        """`opener()` gives the file's bytes (a remote file's stream); default: open `path`."""
        self.path, self.encoding, self.shown = path, encoding, shown
        self.opener = opener or (lambda: open(path, "rb"))
        self._raw = self.opener()
        self._utf8 = is_utf8(encoding)
        self._decoder = codecs.getincrementaldecoder("utf-8" if self._utf8 else encoding)("strict")
        self._offset = 0  # file bytes read so far
        self._out = b""
        self._pos = 0
        self._first = True
        self._eof = False

    def readable(self) -> bool:
        return True

    @property
    def bytes_read(self) -> int:
        """The file's bytes read so far (for a progress bar's percent)."""
        return self._offset

    def close(self) -> None:
        self._raw.close()
        super().close()

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes, without first allocating `size` (readers ask for whole blocks)."""
        while self._pos >= len(self._out):
            if self._eof:
                return b""
            self._fill()
        if self._pos == 0 and (size < 0 or size >= len(self._out)):
            self._pos = len(self._out)
            return self._out
        end = len(self._out) if size < 0 else self._pos + size
        data = self._out[self._pos : end]
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        while self._pos >= len(self._out):
            if self._eof:
                return 0
            self._fill()
        n = min(len(buffer), len(self._out) - self._pos)
        buffer[:n] = self._out[self._pos : self._pos + n]
        self._pos += n
        return n

    def _fill(self) -> None:
        block = self._raw.read(BLOCK)
        start = self._offset
        self._offset += len(block)
        final = not block
        self._eof = final
        if self._first and self._utf8 and block.startswith(UTF8_BOM):
            block, start = block[len(UTF8_BOM) :], start + len(UTF8_BOM)
        pending = len(self._decoder.getstate()[0])
        try:
            if self._utf8 and not pending and block.isascii():
                out = block
            elif self._utf8:
                self._decoder.decode(block, final)  # check only: the bytes pass through
                out = block
            else:
                text = self._decoder.decode(block, final)
                if self._first and text.startswith("\ufeff"):
                    text = text[1:]
                out = text.encode("utf-8")
        except UnicodeDecodeError as exc:
            raise RunFailed(
                decode_error_message(self.opener, self.shown, self.encoding, start - pending + exc.start)
            ) from None
        except UnicodeError as exc:  # a codec's own complaint, e.g. UTF-16 without a byte order mark
            raise RunFailed(
                f"{self.shown}: not valid {self.encoding} text ({exc}); check the encoding option"
            ) from None
        self._first = self._first and not out
        self._out, self._pos = out, 0


def decode_error_message(opener, shown: str, encoding: str, offset: int) -> str:
    """Where the first undecodable byte is, and which encoding to try instead (`opener()` opens
    the file again: it is read from its start, in blocks, up to the byte)."""
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    line, after_cr = 1, False
    with opener() as f:
        start, left = b"", offset
        while left > 0:  # count line breaks before the byte, a block at a time
            block = f.read(min(BLOCK, left))
            if not block:
                break
            start = start or block[:2]
            left -= len(block)
            try:
                text = decoder.decode(block)
            except UnicodeError:  # a codec that fails even with errors="replace" (UTF-16, no BOM)
                text = block.decode("latin-1")
            line += text.count("\n") + text.count("\r") - text.count("\r\n")
            line -= after_cr and text.startswith("\n")  # a \r\n split between blocks
            after_cr = text.endswith("\r") if text else after_cr
        bad = f.read(1)
        start = (start + bad + f.read(1))[:2] if len(start) < 2 else start
    name = codecs.lookup(encoding).name
    if start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) and name != "utf-16":
        hint = "the file starts with a UTF-16 byte order mark: set encoding: utf-16"
    elif name == "cp1252":
        hint = "set encoding: latin-1 (it accepts every byte)"
    else:
        hint = "if the file was saved by Excel or another Windows program, set encoding: cp1252 (or latin-1)"
    return f"{shown}: line {line}, byte offset {offset} (0x{bad.hex()}) is not valid {encoding}; {hint}"


class LineReader:
    """Physical lines (ended by \\n, \\r\\n or \\r) from a UTF-8 stream, counted from 1."""

    def __init__(self, stream, shown: str):
        self.stream, self.shown = stream, shown
        self.buf = bytearray()
        self.pos = 0
        self.eof = False
        self.lines = 0  # lines consumed so far
        self.marked = False

    def _more(self) -> bool:
        if self.eof:
            return False
        data = self.stream.read(BLOCK)
        if not data:
            self.eof = True
            return False
        if self.pos > BLOCK and not self.marked:  # drop what was consumed before growing
            del self.buf[: self.pos]
            self.pos = 0
        self.buf += data
        return True

    def readline(self) -> bytes | None:
        """The next line with its ending, or None at the end of the file."""
        while True:
            buf, pos = self.buf, self.pos
            nl = buf.find(b"\n", pos)
            cr = buf.find(b"\r", pos, nl if nl >= 0 else len(buf))
            if cr >= 0 and (cr + 1 < len(buf) or self.eof):
                end = cr + 2 if cr + 1 < len(buf) and buf[cr + 1] == 10 else cr + 1
            elif nl >= 0:
                end = nl + 1
            elif self.eof:
                end = len(buf)
                if end == pos:
                    return None
            else:
                if len(buf) - pos > MAX_HEAD_LINE:
                    raise RunFailed(
                        f"{self.shown}: line {self.lines + 1} is longer than 16 MiB "
                        "before the data starts; check delimiter, header_row and skip_rows"
                    )
                self._more()
                continue
            line = bytes(buf[pos:end])
            self.pos = end
            self.lines += 1
            return line

    def mark(self) -> tuple[int, int]:
        self.marked = True
        return self.pos, self.lines

    def reset(self, mark: tuple[int, int]) -> None:
        self.pos, self.lines = mark
        self.marked = False

    def rest(self, trailer: bytes) -> DataStream:
        """Everything not consumed yet, then `trailer` (on a line of its own)."""
        prefix = bytes(self.buf[self.pos :])
        self.buf = bytearray()
        return DataStream(prefix, None if self.eof else self.stream, trailer)


def any_line_starts_with(stream, char: str) -> bool:
    """Whether a line of `stream` (positioned at a line start) starts with `char`: a scan at
    memchr speed that lets a file whose comments are all above the header use the fast reader."""
    mark = char.encode("utf-8")
    prev = b"\n"
    while True:
        block = stream.read(BLOCK)
        if not block:
            return False
        if prev in (b"\r", b"\n") and block.startswith(mark):
            return True
        if b"\n" + mark in block or b"\r" + mark in block:
            return True
        prev = block[-1:]


class DataStream(io.RawIOBase):
    """prefix + the rest of `stream` + a newline if the file lacks a final one + `trailer`.

    No piece it returns ends with \r while more follows: pyarrow drops a \n that starts a buffer
    after one that ended with \r, even inside a quoted field (apache/arrow#51368), so a value's
    \r\n would lose its \n whenever a read happened to end between the two."""

    def __init__(self, prefix: bytes, stream, trailer: bytes):
        self._pieces = self._generate(prefix, stream, trailer)
        self._cur = b""
        self._pos = 0

    @staticmethod
    def _generate(prefix: bytes, stream, trailer: bytes):
        carry, last = b"", b""
        piece = prefix
        while True:
            if piece:
                piece = carry + piece
                last = piece[-1:]
                carry = b"\r" if last == b"\r" else b""
                if len(piece) > len(carry):
                    yield piece[: len(piece) - len(carry)]
            if stream is None:
                break
            piece = stream.read(BLOCK)
            if not piece:
                stream = None
        ending = b"\n" if last and last not in (b"\r", b"\n") else b""
        yield carry + ending + trailer

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """`size` bytes (fewer only at the end, or to avoid ending on \r), gathered from as many
        pieces as that takes: pyarrow parses each read as one block, and a record must fit in
        a block, so a short read would limit records to the piece size whatever the block size.
        The pieces are joined once; the one piece that covers a read is returned without a copy."""
        if size < 0:
            if not self._next():
                return b""
            data = self._cur[self._pos :]
            self._pos = len(self._cur)
            return data
        pieces: list[bytes] = []
        total = 0
        while total < size and self._next():
            piece = self._cur[self._pos :] if self._pos else self._cur
            pieces.append(piece)
            total += len(piece)
            self._pos = len(self._cur)
        if not pieces:
            return b""
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if len(data) <= size:
            return data  # ends where a piece ends: never on \r unless the data does
        end = size - 1 if size > 1 and data[size - 1] == 13 else size
        self._cur, self._pos = data, end  # the rest is read next
        return data[:end]

    def readinto(self, buffer) -> int:
        if not self._next():
            return 0
        data = self._slice(len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _slice(self, size: int) -> bytes:
        end = min(len(self._cur), self._pos + size)
        if end < len(self._cur) and end - self._pos > 1 and self._cur[end - 1] == 13:
            end -= 1  # never end a read on \r (see the class docstring)
        return self._cur[self._pos : end]

    def _next(self) -> bool:
        """Make `_cur[_pos:]` non-empty; False at the very end."""
        while self._pos >= len(self._cur):
            self._cur = next(self._pieces, None)
            self._pos = 0
            if self._cur is None:
                self._cur = b""
                return False
        return True

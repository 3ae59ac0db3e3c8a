"""A workbook part's bytes, inflated with ISA-L when it is installed.

The extent scan (excel_extent.py) inflates a sheet's XML once before calamine reads it; zlib took
a third of that scan. isal (python-isal, the `excel` extra) inflates the same deflate stream in
about 60 % of zlib's time. `member_chunks` reads a plain deflated (or stored) member itself, from
the offsets of the zip's directory, and checks its size and CRC as zipfile does; any other member
(encrypted, another method) and any machine without isal goes through zipfile.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

READ = 1 << 18
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # zip's local file header, 30 bytes


def member_chunks(path: Path, member: str, size: int = READ) -> Iterator[bytes]:
    """The inflated bytes of `member` of the zip at `path`, in pieces of about `size` bytes.

    Raises zipfile.BadZipFile for a damaged member (a bad CRC, a wrong size), zlib.error for a
    damaged deflate stream, KeyError for a missing member, as zipfile would.
    """
    try:
        from isal import isal_zlib
    except ImportError:
        isal_zlib = None
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(member)
        plain = info.compress_type in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED) and not info.flag_bits & 0x1
        if isal_zlib is None or not plain:
            with z.open(member) as stream:
                while chunk := stream.read(size):
                    yield chunk
            return
    yield from _inflate(path, info, isal_zlib, size)


def _inflate(path: Path, info: zipfile.ZipInfo, isal_zlib, size: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"Bad magic number for file header of {info.filename!r}")
        fields = _LOCAL_HEADER.unpack(header)
        f.seek(fields[-2] + fields[-1], 1)  # past the name and the extra field
        left = info.compress_size
        inflate = isal_zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
        crc, length, pending = 0, 0, b""
        while True:
            if not pending and left:
                pending = f.read(min(size, left))
                left -= len(pending)
                if not pending:
                    raise zipfile.BadZipFile(f"{info.filename!r} ends before its compressed size")
            if pending and inflate is not None:  # at most `size` bytes out of each call
                piece = _run(inflate.decompress, pending, size)
                pending = inflate.unconsumed_tail
            elif pending:
                piece, pending = pending, b""
            elif inflate is not None:
                piece, inflate = _run(inflate.flush), None
            else:
                break
            if piece:
                crc = isal_zlib.crc32(piece, crc)
                length += len(piece)
                yield piece
    if length != info.file_size or crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 or size for file {info.filename!r}")


def _run(step, *args) -> bytes:
    """One isal call; its errors as zlib's, which the callers already expect."""
    try:
        return step(*args)
    except Exception as exc:  # isal raises IsalError, not a zlib.error
        if type(exc).__name__ == "IsalError":
            raise zlib.error(str(exc)) from None
        raise

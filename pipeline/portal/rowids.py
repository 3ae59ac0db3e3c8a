"""Internal row ids (`:id`) as Socrata writes them on 2.1: `row-xxxx~xxxx~xxxx`.

The text is a reversible scramble of the row's integer key, so ids look like Socrata's, never
repeat within a dataset (keys are never reused, also across replaces), and decode without a lookup.
"""

from __future__ import annotations

import re

_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_BITS = 60
_MASK = (1 << _BITS) - 1
_K = 0x9E3779B97F4A7C1 | 1
_K_INV = pow(_K, -1, 1 << _BITS)
_PATTERN = re.compile(r"row-([2-9a-km-z]{4})~([2-9a-km-z]{4})~([2-9a-km-z]{4})")


def encode(sid: int) -> str:
    x = (sid * _K) & _MASK
    chars = []
    for _ in range(12):
        chars.append(_ALPHABET[x & 31])
        x >>= 5
    s = "".join(reversed(chars))
    return f"row-{s[:4]}~{s[4:8]}~{s[8:]}"


def decode(text) -> int | None:
    """The integer key of a row id (also accepts a bare integer, the 2.0 form); None if not an id."""
    if type(text) is int:
        return text
    if not isinstance(text, str):
        return None
    if text.isdigit():
        return int(text)
    m = _PATTERN.fullmatch(text)
    if not m:
        return None
    x = 0
    for c in "".join(m.groups()):
        x = (x << 5) | _INDEX[c]
    return (x * _K_INV) & _MASK


def encode_all(sids: list) -> list:
    return [None if s is None else encode(s) for s in sids]

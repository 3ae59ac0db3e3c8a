"""One column converted to its wire form: the values, and which ones did not convert and why.

Shared by the scalar conversions (wire.py) and the geometry ones (geo.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics.dtypes import contiguous


@dataclass(frozen=True)
class Conversion:
    values: pa.Array  # wire values, same length as the input
    bad: pa.Array | None = None  # True where a non-null value did not convert
    reason: str = ""


def with_bad(values: pa.Array, bad: pa.Array, reason: str) -> Conversion:
    """`values` with the `bad` ones set to null, and the reason they are bad (none bad: values as they are)."""
    bad = contiguous(bad)
    if not pc.any(bad).as_py():
        return Conversion(values)
    return Conversion(pc.if_else(bad, pa.scalar(None, values.type), values), bad, reason)

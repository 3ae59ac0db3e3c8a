"""Remembering which keys a stream has shown, in memory bounded by the number of distinct keys.

A key (the values of some columns in one row) is reduced to a 128-bit hash: two 64-bit hashes
with different seeds, computed over whole columns by polars (about 20 times faster than pandas'
hash_pandas_object on text). Two different keys collide with a probability near n^2 / 2^129
(about 1e-26 for 100 million keys), so no row is dropped by accident in practice, and only 16
bytes (24 with a first line) are kept per key, never the rows. The hashes are stable within a
run, which is all a stream needs.

SeenKeys holds the hashes as sorted numpy runs of geometrically growing sizes (a small
log-structured merge): a lookup sorts the queries once and binary-searches each of O(log n) runs,
an insert sorts only the new keys, and runs merge as they grow, so every operation works on whole
arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from transforms._frames import to_arrow

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# numpy, Arrow and polars are imported by the functions that hash or look up keys, not with the
# rule modules that use them (binding those loads none of them).

_SEEDS = (0x5EED_0001, 0x0DDB_A11_5EED)


def key_hashes(chunk: pd.DataFrame, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Two uint64 hashes per row of the key columns (all columns when `keys` is empty)."""
    import numpy as np
    import polars as pl
    import pyarrow as pa

    part = chunk[list(keys)] if keys else chunk
    if part.shape[1] == 0 or len(part) == 0:
        zeros = np.zeros(len(chunk), dtype=np.uint64)
        return zeros, zeros.copy()
    table = pa.table({f"k{i}": _plain(to_arrow(part.iloc[:, i])) for i in range(part.shape[1])})
    frame = pl.from_arrow(table)
    return (frame.hash_rows(seed=_SEEDS[0]).to_numpy(), frame.hash_rows(seed=_SEEDS[1]).to_numpy())


def _plain(data):
    """Types polars hashes as values (dictionaries and extension types by their values)."""
    import pyarrow as pa

    if pa.types.is_dictionary(data.type):
        return data.cast(data.type.value_type)
    return data


def first_positions(h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
    """For each row, the position of the first row in the same array with the same key."""
    import numpy as np
    import pandas as pd

    n = len(h1)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    codes, _ = pd.factorize(h1)
    _, first = np.unique(codes, return_index=True)
    positions = first[codes]
    if not (h2[positions] == h2).all():  # two keys share h1 but not h2: group on both (~never)
        codes = pd.DataFrame({"a": h1, "b": h2}).groupby(["a", "b"], sort=False).ngroup().to_numpy()
        _, first = np.unique(codes, return_index=True)
        positions = first[codes]
    return positions


class SeenKeys:
    """A set of 128-bit key hashes, each with an optional int64 payload (e.g. its first line)."""

    def __init__(self, payload: bool = False):
        self._runs: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        self._payload = payload

    def __len__(self) -> int:
        return sum(len(r[0]) for r in self._runs)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for run in self._runs for a in run if a is not None)

    def lookup(self, h1: np.ndarray, h2: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Which keys are in the set, and their payloads (-1 where absent)."""
        import numpy as np

        found = np.zeros(len(h1), dtype=bool)
        payload = np.full(len(h1), -1, dtype=np.int64) if self._payload else None
        if not self._runs or not len(h1):
            return found, payload
        order = np.argsort(h1)  # sorted queries walk each run in one direction: far fewer cache misses
        q1, q2 = h1[order], h2[order]
        for r1, r2, rp in self._runs:
            at = np.searchsorted(r1, q1, "left")
            inside = at < len(r1)
            at_c = np.where(inside, at, 0)
            same = inside & (r1[at_c] == q1)
            hit = same & (r2[at_c] == q2)
            for k in np.flatnonzero(same & ~hit):  # same h1, another h2: look at the neighbours
                j = at_c[k] + 1
                while j < len(r1) and r1[j] == q1[k]:
                    if r2[j] == q2[k]:
                        hit[k], at_c[k] = True, j
                        break
                    j += 1
            found[order[hit]] = True
            if payload is not None:
                payload[order[hit]] = rp[at_c[hit]]
        return found, payload

    def add(self, h1: np.ndarray, h2: np.ndarray, payload: np.ndarray | None = None) -> None:
        """Add keys known to be new and distinct."""
        import numpy as np

        if not len(h1):
            return
        order = np.argsort(h1)
        p = None if not self._payload else np.asarray(payload, dtype=np.int64)[order]
        self._runs.append((h1[order], h2[order], p))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            b, a = self._runs.pop(), self._runs.pop()
            self._runs.append(_merge(a, b))


def _merge(a, b):
    """Merge two sorted runs by scattering the smaller into place: no argsort, and no more
    temporary memory than the merged arrays themselves."""
    import numpy as np

    n = len(a[0]) + len(b[0])
    slots = np.searchsorted(a[0], b[0], "right") + np.arange(len(b[0]))
    from_b = np.zeros(n, dtype=bool)
    from_b[slots] = True
    merged = []
    for x, y in zip(a, b):
        if x is None:
            merged.append(None)
            continue
        out = np.empty(n, dtype=x.dtype)
        out[slots] = y
        out[~from_b] = x
        merged.append(out)
    return tuple(merged)

"""Source lines as short ranges ("lines 2-10001, 10005 of data.csv") for messages about rows."""

from __future__ import annotations

import numpy as np

MAX_RANGES = 12


def ranges(lines) -> list[tuple[int, int]]:
    """Sorted, merged (first, last) runs of consecutive line numbers (vectorised)."""
    arr = np.asarray(lines, dtype=np.int64)
    if arr.size == 0:
        return []
    if arr[-1] - arr[0] == arr.size - 1 and np.all(np.diff(arr) == 1):
        return [(int(arr[0]), int(arr[-1]))]          # the usual case: one run of lines
    arr = np.unique(arr)
    breaks = np.flatnonzero(np.diff(arr) != 1)
    starts = np.concatenate(([arr[0]], arr[breaks + 1]))
    ends = np.concatenate((arr[breaks], [arr[-1]]))
    return list(zip(starts.tolist(), ends.tolist()))


def text(runs: list[tuple[int, int]], limit: int = MAX_RANGES) -> str:
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit]]
    if len(runs) > limit:
        parts.append(f"and {len(runs) - limit} more ranges")
    return ", ".join(parts)


def describe(lines, source: str = "", limit: int = MAX_RANGES) -> str:
    """`rows at lines 2-10001 of data.csv` for a set of source lines."""
    return describe_runs(ranges(lines), source, limit)


def merge_runs(groups) -> list[tuple[int, int]]:
    """Runs from several groups of runs, sorted and joined where they touch."""
    runs = sorted(r for g in groups for r in g)
    out: list[tuple[int, int]] = []
    for a, b in runs:
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def describe_runs(runs: list[tuple[int, int]], source: str = "", limit: int = MAX_RANGES) -> str:
    if not runs:
        return "no rows"
    word = "line" if len(runs) == 1 and runs[0][0] == runs[0][1] else "lines"
    where = f" of {source}" if source else ""
    return f"rows at {word} {text(runs, limit)}{where}"

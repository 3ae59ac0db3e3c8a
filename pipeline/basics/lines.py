"""Source lines as short ranges ("lines 2-10001, 10005 of data.csv") for messages about rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

MAX_RANGES = 12


def ranges(lines) -> list[tuple[int, int]]:
    """Sorted, merged (first, last) runs of consecutive line numbers (vectorised)."""
    import numpy as np  # run time only: messages about lines need no numpy when planning

    arr = np.asarray(lines, dtype=np.int64)
    if arr.size == 0:
        return []
    steps = np.diff(arr)
    if arr[-1] - arr[0] == arr.size - 1 and (steps == 1).all():
        return [(int(arr[0]), int(arr[-1]))]  # the usual case: one run of lines
    if not (steps > 0).all():  # lines usually arrive ascending (filtered rows leave gaps): sort only when not
        arr = np.unique(arr)
        steps = np.diff(arr)
    breaks = np.flatnonzero(steps != 1)
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


def merge(runs) -> list[tuple[int, int]]:
    """One group of runs, sorted and joined where they touch or overlap."""
    return merge_runs([runs])


def within(lines, runs: list[tuple[int, int]]) -> np.ndarray:
    """A boolean mask: which of `lines` fall inside the merged `runs` (vectorised)."""
    import numpy as np  # run time only: messages about lines need no numpy when planning

    arr = np.asarray(lines, dtype=np.int64)
    if not runs or arr.size == 0:
        return np.zeros(arr.size, dtype=bool)
    starts = np.fromiter((a for a, _ in runs), dtype=np.int64, count=len(runs))
    ends = np.fromiter((b for _, b in runs), dtype=np.int64, count=len(runs))
    pos = np.searchsorted(starts, arr, side="right") - 1
    ok = pos >= 0
    inside = np.zeros(arr.size, dtype=bool)
    inside[ok] = arr[ok] <= ends[pos[ok]]
    return inside


def describe_sources(runs_by_source: dict[str, list[tuple[int, int]]]) -> str:
    """`rows at lines 2-10001 of a.csv; rows at line 7 of b.csv` for line runs grouped by source."""
    return "; ".join(describe_runs(runs, source) for source, runs in runs_by_source.items())

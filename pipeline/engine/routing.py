"""Routing, the stage between the source rules and the targets: which rows go where.

Each target may carry `when: <expression>`; a row goes to every target whose condition holds (no
`when`: every row). Rows that match no target are handed back as unrouted, for the executor to
give to the route's `routing.unrouted` file (an ordinary delivery, see deliveries/unrouted.py)
or to a preview.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.basics.errors import StepFailed
from pipeline.route.plan import Plan, Target


class Router:
    """Splits each chunk of the canonical table between the targets of a plan."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.unrouted = 0

    def route(self, chunk: pd.DataFrame) -> tuple[list[pd.DataFrame], pd.DataFrame | None]:
        """(the part of `chunk` for each target, in plan order; the rows no target took, or None)."""
        parts: list[pd.DataFrame] = []
        matched = np.zeros(len(chunk), dtype=bool)
        for target in self.plan.targets:
            if target.when is None:
                parts.append(chunk)
                matched[:] = True
                continue
            mask = self.when(target, chunk)
            part = chunk[mask]
            part.attrs = dict(chunk.attrs)
            parts.append(part)
            matched |= mask
        if matched.all():
            return parts, None
        rows = chunk[~matched]
        rows.attrs = dict(chunk.attrs)
        self.unrouted += len(rows)
        return parts, rows

    def when(self, target: Target, chunk: pd.DataFrame) -> np.ndarray:
        """The rows of `chunk` for which the target's `when` holds (null counts as false)."""
        try:
            return np.asarray(pd.Series(target.when.mask(chunk), index=chunk.index).to_numpy(), dtype=bool)
        except Exception as exc:
            line = self.plan.doc.mark(target.path + ("when",))[0]
            raise StepFailed(
                f"{self.plan.doc.file}:{line}: targets[{target.path[1]}].when: {getattr(exc, 'message', None) or exc}"
            ) from exc

"""The replace guard every delivery shares: never replace good data with nothing by mistake.

A replace that would empty an output holding rows, or shrink it by more than `max_shrink` (50 % by
default), stops before anything is replaced unless the run is forced (`--force`) or the target says
`allow_empty: true`. A header-only or zero-row input is the usual cause: a wrong delimiter, a
half-written export, a query that matched nothing.
"""

from __future__ import annotations

DEFAULT_MAX_SHRINK = 0.5

# The options every replacing delivery accepts, merged into its JSON Schema.
SHRINK_OPTIONS = {
    "max_shrink": {
        "anyOf": [
            {"type": "number", "minimum": 0, "maximum": 1},
            {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*%\s*$"},
        ],
        "description": "replace: stop when the output would lose more than this share of its "
        'rows (0.5 or "50%", the default); --force goes ahead anyway',
    },
    "allow_empty": {
        "type": "boolean",
        "description": "replace: an empty or much smaller result is intended; do not stop (default false)",
    },
}


def shrink_fraction(value) -> float:
    """0.5 from 0.5, "50%" or "50 %"; the default when None."""
    if value is None:
        return DEFAULT_MAX_SHRINK
    if isinstance(value, str):
        return float(value.strip().rstrip("%").strip()) / 100.0
    return float(value)


def shrink_problem(current: int, new: int, max_shrink: float, what: str = "dataset") -> str | None:
    """Why a replace from `current` to `new` rows must not go ahead, or None."""
    if current <= 0:
        return None
    if new == 0:
        return f"it would empty the {what} (it has {current:,} rows and the route delivers none)"
    lost = (current - new) / current
    if lost > max_shrink:
        return (
            f"it would shrink the {what} from {current:,} to {new:,} rows ({lost:.0%} fewer, more than "
            f"max_shrink {max_shrink:.0%})"
        )
    return None


def stop_message(head: str, problem: str) -> str:
    """The message of a replace the guard stopped."""
    return (
        f"{head}: stopped before replacing: {problem}. Nothing was changed. If this is intended, run "
        f"again with --force, or set allow_empty: true (or a higher max_shrink) on the target"
    )


def guard(head: str, current: int, new: int, options: dict, run, what: str) -> str | None:
    """The problem to stop on (None: go ahead). Logs a warning when --force or allow_empty overrides it."""
    problem = shrink_problem(current, new, shrink_fraction(options.get("max_shrink")), what)
    if problem is None:
        return None
    if getattr(run.options, "force", False) or options.get("allow_empty"):
        why = "--force" if getattr(run.options, "force", False) else "allow_empty: true"
        run.log.warning("%s: %s; going ahead because of %s", head, problem, why)
        return None
    return problem

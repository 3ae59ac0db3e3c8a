"""The `notify:` setting of a route or a defaults.yaml, checked when the route is loaded.

What the schema cannot say on its own: each target is exactly one of email or webhook, and a bare
`on:` key (which YAML 1.1 reads as true) means "on". Sending lives in pipeline/ops/notify/.
"""

from __future__ import annotations

from typing import Any

from pipeline.basics.errors import Problem

EVENTS = ("failure", "rejects", "stale", "recovery", "success")
KINDS = ("email", "webhook")


def targets_of(config: Any) -> list[dict]:
    """The notify setting as a list of targets (one mapping is one target)."""
    if isinstance(config, dict):
        return [config]
    return [t for t in config or [] if isinstance(t, dict)]


def fix_on_keys(doc, config: Any, path: tuple) -> None:
    """YAML 1.1 (PyYAML) reads a bare `on:` key as true; turn it back into "on", positions included.

    Editors (YAML 1.2) and the JSON schema see `on`, so that is what the file means."""
    items = (
        [(path, config)]
        if isinstance(config, dict)
        else [(path + (i,), t) for i, t in enumerate(config)]
        if isinstance(config, list)
        else []
    )
    for where, target in items:
        if not isinstance(target, dict) or True not in target or "on" in target:
            continue
        fixed = {("on" if k is True else k): v for k, v in target.items()}
        target.clear()
        target.update(fixed)
        for table in (doc.marks, doc.key_marks, doc.styles):
            for key in [k for k in table if k[: len(where) + 1] == where + (True,)]:
                table[where + ("on",) + key[len(where) + 1 :]] = table.pop(key)


def check_targets(doc, config: Any, path: tuple) -> list[Problem]:
    """What the schema cannot say: each target is exactly one of email or webhook."""
    items = (
        [(path, config)]
        if isinstance(config, dict)
        else [(path + (i,), t) for i, t in enumerate(config)]
        if isinstance(config, list)
        else []
    )
    problems = []
    for where, target in items:
        if not isinstance(target, dict):
            continue
        kinds = [k for k in KINDS if k in target]
        if not kinds:
            problems.append(
                doc.problem(where, "a notify target needs `email: {to: ..., host: ...}` or `webhook: {url: ...}`")
            )
        elif len(kinds) > 1:
            problems.append(
                doc.problem(
                    where + (kinds[1],),
                    "a notify target is either email or webhook: start a new list item with '-' for the other",
                    at_key=True,
                )
            )
    return problems

"""`route rules`: what rules exist (built-in and plugins), and one rule's options and example."""

from __future__ import annotations

import inspect
import json

from pipeline.basics.errors import RouteInvalid, suggest
from pipeline.basics.plugins import KIND_WORD, PluginLoadError, Registry, spec_of


def _first_line(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.splitlines()[0] if doc else ""


def listing(registry: Registry) -> str:
    lines = []
    for kind, title in (("rules", "Rules"), ("sources", "Sources"), ("deliveries", "Deliveries")):
        lines.append(f"{title}:")
        for entry in registry.entries(kind):
            where = "" if entry.distribution in (None, "route-etl") else f"  [{entry.distribution}]"
            try:
                summary = _first_line(registry.load(kind, entry.name))
            except PluginLoadError as exc:
                summary = f"(cannot be loaded: {exc})"
            lines.append(f"  {entry.name:<16} {summary}{where}")
        lines.append("")
    lines.append("`route rules NAME` shows a rule's options and an example.")
    return "\n".join(lines)


def describe(name: str, registry: Registry) -> str:
    for kind in ("rules", "sources", "deliveries"):
        if registry.knows(kind, name) and (":" in name or name in registry.names(kind)):
            try:
                impl = registry.load(kind, name)
            except PluginLoadError as exc:
                if ":" in name and "component, not one of" in str(exc):
                    continue  # a dotted reference to another kind of component: try the next kind
                raise RouteInvalid(f"error: {name}: {exc}") from None
            spec = spec_of(impl)
            doc = inspect.getdoc(impl) or "(no description)"
            schema = json.dumps(spec.options_schema, indent=2)
            extra = f"\nShorthand: a bare value or list is the '{spec.shorthand}' option." if spec.shorthand else ""
            scope = (
                f"\nWorks on: {'each chunk' if spec.scope == 'chunk' else 'the whole stream'}"
                if kind == "rules"
                else ""
            )
            return f"{name} ({KIND_WORD[kind]})\n\n{doc}\n{scope}{extra}\n\nOptions (JSON Schema):\n{schema}"
    known = registry.names("rules") + registry.names("sources") + registry.names("deliveries")
    raise RouteInvalid(f"error: no rule, source or delivery named '{name}'{suggest(name, known)}")

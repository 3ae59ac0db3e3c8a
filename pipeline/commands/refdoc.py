"""The route file reference (docs/reference.md), generated from the components' own schemas.

Generated, not hand-written, so it cannot drift from what `route validate` checks: a test fails
when docs/reference.md differs from `python -m pipeline.commands.refdoc`.
"""

from __future__ import annotations

import inspect
import json
import sys

from pipeline.basics.plugins import Registry, spec_of

_TITLES = {"sources": "Sources", "rules": "Rules", "deliveries": "Deliveries"}


def _type_of(schema: dict) -> str:
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    t = schema.get("type")
    if isinstance(t, list):
        return " or ".join(t)
    if t:
        if t == "array" and isinstance(schema.get("items"), dict) and schema["items"].get("type"):
            return f"list of {schema['items']['type']}"
        return t
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " or ".join(_type_of(s) for s in schema[key])
    return "any"


def _options_table(schema: dict) -> list[str]:
    props = schema.get("properties") or {}
    if not props:
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return [f"A mapping from column names to {_type_of(extra)} values.", ""]
        return []
    required = set(schema.get("required") or [])
    lines = ["| option | type | required | default | description |", "|---|---|---|---|---|"]
    for name, sub in props.items():
        sub = sub if isinstance(sub, dict) else {}
        default = json.dumps(sub["default"]) if "default" in sub else ""
        desc = (sub.get("description") or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{name}` | {_type_of(sub)} | {'yes' if name in required else ''} | {default} | {desc} |")
    return lines + [""]


def render(registry: Registry) -> str:
    out = [
        "# route file reference",
        "",
        "Generated from the components' option schemas by `python -m pipeline.commands.refdoc`; do not edit by hand.",
        "Each component is a one-key mapping: `- NAME: OPTIONS`. `route rules NAME` shows the same in a terminal.",
        "",
    ]
    for kind in ("sources", "rules", "deliveries"):
        out += [f"## {_TITLES[kind]}", ""]
        for entry in registry.entries(kind):
            if entry.distribution not in (None, "route-etl"):
                continue  # plugins document themselves
            impl = registry.load(kind, entry.name)
            spec = spec_of(impl)
            doc = inspect.getdoc(impl) or ""
            out += [f"### `{entry.name}`", ""]
            if kind == "rules":
                scope = "each chunk" if spec.scope == "chunk" else "the whole stream (bounded memory)"
                out += [
                    f"Works on {scope}."
                    + (f" Shorthand: a bare value or list is the `{spec.shorthand}` option." if spec.shorthand else ""),
                    "",
                ]
            out += [doc, ""] + _options_table(spec.options_schema)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(Registry.discover()))

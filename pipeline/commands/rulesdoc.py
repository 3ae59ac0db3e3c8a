"""`route rules`: what rules exist (built-in and plugins), and one rule's options and example."""

from __future__ import annotations

import inspect
import json
import re
import shutil
import textwrap

from pipeline.basics.errors import RouteInvalid, suggest
from pipeline.basics.plugins import KIND_WORD, PluginLoadError, Registry, spec_of

KINDS = (("rules", "Rules"), ("sources", "Sources"), ("deliveries", "Deliveries"))
NARROWEST = 40  # below this many columns, wrap as if there were this many

# The end of a sentence: a full stop (or ! ?) before a space and what starts a sentence. "e.g. to"
# does not end one (a lower-case word follows), nor does "0.5" (no space).
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)[.!?](?=\s+[A-Z`\"'(])")


def first_sentence(obj) -> str:
    """The first sentence of a docstring's first paragraph, on one line and whole."""
    doc = inspect.getdoc(obj) or ""
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    end = _SENTENCE_END.search(paragraph)
    return paragraph[: end.end()] if end else paragraph


def listing(registry: Registry, width: int | None = None) -> str:
    """Every rule, source and delivery with the first sentence of its description, wrapped to
    `width` (default: the terminal's) with no word cut."""
    width = max(width or shutil.get_terminal_size().columns, NARROWEST)
    names = [e.name for kind, _ in KINDS for e in registry.entries(kind)]
    name_width = min(max(map(len, names), default=0), 24)
    lines = []
    for kind, title in KINDS:
        lines.append(f"{title}:")
        for entry in registry.entries(kind):
            # a plugin's distribution leads its text, so it stays on the line of its name
            where = "" if entry.distribution in (None, "route-etl") else f"[{entry.distribution}] "
            try:
                summary = first_sentence(registry.load(kind, entry.name))
            except PluginLoadError as exc:
                summary = f"(cannot be loaded: {exc})"
            head = f"  {entry.name:<{name_width}}  "
            lines.append(
                textwrap.fill(
                    f"{where}{summary}",
                    width=width,
                    initial_indent=head,
                    subsequent_indent=" " * (name_width + 4),
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            )
        lines.append("")
    lines.append("`route rules NAME` shows one with its whole description, its options and an example.")
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

"""Markers that declare components, and the registry that finds them by name.

A marker only tags: `@rule(...)`, `@source(...)`, `@delivery(...)` attach a ComponentSpec to the
function or class and register nothing at import time. Components are found by name through the
entry point groups `route.rules`, `route.sources` and `route.deliveries` (the built-ins are declared
in our own pyproject.toml, exactly as a plugin's would be), or by a `package.module:attr` reference.
Names are listed without importing anything; a component is imported when a route uses it, and an
import failure is reported at the route line that uses it.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from .errors import RouteError

KINDS = ("rules", "sources", "deliveries")
GROUPS = {kind: f"route.{kind}" for kind in KINDS}
# The singular word for each kind, in messages ("unknown rule 'x'"), and the marker that declares it.
KIND_WORD = {"rules": "rule", "sources": "source", "deliveries": "delivery"}

Scope = Literal["chunk", "stream", "table"]

EMPTY_SCHEMA: dict = {"type": "object", "additionalProperties": False}


@dataclass(frozen=True)
class ComponentSpec:
    """What a marker declares about a component.

    kind:           "rules", "sources" or "deliveries"
    options_schema: JSON Schema (draft 2020-12) of the component's options, after `shorthand`
    scope:          rules only: "chunk" (a function of one chunk) or "stream" (an iterator of
                    chunks to an iterator of chunks: dedupe, sort, aggregate)
    shorthand:      the option name a bare scalar or list is given to (`trim: [a, b]` is
                    `trim: {columns: [a, b]}` when shorthand is "columns"); None for none
    bind:           optional `bind(options, ctx) -> prepared`, run once when the route is planned
                    (parse expressions, load lookup tables); raises OptionError for bad options.
                    The rule is then called with what bind returned instead of the raw options.
    """

    kind: str
    options_schema: dict = field(default_factory=lambda: dict(EMPTY_SCHEMA))
    scope: Scope = "chunk"
    shorthand: str | None = None
    bind: Callable[..., Any] | None = None


def _marker(kind: str):
    def marker(options_schema: dict | None = None, *, scope: Scope = "chunk",
               shorthand: str | None = None, bind: Callable[..., Any] | None = None):
        spec = ComponentSpec(kind, options_schema if options_schema is not None else dict(EMPTY_SCHEMA),
                             scope, shorthand, bind)

        def tag(target):
            target.__route_spec__ = spec
            return target

        return tag

    return marker


rule = _marker("rules")
rule.__doc__ = """Declare a rule: `@rule(options_schema, scope="chunk"|"stream", shorthand=..., bind=...)`.

A chunk rule is `fn(chunk: DataFrame, options, ctx: StepContext) -> DataFrame`; a stream rule is
`fn(chunks: Iterator[DataFrame], options, ctx) -> Iterator[DataFrame]`. Rules return new frames,
never mutate their input, and reject rows with `ctx.reject(...)` instead of failing the run.
"""
source = _marker("sources")
source.__doc__ = """Declare a source class: `__init__(self, options, ctx)` and `chunks(self) -> Iterator[DataFrame]`."""
delivery = _marker("deliveries")
delivery.__doc__ = """Declare a delivery class: see pipeline.deliveries.base.Delivery for its methods."""


def spec_of(component: Any) -> ComponentSpec | None:
    return getattr(component, "__route_spec__", None)


class PluginLoadError(RouteError):
    """A component could not be found or imported; the planner reports it at the route line."""


@dataclass(frozen=True)
class Entry:
    """A component name as listed (not imported): where it points and which distribution ships it."""

    name: str
    value: str
    distribution: str | None


class Registry:
    """Component names for one run. Build one empty in tests; `Registry.discover()` reads entry points."""

    def __init__(self, entries: dict[str, dict[str, Entry]] | None = None):
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        for kind, names in (entries or {}).items():
            self._entries[kind].update(names)
        self._loaded: dict[tuple[str, str], Any] = {}

    @classmethod
    def discover(cls) -> "Registry":
        entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        for kind, group in GROUPS.items():
            for ep in metadata.entry_points(group=group):
                dist = getattr(ep, "dist", None)
                entries[kind].setdefault(ep.name, Entry(ep.name, ep.value, dist.name if dist else None))
        return cls(entries)

    def add(self, kind: str, name: str, component: Any) -> None:
        """Register an already imported component (tests, embedding)."""
        self._entries[kind][name] = Entry(name, f"<object {component!r}>", None)
        self._loaded[(kind, name)] = component

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def entries(self, kind: str) -> list[Entry]:
        return [self._entries[kind][n] for n in self.names(kind)]

    def knows(self, kind: str, name: str) -> bool:
        return ":" in name or name in self._entries[kind]

    def load(self, kind: str, name: str) -> Any:
        """Import the component called `name` (a registered name or `package.module:attr`)."""
        key = (kind, name)
        if key in self._loaded:
            return self._loaded[key]
        if ":" in name:
            value = name
        elif name in self._entries[kind]:
            value = self._entries[kind][name].value
        else:
            raise PluginLoadError(f"unknown {KIND_WORD[kind]} '{name}'")
        component = load_reference(value)
        spec = spec_of(component)
        if spec is None:
            raise PluginLoadError(
                f"'{value}' is not marked as a route component: decorate it with "
                f"pipeline.plugins.{KIND_WORD[kind]}(...)")
        if spec.kind != kind:
            raise PluginLoadError(f"'{value}' is a {KIND_WORD[spec.kind]} component, not one of {kind}")
        self._loaded[key] = component
        return component


def load_reference(value: str) -> Any:
    """Import `package.module:attr` (attr may be dotted); errors say what failed to import."""
    module_name, _, attr = value.partition(":")
    if not module_name or not attr:
        raise PluginLoadError(f"'{value}' is not a reference of the form package.module:name")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginLoadError(f"cannot import '{module_name}': {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # a plugin whose import raises is the plugin's error, shown to the user
        raise PluginLoadError(f"importing '{module_name}' failed: {type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginLoadError(f"module '{module_name}' has no attribute '{attr}'") from None
    return obj


def distribution_of(kind: str, name: str, registry: Registry) -> str | None:
    entry = registry._entries[kind].get(name)
    return entry.distribution if entry else None

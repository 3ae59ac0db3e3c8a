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
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.basics.errors import RouteError

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
    columns:        rules only: `columns(options, flow)`, the columns the rule reads, adds, drops or
                    renames (see pipeline.basics.columnflow), so that `route validate` catches a
                    misspelt column; None: the columns after this rule are not known
    """

    kind: str
    options_schema: dict = field(default_factory=lambda: dict(EMPTY_SCHEMA))
    scope: Scope = "chunk"
    shorthand: str | None = None
    bind: Callable[..., Any] | None = None
    columns: Callable[..., None] | None = None


def _marker(kind: str):
    def marker(
        options_schema: dict | None = None,
        *,
        scope: Scope = "chunk",
        shorthand: str | None = None,
        bind: Callable[..., Any] | None = None,
        columns: Callable[..., None] | None = None,
    ):
        spec = ComponentSpec(
            kind, options_schema if options_schema is not None else dict(EMPTY_SCHEMA), scope, shorthand, bind, columns
        )

        def tag(target):
            target.__route_spec__ = spec
            return target

        return tag

    return marker


rule = _marker("rules")
rule.__doc__ = """Declare a rule: `@rule(options_schema, scope="chunk"|"stream", shorthand=..., bind=..., columns=...)`.

A chunk rule is `fn(chunk: DataFrame, options, ctx: StepContext) -> DataFrame`; a stream rule is
`fn(chunks: Iterator[DataFrame], options, ctx) -> Iterator[DataFrame]`. Rules return new frames,
never mutate their input, and reject rows with `ctx.reject(...)` instead of failing the run.
`columns=uses(reads=["column"], adds=["into"])` (or a function of the options and a ColumnFlow)
says which columns the rule reads and makes, so a misspelt column is caught before the run.
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
    def discover(cls) -> Registry:
        import importlib.metadata as metadata  # here, not at the top: `route --help` lists no plugins

        entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        listed = metadata.entry_points()  # one scan of the installed packages for every group
        dist_names: dict[int, str] = {}  # a distribution's name reads its METADATA file: once each
        for kind, group in GROUPS.items():
            for ep in listed.select(group=group):
                dist = getattr(ep, "dist", None)
                if dist is not None and id(dist) not in dist_names:
                    dist_names[id(dist)] = dist.name
                entries[kind].setdefault(ep.name, Entry(ep.name, ep.value, dist_names[id(dist)] if dist else None))
        return cls(entries)

    def add(self, kind: str, name: str, component: Any) -> None:
        """Register an already imported component (tests, embedding)."""
        self._entries[kind][name] = Entry(name, f"<object {component!r}>", None)
        self._loaded[(kind, name)] = component

    def entry(self, kind: str, name: str) -> Entry | None:
        """The listed entry called `name`, or None (dotted references are not listed)."""
        return self._entries[kind].get(name)

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
                f"'{value}' is not marked as a route component: decorate it with pipeline.api.{KIND_WORD[kind]}(...)"
            )
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
    entry = registry.entry(kind, name)
    return entry.distribution if entry else None


# How the executor calls each kind of component, checked when a route is planned so that a wrong
# signature is a problem at the route line, not a TypeError at the first chunk. Parameter names are
# what the messages show; only the number of positional arguments is checked.
RULE_CALLS = {"chunk": ("chunk", "options", "ctx"), "stream": ("chunks", "options", "ctx")}
CONSTRUCTOR = ("options", "ctx")
# kind -> (required methods, optional methods), each method -> its parameters after self.
METHODS: dict[str, tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]] = {
    "sources": ({"chunks": ()}, {"columns": (), "close": (), "on_delivered": ()}),
    "deliveries": ({"open": ("columns",), "write": ("chunk",), "close": (), "abort": ("exc",)}, {"prepare_commit": ()}),
}


def signature_problems(component: Any, spec: ComponentSpec | None = None) -> list[str]:
    """What is wrong with how `component` can be called, as sentences; [] when it fits its kind.

    A rule must accept (chunk, options, ctx), or (chunks, options, ctx) for scope "stream"; a source
    or delivery class must accept (options, ctx) and have the methods the executor calls; a `bind`
    must accept (options, ctx)."""
    spec = spec or spec_of(component)
    if spec is None:
        return []
    problems = []
    if spec.kind == "rules":
        params = RULE_CALLS.get(spec.scope, RULE_CALLS["chunk"])
        what = f"a {spec.scope} rule" if spec.scope in RULE_CALLS else "a rule"
        problem = _call_problem(component, params, f"{what} is called as fn({', '.join(params)})")
        problems += [problem] if problem else []
    else:
        word = KIND_WORD[spec.kind]
        problem = _call_problem(component, CONSTRUCTOR, f"a {word} is built as {word.title()}(options, ctx)")
        problems += [problem] if problem else []
        if inspect.isclass(component):
            required, optional = METHODS[spec.kind]
            missing = [m for m in required if not callable(getattr(component, m, None))]
            if missing:
                problems.append(
                    f"it has no {', '.join(m + '()' for m in missing)} method"
                    f"{'s' if len(missing) > 1 else ''}; a {word} needs "
                    + ", ".join(f"{m}({', '.join(p)})" for m, p in required.items())
                )
            for method, params in {**required, **optional}.items():
                problem = _method_problem(component, method, params)
                problems += [problem] if problem else []
    if spec.bind is not None:
        problem = _call_problem(spec.bind, ("options", "ctx"), "bind is called as bind(options, ctx)")
        problems += [problem] if problem else []
    return problems


def _call_problem(fn: Any, params: tuple[str, ...], expected: str) -> str | None:
    """None when `fn` accepts len(params) positional arguments, else a sentence saying so."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check
        return None
    try:
        sig.bind(*params)
    except TypeError:
        return f"{expected}, but {_shown(fn)} takes {_params(sig)}"
    return None


def _method_problem(cls: type, method: str, params: tuple[str, ...]) -> str | None:
    raw = inspect.getattr_static(cls, method, None)
    if raw is None or not inspect.isfunction(raw):  # absent, a property, a static or class method
        return None
    try:
        sig = inspect.signature(raw)
    except (TypeError, ValueError):
        return None
    try:
        sig.bind("self", *params)
    except TypeError:
        after_self = sig.replace(parameters=list(sig.parameters.values())[1:])
        return (
            f"the executor calls {method}({', '.join(params)}), but {cls.__name__}.{method} takes {_params(after_self)}"
        )
    return None


def _shown(fn: Any) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{name}.__init__" if inspect.isclass(fn) else name


def _params(sig: inspect.Signature) -> str:
    """`(chunk, options)`, `(chunk, *, options)`, `(*args)`: names only, annotations left out."""
    shown, star = [], False
    for p in sig.parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            shown.append("*")
        star = star or p.kind in (p.KEYWORD_ONLY, p.VAR_POSITIONAL)
        shown.append({p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name)
    return f"({', '.join(shown)})"

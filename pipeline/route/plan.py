"""Planning a route: load, validate, resolve every component and bind every rule before a row is read.

`route validate` is this plan without the run; `route execute` refuses to start while the plan has
problems. Every problem in the file is collected and reported at once, each at its line.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets as _secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.basics.context import DEFAULT_CHUNK_ROWS, RunContext, RunOptions, StepContext
from pipeline.basics.errors import OptionError, Problem, RouteError, RouteInvalid, suggest
from pipeline.basics.plugins import KIND_WORD, ComponentSpec, PluginLoadError, Registry, signature_problems, spec_of
from pipeline.route.columncheck import Mode, column_problems
from pipeline.route.project import Project, state_dir_for, with_project
from pipeline.route.schemacheck import check, route_schema, shown
from pipeline.route.yamlfile import Document, load_yaml_file


@dataclass
class Component:
    """A resolved source, rule or delivery with its validated (and, for rules, bound) options."""

    kind: str
    name: str
    label: str
    impl: Any
    spec: ComponentSpec
    options: Any
    path: tuple
    line: int
    ctx: StepContext
    raw: Any = None  # the options as written (after shorthand), for the column check
    implied: str | None = None  # the shorthand option a bare value was given to

    @property
    def scope(self) -> str:
        return self.spec.scope


@dataclass
class Target:
    name: str
    when: Any  # a parsed expression or None
    when_text: str | None
    steps: list[Component]
    delivery: Component
    path: tuple
    line: int


@dataclass
class Plan:
    """Everything needed to run a route, checked."""

    doc: Document
    route_file: Path
    name: str
    run: RunContext
    source: Component
    steps: list[Component]
    targets: list[Target]
    max_rejects: int | float | None = None  # a count, or a fraction of rows read when a float
    unrouted: Path | None = None
    schedule: str | None = None
    timezone: str | None = None
    raw: dict = field(default_factory=dict)
    project: Project | None = None  # the folder's defaults.yaml (and profile), when there is one


def new_run_id() -> str:
    """Sortable and unique: UTC time plus a few random characters."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + _secrets.token_hex(3)


def default_state_dir(route_file: Path) -> Path:
    return route_file.parent / ".route"


def build_plan(
    route_file: str | Path,
    *,
    variables: Mapping[str, str],
    registry: Registry,
    state_dir: str | Path | None = None,
    options: RunOptions | None = None,
    run_id: str | None = None,
    project: Project | None = None,
    profile: str | None = None,
    columns: Mode = "lenient",
    offline: bool = False,
) -> Plan:
    """Load and check `route_file`; raise RouteInvalid with every problem found.

    The defaults.yaml beside the route (or `project`) fills what the route leaves out, with `profile`
    applied; problems in those values are reported at defaults.yaml's lines. `columns` says how
    hard the source is asked for its columns for the column check (see pipeline.route.columncheck);
    `offline` leaves out what needs a network."""
    route_path = Path(route_file)
    doc = load_yaml_file(route_path, variables, shown_as=str(route_file))
    problems: list[Problem] = []
    data = doc.data
    if not isinstance(data, dict):
        raise RouteInvalid([doc.problem((), "a route file is a mapping with name, source and targets")])
    doc, project, found = with_project(doc, route_path, variables, project=project, profile=profile)
    problems += found
    data = doc.data
    max_rejects, wrong = _max_rejects(doc, data)
    # The schema's own message for a wrong max_rejects names only one of its two forms.
    problems += [p for p in check(doc, data, route_schema()) if not (wrong and p.path == _MAX_REJECTS)] + wrong
    state = state_dir_for(route_path, state_dir, project, data)
    options = options or RunOptions()
    run = RunContext(
        route_name=str(data.get("name") or route_path.stem),
        route_file=route_path.resolve(),
        state_dir=state,
        run_id=run_id or new_run_id(),
        options=options,
        secrets=set(doc.secrets),
    )
    chunk_rows = options.chunk_rows or data.get("chunk_rows") or DEFAULT_CHUNK_ROWS
    run.chunk_rows = int(chunk_rows) if isinstance(chunk_rows, int) and chunk_rows > 0 else DEFAULT_CHUNK_ROWS
    binder = Binder(doc, registry, run, problems)

    source = binder.component("sources", data.get("source"), ("source",), stage="source")
    steps = binder.steps(data.get("source_transforms"), ("source_transforms",), stage="source_transforms")
    targets = []
    names_seen: dict[str, int] = {}
    for i, t in enumerate(data.get("targets") or []):
        if not isinstance(t, dict):
            continue
        path = ("targets", i)
        name = str(t.get("name") or f"target{i + 1}")
        if name in names_seen:
            problems.append(
                doc.problem(
                    path + ("name",), f"target name '{name}' is used twice (first at targets[{names_seen[name]}])"
                )
            )
        names_seen[name] = i
        when = binder.expression(t.get("when"), path + ("when",))
        tsteps = binder.steps(
            t.get("target_transforms"), path + ("target_transforms",), stage="target_transforms", target=name
        )
        delivery = binder.component("deliveries", t.get("deliver"), path + ("deliver",), stage="deliver", target=name)
        targets.append(Target(name, when, t.get("when"), tsteps, delivery, path, doc.mark(path)[0]))

    unrouted = None
    if isinstance(data.get("routing"), dict) and isinstance(data["routing"].get("unrouted"), str):
        unrouted = run.resolve_path(data["routing"]["unrouted"])
    if not problems:
        problems += column_problems(doc, source, steps, targets, mode=columns, offline=offline)
    if problems:
        raise RouteInvalid(problems)
    return Plan(
        doc,
        route_path,
        run.route_name,
        run,
        source,
        steps,
        targets,
        max_rejects,
        unrouted,
        data.get("schedule"),
        data.get("timezone"),
        data,
        project,
    )


_MAX_REJECTS = "on_error.max_rejects"
_PERCENT = re.compile(r"[0-9]+(\.[0-9]+)?%")


def _max_rejects(doc: Document, data: dict) -> tuple[int | float | None, list[Problem]]:
    """on_error.max_rejects as a count (int) or a share of the rows read (float), or the problem
    with it, naming both forms it may take."""
    on_error = data.get("on_error")
    if not isinstance(on_error, dict) or "max_rejects" not in on_error:
        return None, []
    raw = on_error["max_rejects"]
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw, []
    if isinstance(raw, str) and _PERCENT.fullmatch(raw):
        return float(raw[:-1]) / 100.0, []
    message = (
        f"expected a number of rejected rows such as 100, or a percentage of the rows read "
        f'such as "5%" (quoted), got {shown(raw)}'
    )
    return None, [doc.problem(("on_error", "max_rejects"), message)]


class Binder:
    """Resolves components by name, validates their options and binds rules, collecting problems."""

    def __init__(self, doc: Document, registry: Registry, run: RunContext, problems: list[Problem]):
        self.doc, self.registry, self.run, self.problems = doc, registry, run, problems

    def steps(self, items, path: tuple, stage: str, target: str | None = None) -> list[Component]:
        out = []
        for i, item in enumerate(items or []):
            step = self.component("rules", item, path + (i,), stage=stage, target=target)
            if step is not None:
                out.append(step)
        return out

    def component(self, kind: str, item, path: tuple, stage: str, target: str | None = None) -> Component | None:
        doc = self.doc
        word = KIND_WORD[kind]
        if not isinstance(item, dict):
            return None  # the route schema has reported it
        keys = [k for k in item if k != "label"]
        if len(keys) != 1:
            if not keys:
                self.problems.append(doc.problem(path, f"a {word} needs its kind as a key, e.g. {_example(kind)}"))
            else:
                self.problems.append(
                    doc.problem(
                        path + (keys[1],),
                        f"a {word} is a one-key mapping, but this one has "
                        f"{len(keys)} keys ({', '.join(map(str, keys))}); start a new list item with '-' for each {word}",
                        at_key=True,
                    )
                )
            return None
        name = str(keys[0])
        label = str(item.get("label") or name)
        opath = path + (keys[0],)
        line = doc.key_mark(opath)[0]
        if not self.registry.knows(kind, name):
            self.problems.append(
                doc.problem(
                    opath,
                    f"unknown {word} '{name}'{suggest(name, self.registry.names(kind))} (`route rules` lists the rules)"
                    if kind == "rules"
                    else f"unknown {word} '{name}'{suggest(name, self.registry.names(kind))}",
                    at_key=True,
                )
            )
            return None
        try:
            impl = self.registry.load(kind, name)
        except PluginLoadError as exc:
            self.problems.append(doc.problem(opath, f"{word} '{name}' cannot be used: {exc}", at_key=True))
            return None
        spec = spec_of(impl)
        wrong = signature_problems(impl, spec)
        if wrong:
            self.problems.append(doc.problem(opath, f"{word} '{name}' cannot be used: {'; '.join(wrong)}", at_key=True))
            return None
        options = item[keys[0]]
        implied = None
        if spec.shorthand and not isinstance(options, dict):
            options, implied = {spec.shorthand: options}, spec.shorthand
        elif options is None:
            options = {}
        raw = options
        found = check(doc, options, spec.options_schema, opath, implied)
        ctx = StepContext(run=self.run, stage=stage, step=label, line=line, target=target)
        if found:
            self.problems.extend(found)
            return None
        if spec.bind is not None:
            try:
                options = spec.bind(options, ctx)
            except OptionError as exc:
                sub = exc.path
                if implied and sub[:1] == (implied,):
                    sub = sub[1:]
                self.problems.append(doc.problem(opath + tuple(sub), str(exc), offset=exc.offset))
                return None
            except RouteError as exc:
                self.problems.append(doc.problem(opath, str(exc)))
                return None
        return Component(kind, name, label, impl, spec, options, opath, line, ctx, raw, implied)

    def expression(self, text, path: tuple):
        if text is None:
            return None
        from pipeline.expressions import ExpressionError, parse

        try:
            return parse(str(text), condition=True)
        except ExpressionError as exc:
            self.problems.append(self.doc.problem(path, f"{exc.message}", offset=exc.position))
            return None


def _example(kind: str) -> str:
    return {
        "rules": "`- trim: [town]`",
        "sources": "`csv: {path: data.csv}`",
        "deliveries": "`csv: {path: out/rows.csv}`",
    }[kind]

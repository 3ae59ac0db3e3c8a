"""`route test`: run a route on fixture inputs and compare what each target would receive with files.

Beside `payroll.yaml`, a folder `payroll.tests/` holds one folder per case:

    payroll.tests/basic/
      case.yaml                 optional: description, set, source or source_options, ordered, chunk_rows
      inputs/payroll.csv        the fixture read instead of the route's source file
      expected/published.csv    what target `published` would receive (.csv or .jsonl)
      expected/rejects.csv      the rows rejected (absent: none may be rejected)
      expected/unrouted.csv     the rows no target took (absent: every row must be routed)
      expected/error.txt        instead of the above: the run must fail with this text

The real plan runs with every delivery replaced by a capture, in a throw-away state folder, so no
portal, database or file is touched. See docs/testing-routes.md.
"""

# Longer than 400 lines because it runs a case end to end (plan, capture, compare, update) and
# prints the results; comparing frames lives in diff.py.

from __future__ import annotations

import csv
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import click

from pipeline.basics.context import RunOptions
from pipeline.basics.errors import EXIT_FAILED, EXIT_INVALID, EXIT_OK, Problem, RouteInvalid
from pipeline.basics.plugins import Registry
from pipeline.basics.rejects import FIELDS as REJECT_FIELDS
from pipeline.commands.test.diff import Table, align, compare, from_frames, read_expected, write_expected
from pipeline.deliveries.capture import UNROUTED
from pipeline.engine.executor import Executor
from pipeline.route.plan import Binder, Component, Plan, build_plan
from pipeline.route.schemacheck import check
from pipeline.route.yamlfile import load_yaml_file

REJECT_COLUMNS = ["line", "step", "target", "column", "value", "reason"]
PLACEHOLDER = "route-test-placeholder"
_UNSET = re.compile(r"variable \$\{(\w+)\} is not set")

CASE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "not": {"required": ["source", "source_options"]},
    "properties": {
        "description": {"type": "string"},
        "set": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
            "description": "values of ${NAME} variables for this case",
        },
        "source": {
            "type": "object",
            "minProperties": 1,
            "description": "a source replacing the route's own, e.g. {csv: {path: inputs/rows.csv}}",
        },
        "source_options": {"type": "object", "description": "options merged into the route's source options"},
        "ordered": {"type": "boolean", "default": True, "description": "false: row order is not compared"},
        "chunk_rows": {"type": "integer", "minimum": 1},
    },
}


@dataclass
class Outcome:
    """One case's result: status is ok, FAIL, INVALID or updated; lines say why."""

    name: str
    status: str
    lines: list[str] = field(default_factory=list)


def find_cases(paths: tuple[str, ...]) -> list[tuple[Path, list[Path]]]:
    """(route file, case folders) for each ROUTE, ROUTE.tests/CASE folder, or folder searched for routes."""
    found: dict[Path, list[Path]] = {}
    for p in map(Path, paths):
        if p.is_dir() and p.parent.name.endswith(".tests"):
            found.setdefault(_route_of(p.parent), []).append(p)
        elif p.is_dir() and p.name.endswith(".tests"):
            found.setdefault(_route_of(p), []).extend(_cases_in(p))
        elif p.is_dir():
            tests = sorted(q for q in p.rglob("*.tests") if q.is_dir() and not _hidden(q, p))
            if not tests:
                raise RouteInvalid(
                    f"error: {p}: no route tests in this folder (a route ROUTE.yaml has its "
                    f"cases in ROUTE.tests/; see docs/testing-routes.md)"
                )
            for t in tests:
                found.setdefault(_route_of(t), []).extend(_cases_in(t))
        elif p.is_file():
            folder = p.with_name(p.stem + ".tests")
            if not folder.is_dir():
                raise RouteInvalid(
                    f"error: {p}: no test cases; create {folder}/<case>/ with inputs/ and "
                    f"expected/ (see docs/testing-routes.md)"
                )
            found.setdefault(p, []).extend(_cases_in(folder))
        else:
            raise RouteInvalid(f"error: {p}: no such file or folder")
    return [(route, cases) for route, cases in found.items()]


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _route_of(tests: Path) -> Path:
    stem = tests.name[: -len(".tests")]
    for suffix in (".yaml", ".yml"):
        if (tests.parent / (stem + suffix)).is_file():
            return tests.parent / (stem + suffix)
    raise RouteInvalid(f"error: {tests}: there is no route {stem}.yaml beside this folder")


def _cases_in(tests: Path) -> list[Path]:
    cases = sorted(q for q in tests.iterdir() if q.is_dir() and not q.name.startswith("."))
    if not cases:
        raise RouteInvalid(f"error: {tests}: no cases; each case is a folder with inputs/ and expected/")
    return cases


class Case:
    """One case folder, its case.yaml, and the route's plan rewired to read its inputs."""

    def __init__(self, route: Path, folder: Path, sets: dict[str, str], registry: Registry):
        self.route, self.folder, self.registry = route, folder, registry
        self.expected = folder / "expected"
        spec_file = folder / "case.yaml"
        variables = {**os.environ, **sets}
        self.doc = load_yaml_file(spec_file, variables) if spec_file.is_file() else None
        self.spec = (self.doc.data if self.doc else None) or {}
        if self.doc is not None:
            problems = (
                check(self.doc, self.spec, CASE_SCHEMA)
                if isinstance(self.spec, dict)
                else [self.doc.problem((), "case.yaml is a mapping (description, set, source_options, ...)")]
            )
            if problems:
                raise RouteInvalid(problems)
        self.variables = {**os.environ, **{k: str(v) for k, v in (self.spec.get("set") or {}).items()}, **sets}
        self.ordered = self.spec.get("ordered", True)

    def plan(self, state_dir: Path) -> Plan:
        options = RunOptions(dry_run=True, test=True, chunk_rows=self.spec.get("chunk_rows"))
        try:
            plan = build_plan(
                self.route,
                variables=self.variables,
                registry=self.registry,
                state_dir=state_dir,
                options=options,
                columns="off",  # the case reads its own inputs, not the route's file
            )
        except RouteInvalid as exc:
            names = _unused_variables(exc, whole_source="source" in self.spec)
            if not names:
                raise
            # nothing is delivered and the source is the case's, so what only they use need not be set
            plan = build_plan(
                self.route,
                variables={**self.variables, **{n: PLACEHOLDER for n in names}},
                registry=self.registry,
                state_dir=state_dir,
                options=options,
                columns="off",
            )
        plan.source = self._source(plan)
        return plan

    def _source(self, plan: Plan) -> Component:
        route_source = {k: v for k, v in (plan.raw.get("source") or {}).items() if k != "label"}
        kind = next(iter(route_source))
        if "source" in self.spec:
            doc, path, item = self.doc, ("source",), {k: v for k, v in self.spec["source"].items()}
        else:
            own = route_source[kind] if isinstance(route_source[kind], dict) else {}
            if "source_options" in self.spec:
                doc, path, override = self.doc, ("source_options",), dict(self.spec["source_options"])
            else:
                doc, path, override = plan.doc, ("source",), {}
            if "path" not in override:  # never the route's own data: the case's inputs/
                override["path"] = self._default_input(kind, own)
            item = {kind: {**own, **override}}
        for options in item.values():
            if isinstance(options, dict) and isinstance(options.get("path"), str):
                options["path"] = self._relative(options["path"])
        problems: list[Problem] = []
        comp = Binder(doc, self.registry, plan.run, problems).component("sources", item, path, stage="source")
        if path == ("source_options",):  # the kind is the route's, not written in case.yaml
            problems = [
                replace(p, path=p.path.replace(f"source_options.{kind}", "source_options", 1)) for p in problems
            ]
        if problems or comp is None:
            raise RouteInvalid(problems or f"error: {self.folder}/case.yaml: `source` needs one source kind")
        comp.line = comp.ctx.line = plan.source.line  # run errors name the route file, at its source
        return comp

    def _default_input(self, kind: str, own: dict) -> str:
        inputs = self.folder / "inputs"
        if not isinstance(own.get("path"), str):
            raise RouteInvalid(
                f"error: {self.folder}: the route's {kind} source reads no file; say what this case "
                f"reads in case.yaml, e.g. `source: {{csv: {{path: inputs/rows.csv}}}}`"
            )
        name = Path(own["path"]).name
        files = sorted(q for q in inputs.iterdir() if q.is_file()) if inputs.is_dir() else []
        if (inputs / name).exists() or (any(ch in name for ch in "*?[") and list(inputs.glob(name))):
            return str(Path("inputs") / name)
        if len(files) == 1:
            return str(files[0].relative_to(self.folder))
        raise RouteInvalid(
            f"error: {self.folder}: put the fixture in inputs/{name}, or say which file to read in "
            f"case.yaml (`source_options: {{path: inputs/...}}`)"
        )

    def _relative(self, path: str) -> str:
        """A path of the case, as the route would name it (so messages and file columns are stable)."""
        p = Path(path).expanduser()
        return str(p) if p.is_absolute() else os.path.relpath(self.folder / p, self.route.parent)


def _unused_variables(exc: RouteInvalid, whole_source: bool) -> set[str]:
    """Unset variables that a test does not use: in deliveries, in the source's path (the case
    gives its own), or anywhere in the source when the case replaces it. Others must be set."""
    where: dict[str, bool] = {}
    for p in exc.problems:
        m = _UNSET.search(p.message)
        if m is None:
            continue
        unused = (p.path.startswith("targets[") and ".deliver" in p.path) or (
            p.path.startswith("source.") and (whole_source or p.path.endswith(".path"))
        )
        where[m.group(1)] = where.get(m.group(1), True) and unused
    return {n for n, ok in where.items() if ok}


def run_case(route: Path, folder: Path, *, sets: dict[str, str], registry: Registry, update: bool) -> Outcome:
    """Plan and run one case with its deliveries captured, then compare (or, with update, rewrite)."""
    try:
        case = Case(route, folder, sets, registry)
        with tempfile.TemporaryDirectory(prefix="route-test-") as state:
            plan = case.plan(Path(state))
            captured: dict = {}
            report = Executor(plan, capture=captured).execute()
            error = _normalise(report.error, case, Path(state)) if report.error else ""
            actual = {t.name: from_frames(captured.get(t.name, [])) for t in plan.targets}
            actual["rejects"] = _rejects(report.rejects_file)
            actual["unrouted"] = from_frames(captured.get(UNROUTED, []))
        return _Judge(case, update).judge(plan, actual, error)
    except RouteInvalid as exc:
        return Outcome(folder.name, "INVALID", str(exc).splitlines())


def _normalise(message: str, case: Case, state: Path) -> str:
    """A run's error without the paths that change from one machine or run to the next."""
    message = message.replace(str(state), "<state>").replace(str(case.route), case.route.name)
    return message.replace(str(case.route.resolve().parent) + os.sep, "")


def _rejects(path: str) -> Table:
    """The run's rejects file as a table of REJECT_FIELDS, in source line order."""
    rows = []
    if path:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [tuple(r[c] or None for c in REJECT_FIELDS) for r in csv.DictReader(f)]
    at = REJECT_FIELDS.index("line")
    rows.sort(key=lambda r: (int(r[at]) if (r[at] or "").isdigit() else 0, tuple(v or "" for v in r)))
    return Table(list(REJECT_FIELDS), rows)


class _Judge:
    """Compares one case's actual tables with its expected/ files, or rewrites them (--update)."""

    def __init__(self, case: Case, update: bool):
        self.case, self.update = case, update
        self.fail: list[str] = []
        self.wrote: list[str] = []

    def judge(self, plan: Plan, actual: dict[str, Table], error: str) -> Outcome:
        files = self._expected_files([t.name for t in plan.targets])
        error_file = self.case.expected / "error.txt"
        if error:
            want = error_file.read_text(encoding="utf-8").strip() if error_file.is_file() else None
            if want is not None and want in error:
                return self._outcome()
            if self.update:
                self._write_text(error_file, error + "\n")
            else:
                self.fail.append(
                    f"the run failed: {error}"
                    if want is None
                    else f"the run failed, but not as expected/error.txt says:\n  expected: {want}\n  got:      {error}"
                )
            return self._outcome()
        if error_file.is_file():
            if self.update:
                error_file.unlink()
                self.wrote.append("removed expected/error.txt")
            else:
                self.fail.append(
                    f"expected the run to fail with: {error_file.read_text(encoding='utf-8').strip()}; it succeeded"
                )
                return self._outcome()
        for t in plan.targets:
            self._table(f"target {t.name}", t.name, files.get(t.name), actual[t.name], required=True)
        self._table("rejects", "rejects", files.get("rejects"), actual["rejects"], required=False)
        self._table("unrouted rows", "unrouted", files.get("unrouted"), actual["unrouted"], required=False)
        return self._outcome()

    def _outcome(self) -> Outcome:
        if self.fail:
            return Outcome(self.case.folder.name, "FAIL", self.fail)
        return Outcome(self.case.folder.name, "updated" if self.wrote else "ok", self.wrote)

    def _expected_files(self, targets: list[str]) -> dict[str, Path]:
        clash = {"rejects", "unrouted"} & set(targets)
        if clash:
            raise RouteInvalid(
                f"error: {self.case.route}: a target named '{clash.pop()}' cannot be tested: "
                f"expected/{'rejects' if 'rejects' in targets else 'unrouted'}.csv holds that "
                f"case's rejected or unrouted rows; rename the target"
            )
        files: dict[str, Path] = {}
        folder = self.case.expected
        for f in sorted(folder.iterdir()) if folder.is_dir() else []:
            if f.name == "error.txt" or f.name.startswith(".") or not f.is_file():
                continue
            known = targets + ["rejects", "unrouted"]
            if f.suffix not in (".csv", ".jsonl") or f.stem not in known:
                raise RouteInvalid(
                    f"error: {f}: not an expected file of this route; name it <target>.csv or "
                    f"<target>.jsonl for a target ({', '.join(targets)}), rejects.csv or unrouted.csv"
                )
            if f.stem in files:
                raise RouteInvalid(f"error: {folder}: both {files[f.stem].name} and {f.name}; keep one")
            files[f.stem] = f
        return files

    def _table(self, what: str, key: str, path: Path | None, actual: Table, required: bool) -> None:
        shown = f"expected/{path.name}" if path else f"expected/{key}.csv"
        if key == "rejects":
            actual = self._reject_columns(actual, path)
        if path is None:
            if not actual.rows and not required:
                return
            if self.update:
                self._write(self.case.expected / f"{key}.csv", actual)
            elif required:
                self.fail.append(f"{what}: no expected file; create {shown} (`route test --update` writes it)")
            else:
                n = len(actual.rows)
                self.fail.append(f"{what}: {n} row{'s' if n != 1 else ''}, but there is no {shown} (absent means none)")
                self.fail += ["  " + line for line in compare(Table(actual.columns, []), actual)[1:]]
            return
        csv_like = path.suffix == ".csv"
        expected = align(read_expected(path), actual, csv_like)
        diffs = compare(expected, actual, ordered=self.case.ordered and key != "rejects", csv_like=csv_like)
        if not diffs:
            return
        if not self.update:
            self.fail.append(f"{what} ({shown}):")
            self.fail += ["  " + line for line in diffs]
        elif not actual.rows and not required:
            path.unlink()
            self.wrote.append(f"removed {shown}")
        else:
            self._write(path, actual)

    def _reject_columns(self, actual: Table, path: Path | None) -> Table:
        """The reject fields the expected file names (default: line, step, target, column, value, reason)."""
        columns = REJECT_COLUMNS
        if path is not None:
            columns = read_expected(path).columns
            unknown = [c for c in columns if c not in REJECT_FIELDS]
            if unknown:
                raise RouteInvalid(
                    f"error: {path}: unknown column '{unknown[0]}'; a rejects file has {', '.join(REJECT_FIELDS)}"
                )
        index = [actual.columns.index(c) for c in columns]
        return Table(list(columns), [tuple(r[i] for i in index) for r in actual.rows])

    def _write(self, path: Path, table: Table) -> None:
        write_expected(path, table)
        self.wrote.append(f"wrote expected/{path.name}")

    def _write_text(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.wrote.append(f"wrote expected/{path.name}")


@click.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--update", is_flag=True, help="Rewrite the expected files that differ from what the route gives.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Set a ${NAME} variable (repeatable).")
def test_command(paths, update, sets):
    """Run routes on their test cases (ROUTE.tests/<case>/) and compare each target's rows with expected/.

    PATHS are route files, case folders, or folders searched for routes with tests. Nothing is
    delivered. Exit code 0: every case passed; 1: a case failed; 2: a case or route is invalid.
    """
    from pipeline.commands.common import parse_sets

    try:
        variables = parse_sets(sets)
        routes = find_cases(paths)
    except RouteInvalid as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_INVALID) from None
    registry = Registry.discover()
    counts = {"ok": 0, "updated": 0, "FAIL": 0, "INVALID": 0}
    for route, cases in routes:
        click.echo(str(route))
        for folder in cases:
            outcome = run_case(route, folder, sets=variables, registry=registry, update=update)
            counts[outcome.status] += 1
            detail = f": {', '.join(outcome.lines)}" if outcome.status == "updated" else ""
            click.echo(f"  {outcome.status:<8} {outcome.name}{detail}")
            if outcome.status in ("FAIL", "INVALID"):
                for line in outcome.lines:
                    click.echo("           " + line.replace("\n", "\n           "))
    total = sum(counts.values())
    parts = [f"{counts['ok']} passed"] + [
        f"{n} {word}"
        for n, word in ((counts["updated"], "updated"), (counts["FAIL"], "failed"), (counts["INVALID"], "invalid"))
        if n
    ]
    click.echo(f"{total} case{'s' if total != 1 else ''}: {', '.join(parts)}")
    raise SystemExit(EXIT_INVALID if counts["INVALID"] else EXIT_FAILED if counts["FAIL"] else EXIT_OK)

"""`route init`: write a commented route file for a CSV or Excel file, ready to review and run.

Given only the file, the route reads it, suggests a `cast` from a sample (every suggestion carries
a comment saying what was seen, for the publisher to review) and delivers JSON Lines under out/.
Given a dataset (`--dataset 4x4 --domain ...`), it renames the file's columns to the dataset's
field names (matched by normalised name), casts them to the dataset's column types and delivers
to the dataset with its row identifier: what Socrata's "Automate This" gives socrata-py users.
The file written always validates and runs as it stands. Its first line points editors at the
complete route schema, written to `.route/route.schema.json` beside it (see docs/editors.md), and
what the sample showed that a newcomer must know (rows left out, placeholders for a missing value,
types declined) is printed as well as written into the route's comments.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import click

from pipeline.basics.errors import RouteError, RouteInvalid
from pipeline.commands.init.dataset import dataset_cast, dataset_target, fetch_dataset, match_columns, type_word
from pipeline.commands.init.markers import describe
from pipeline.commands.init.report import header_lines, report_lines
from pipeline.commands.init.sample import Sample, read_sample
from pipeline.commands.init.suggestions import Suggestion, suggest
from pipeline.commands.init.yamltext import commented, flow, scalar
from pipeline.commands.schema import PROJECT_SCHEMA, build, write_schema


def render(
    sample: Sample,
    suggestions: list[Suggestion],
    *,
    name: str,
    origin: str,
    route_file: Path,
    dataset=None,
    domain: str | None = None,
    schema: str | None = None,
) -> str:
    """The route file's text; `schema` is the editor schema's path relative to the route file."""
    out = [f"# yaml-language-server: $schema={schema}"] if schema else []
    out += header_lines(sample, origin, route_file.name, dt.date.today())
    out += [
        f"name: {scalar(name)}",
        f"description: {scalar(f'Rows of {Path(origin).name}' + (f', published to {dataset.name}' if dataset else '') + '.')}",
        "",
        "source:",
        f"  {sample.kind}:",
    ]
    for key, value in sample.options.items():
        relative = key == "path" and not Path(str(value)).is_absolute()
        note = "relative to this file" if relative else sample.notes.get(key, "")
        out.append(commented(f"    {key}: {flow(value)}", note))
    out.append("")
    matched = match_columns(sample.columns, dataset) if dataset else {}
    casts, notes = [], []
    for s in suggestions:
        if dataset is None:
            cast, note = s.cast, s.note
        elif s.column in matched:
            col = matched[s.column]
            cast = dataset_cast(s, col.type)
            note = f"-> {col.field} ({type_word(col.type)}); sample: {s.note}"
        else:
            cast, note = None, f"not in the dataset, dropped below; sample: {s.note}"
        (casts if cast is not None else notes).append((s.column, cast, note))
    out += _cast_step(casts, notes, dataset, _placeholders(sample))
    out += ["", "targets:"]
    out += dataset_target(sample, matched, dataset, domain) if dataset else _file_target(sample, name)
    return "\n".join(out) + "\n"


def _placeholders(sample: Sample) -> list[str]:
    """For a workbook: a `replace` that makes the placeholders found null (before the cast). A CSV
    file gets `null_values` in its source options instead (see sample.read_sample)."""
    if sample.kind == "csv" or not sample.markers:
        return []
    columns: dict[str, dict] = {}
    for marker in sample.markers:
        for column in marker.lines:
            columns.setdefault(column, {})[marker.value] = None
    lines = [
        "  # REVIEW: placeholders for a missing value, made null before the cast: " + describe(sample.markers),
        "  - replace:",
    ]
    return lines + [f"      {scalar(c)}: {flow(values)}" for c, values in columns.items()]


def _cast_step(casts: list, notes: list, dataset, before: list[str] | None = None) -> list[str]:
    before = before or []
    why = (
        "# Types of the dataset's columns; formats and separators from the sample (REVIEW them)."
        if dataset
        else "# Types suggested from the sample: REVIEW each one; delete a line to keep that column as text."
    )
    head = [why, "# A value that does not convert is rejected (with its line, in the rejects file), never guessed."]
    if not casts and not before:
        return (
            head[:1]
            + ["source_transforms: []   # every column stays text:"]
            + [f"#   {scalar(c)}: {n}" for c, _, n in notes]
        )
    lines = ["source_transforms:"] + before
    if not casts:
        return lines + ["  # every column stays text:"] + [f"  #   {scalar(c)}: {n}" for c, _, n in notes]
    lines += ["  " + h for h in head] + ["  - cast:"]
    body = [f"      {scalar(c)}: {flow(cast)}" for c, cast, _ in casts]
    width = min(max(len(b) for b in body) + 2, 72)
    lines += [commented(b, n, width) for b, (_, _, n) in zip(body, casts)]
    lines += [f"      # {scalar(c)}: {n}" for c, _, n in notes]
    return lines


def _file_target(sample: Sample, name: str) -> list[str]:
    lines = [
        "  - name: out",
        "    target_transforms:",
        commented("      - select:", "the columns delivered, in this order; delete a line to drop one"),
    ]
    lines += [f"          - {scalar(c)}" for c in sample.columns]
    lines += ["    deliver:", f"      jsonl: {{path: out/{name}.jsonl}}"]
    return lines


def _editor_schema(route_file: Path) -> str | None:
    """Write the route schema for the components installed here into .route/ beside the route, and
    return its path as the route's modeline names it (relative to the route file); None when it
    cannot be written (the route is still written, without the modeline)."""
    try:
        write_schema(route_file.parent / PROJECT_SCHEMA, build())
    except OSError:
        return None
    return PROJECT_SCHEMA.as_posix()


def _route_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-._")
    return name if name and name[0].isalnum() else "route"


@click.command("init")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(dir_okay=False),
    help="The CSV (or TSV, ...) or Excel file the route reads.",
)
@click.option("--dataset", help="The dataset (4x4 id) the route publishes to.")
@click.option("--domain", help="Its portal, https://data.example.gov, or `local` (the default).")
@click.option("--out", type=click.Path(dir_okay=False), help="The route file to write (default: NAME.yaml here).")
@click.option("--name", help="The route's name (default: from the file's name).")
@click.option("--sheet", help="Excel: the sheet, by name or number (default: the first).")
@click.option(
    "--sample", default=10_000, show_default=True, type=click.IntRange(min=1), help="Rows read to suggest types."
)
@click.option(
    "--state",
    type=click.Path(file_okay=False),
    help="State folder of the local portal (default: .route beside the route).",
)
@click.option("--force", is_flag=True, help="Overwrite the route file if it exists.")
def init_command(source, dataset, domain, out, name, sheet, sample, state, force):
    """Write a commented route file for a CSV or Excel file (and a dataset to publish it to)."""
    try:
        path = Path(source)
        if not path.is_file():
            raise RouteInvalid(f"error: --from {source}: no such file")
        if name and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name):
            raise RouteInvalid(
                f"error: --name {name!r}: a route name is letters, digits, _ . and -, starting with a letter or digit"
            )
        name = name or _route_name(path.stem)
        route_file = Path(out) if out else Path(f"{name}.yaml")
        if route_file.exists() and not force:
            raise RouteInvalid(f"error: {route_file} exists; choose another --out, or --force to overwrite it")
        if domain and not dataset:
            raise RouteInvalid("error: --domain goes with --dataset (the dataset to publish to)")
        route_file.parent.mkdir(parents=True, exist_ok=True)
        found = None
        if dataset:
            found, domain = fetch_dataset(domain, dataset, route_file, Path(state) if state else None)
        rows = read_sample(path, route_file, sample, sheet)
        suggestions = suggest(rows.frame)
        schema = _editor_schema(route_file)
        text = render(
            rows,
            suggestions,
            name=name,
            origin=source,
            route_file=route_file,
            dataset=found,
            domain=domain,
            schema=schema,
        )
        route_file.write_text(text, encoding="utf-8")
    except RouteError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(exc.exit_code) from None
    for line in report_lines(rows, suggestions, source):
        click.echo(line)
    if schema:
        click.echo(f"editors: its first line points at {schema}, the route schema (docs/editors.md)")
    click.echo(
        f"wrote {route_file}: {len(rows.columns)} column{'' if len(rows.columns) == 1 else 's'}"
        + (f", {len(match_columns(rows.columns, found))} of them matched to dataset {found.id}" if found else "")
        + f". Review it, then: route validate {route_file}"
    )

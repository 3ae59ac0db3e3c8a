"""`route init`: write a commented route file for a CSV or Excel file, ready to review and run.

Given only the file, the route reads it, suggests a `cast` from a sample (every suggestion carries
a comment saying what was seen, for the publisher to review) and delivers JSON Lines under out/.
Given a dataset (`--dataset 4x4 --domain ...`), it renames the file's columns to the dataset's
field names (matched by normalised name), casts them to the dataset's column types and delivers
to the dataset with its row identifier: what Socrata's "Automate This" gives socrata-py users.
The file written always validates and runs as it stands.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import click

from pipeline.basics.errors import RouteError, RouteInvalid, RunFailed
from pipeline.commands.init.sample import Sample, Suggestion, read_sample, suggest

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
COMMENT_AT = 44  # column of trailing comments


def fetch_dataset(domain: str | None, dataset: str, route_file: Path, state: Path | None):
    """The dataset (columns, row identifier) as the Socrata client reads it (GET /api/views/{4x4}),
    and its domain as the route should write it."""
    from pipeline.route.project import load_project, state_dir_for
    from pipeline.socrata import local
    from pipeline.socrata.http import normalise_domain
    from pipeline.socrata.views import FOURFOUR

    if not FOURFOUR.match(dataset):
        raise RouteInvalid(
            f"error: --dataset {dataset!r} is not a dataset id: it has the form abcd-1234, as in the dataset's URL"
        )
    if local.is_local(domain):
        from pipeline.basics.context import RunContext

        # the portal the route will use: --state, else the project's (defaults.yaml), else .route beside it
        project = load_project(route_file.resolve().parent, os.environ)
        run = RunContext(
            route_name="init",
            route_file=route_file.resolve(),
            run_id="init",
            state_dir=state_dir_for(route_file, state, project),
        )
        url, auth = local.acquire(run, None)
        try:
            return _read(url, dataset, auth, f"the local portal ({run.state_dir / 'portal.sqlite'})"), "local"
        finally:
            local.release(run)
    try:
        url = normalise_domain(domain)
    except ValueError as exc:
        raise RouteInvalid(f"error: --domain: {exc}") from None
    user, password = os.environ.get("SOCRATA_USERNAME"), os.environ.get("SOCRATA_PASSWORD")
    auth = {"username": user, "password": password} if user and password else {}
    return _read(url, dataset, auth, url), url


def _read(url: str, dataset: str, auth: dict, where: str):
    """The dataset through the client's read (views.read_dataset), its failures in init's words."""
    from pipeline.socrata.errors import SocrataError
    from pipeline.socrata.http import SocrataSession
    from pipeline.socrata.views import read_dataset

    http = SocrataSession(url, auth=auth, timeout=30.0, retries=2, label=where)
    try:
        return read_dataset(http, dataset)
    except SocrataError as exc:
        if exc.status == 404:
            raise RouteInvalid(f"error: there is no dataset {dataset} on {where}") from None
        if exc.status in (401, 403):
            raise RouteInvalid(
                f"error: {where} refused to show dataset {dataset} ({exc.status}): for a "
                f"private dataset, export SOCRATA_USERNAME and SOCRATA_PASSWORD"
            ) from None
        raise RunFailed(f"error: {exc}") from None
    finally:
        http.close()


def match_columns(columns: list[str], dataset) -> dict:
    """Source column -> dataset Column, by field name, display name, or either spelt as a field name."""
    from pipeline.socrata.views import field_name

    by_field, by_name = dataset.by_field(), dataset.by_name()
    by_spelling = {field_name(c.name): c for c in reversed(dataset.columns)}
    out, taken = {}, set()
    for column in columns:
        col = (
            by_field.get(column)
            or by_name.get(column)
            or by_field.get(field_name(column))
            or by_spelling.get(field_name(column))
        )
        if col is not None and col.field not in taken:
            out[column] = col
            taken.add(col.field)
    return out


def dataset_cast(suggestion: Suggestion, socrata_type: str):
    """The cast a column needs to go to a dataset column of `socrata_type` (None: none)."""
    from pipeline.socrata.wire import accepts
    from transforms.types import APPLIES

    shaped = suggestion.cast if isinstance(suggestion.cast, dict) else {}
    want = {
        "number": "number",
        "money": "number",
        "double": "number",
        "checkbox": "boolean",
        "calendar_date": "date" if suggestion.type != "datetime" else "datetime",
        "date": "datetime",
    }.get(socrata_type)
    if want is None or (
        suggestion.cast is None and suggestion.type != "text" and accepts(suggestion.type, socrata_type)
    ):
        return None
    # keep what the sample taught (formats, separators) where it applies to the dataset's type
    extra = {k: v for k, v in shaped.items() if k in APPLIES[want]}
    return {"type": want, **extra} if extra else want


def render(
    sample: Sample,
    suggestions: list[Suggestion],
    *,
    name: str,
    origin: str,
    route_file: Path,
    dataset=None,
    domain: str | None = None,
) -> str:
    """The route file's text."""
    shown = route_file.name
    out = [
        f"# Route written by `route init --from {origin}` on {dt.date.today().isoformat()}, from the first",
        f"# {len(sample.frame)} rows of the file. Read it through and fix what the REVIEW notes point at, then:",
        f"#   route validate {shown}    route preview {shown}    route execute {shown}",
        f"name: {_scalar(name)}",
        f"description: {_scalar(f'Rows of {Path(origin).name}' + (f', published to {dataset.name}' if dataset else '') + '.')}",
        "",
        "source:",
        f"  {sample.kind}:",
    ]
    for key, value in sample.options.items():
        relative = key == "path" and not Path(str(value)).is_absolute()
        note = "relative to this file" if relative else sample.notes.get(key, "")
        out.append(_commented(f"    {key}: {_flow(value)}", note))
    out.append("")
    matched = match_columns(sample.columns, dataset) if dataset else {}
    casts, notes = [], []
    for s in suggestions:
        if dataset is None:
            cast, note = s.cast, s.note
        elif s.column in matched:
            col = matched[s.column]
            cast = dataset_cast(s, col.type)
            note = f"-> {col.field} ({_type_word(col.type)}); sample: {s.note}"
        else:
            cast, note = None, f"not in the dataset, dropped below; sample: {s.note}"
        (casts if cast is not None else notes).append((s.column, cast, note))
    out += _cast_step(casts, notes, dataset)
    out += ["", "targets:"]
    out += _dataset_target(sample, matched, dataset, domain) if dataset else _file_target(sample, name)
    return "\n".join(out) + "\n"


def _cast_step(casts: list, notes: list, dataset) -> list[str]:
    why = (
        "# Types of the dataset's columns; formats and separators from the sample (REVIEW them)."
        if dataset
        else "# Types suggested from the sample: REVIEW each one; delete a line to keep that column as text."
    )
    head = [why, "# A value that does not convert is rejected (with its line, in the rejects file), never guessed."]
    if not casts:
        return (
            head[:1]
            + ["source_transforms: []   # every column stays text:"]
            + [f"#   {_scalar(c)}: {n}" for c, _, n in notes]
        )
    lines = ["source_transforms:"] + ["  " + h for h in head] + ["  - cast:"]
    body = [f"      {_scalar(c)}: {_flow(cast)}" for c, cast, _ in casts]
    width = min(max(len(b) for b in body) + 2, 72)
    lines += [_commented(b, n, width) for b, (_, _, n) in zip(body, casts)]
    lines += [f"      # {_scalar(c)}: {n}" for c, _, n in notes]
    return lines


def _file_target(sample: Sample, name: str) -> list[str]:
    lines = [
        "  - name: out",
        "    target_transforms:",
        _commented("      - select:", "the columns delivered, in this order; delete a line to drop one"),
    ]
    lines += [f"          - {_scalar(c)}" for c in sample.columns]
    lines += ["    deliver:", f"      jsonl: {{path: out/{name}.jsonl}}"]
    return lines


def _dataset_target(sample: Sample, matched: dict, dataset, domain: str | None) -> list[str]:
    from pipeline.socrata import local

    lines = ["  - name: portal", "    target_transforms:"]
    renames = {c: col.field for c, col in matched.items() if c != col.field}
    if renames:
        lines.append(_commented("      - rename:", "the file's names -> the dataset's field names"))
        lines += [f"          {_scalar(c)}: {_scalar(f)}" for c, f in renames.items()]
    fields = {col.field for col in matched.values()}
    present = [c for c in dataset.columns if c.field in fields]
    missing = [c for c in dataset.columns if c.field not in fields]
    if present:
        lines.append(_commented("      - select:", "the dataset's columns found in the file"))
        lines += [f"          - {_scalar(c.field)}" for c in present]
    else:
        lines.append(_commented("      - select: []", "REVIEW: no column of the file matches the dataset's"))
    lines += [
        f"          # {c.field} ({_type_word(c.type)}): not in the file (REVIEW: derive it, or it stays empty)"
        for c in missing
    ]
    ri = dataset.row_identifier
    lines += [
        "    deliver:",
        "      socrata:",
        f"        domain: {'local' if local.is_local(domain) else _scalar(domain)}",
        _commented(f"        dataset: {dataset.id}", dataset.name),
    ]
    if ri:
        lines += [
            _commented("        mode: upsert", "rows are matched on the row identifier"),
            _commented(
                f"        row_identifier: {_scalar(ri)}",
                "" if ri in fields else "REVIEW: no column of the file goes to it",
            ),
        ]
    else:
        lines.append(
            _commented("        mode: replace", "the dataset has no row identifier: each run replaces every row")
        )
    if not local.is_local(domain):
        lines += [
            _commented("        auth:", "export these two before running"),
            "          username: ${SOCRATA_USERNAME}",
            "          password: ${SOCRATA_PASSWORD}",
        ]
    return lines


def _type_word(socrata_type: str) -> str:
    from pipeline.socrata.views import TYPE_WORDS

    return TYPE_WORDS.get(socrata_type, socrata_type)


def _commented(line: str, note: str, width: int = COMMENT_AT) -> str:
    return f"{line.ljust(width - 1)} # {note}" if note else line


def _scalar(value) -> str:
    """A YAML scalar that reads back as the same value (JSON quoting where plain would not)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


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
        text = render(
            rows, suggest(rows.frame), name=name, origin=source, route_file=route_file, dataset=found, domain=domain
        )
        route_file.write_text(text, encoding="utf-8")
    except RouteError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(exc.exit_code) from None
    click.echo(
        f"wrote {route_file}: {len(rows.columns)} columns"
        + (f", {len(match_columns(rows.columns, found))} of them matched to dataset {found.id}" if found else "")
        + f". Review it, then: route validate {route_file}"
    )

"""`route init --dataset`: the dataset a route publishes to, and how the file's columns map to it.

The dataset is read as the Socrata client reads it (GET /api/views/{4x4}); the file's columns are
matched to its fields by name, cast to its column types, and the route delivers to it with its
row identifier: what Socrata's "Automate This" gives socrata-py users.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.basics.errors import RouteInvalid, RunFailed
from pipeline.commands.init.sample import Sample
from pipeline.commands.init.suggestions import Suggestion
from pipeline.commands.init.yamltext import commented, scalar


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


def dataset_target(sample: Sample, matched: dict, dataset, domain: str | None) -> list[str]:
    from pipeline.socrata import local

    lines = ["  - name: portal", "    target_transforms:"]
    renames = {c: col.field for c, col in matched.items() if c != col.field}
    if renames:
        lines.append(commented("      - rename:", "the file's names -> the dataset's field names"))
        lines += [f"          {scalar(c)}: {scalar(f)}" for c, f in renames.items()]
    fields = {col.field for col in matched.values()}
    present = [c for c in dataset.columns if c.field in fields]
    missing = [c for c in dataset.columns if c.field not in fields]
    if present:
        lines.append(commented("      - select:", "the dataset's columns found in the file"))
        lines += [f"          - {scalar(c.field)}" for c in present]
    else:
        lines.append(commented("      - select: []", "REVIEW: no column of the file matches the dataset's"))
    lines += [
        f"          # {c.field} ({type_word(c.type)}): not in the file (REVIEW: derive it, or it stays empty)"
        for c in missing
    ]
    ri = dataset.row_identifier
    lines += [
        "    deliver:",
        "      socrata:",
        f"        domain: {'local' if local.is_local(domain) else scalar(domain)}",
        commented(f"        dataset: {dataset.id}", dataset.name),
    ]
    if ri:
        lines += [
            commented("        mode: upsert", "rows are matched on the row identifier"),
            commented(
                f"        row_identifier: {scalar(ri)}",
                "" if ri in fields else "REVIEW: no column of the file goes to it",
            ),
        ]
    else:
        lines.append(
            commented("        mode: replace", "the dataset has no row identifier: each run replaces every row")
        )
    if not local.is_local(domain):
        lines += [
            commented("        auth:", "export these two before running"),
            "          username: ${SOCRATA_USERNAME}",
            "          password: ${SOCRATA_PASSWORD}",
        ]
    return lines


def type_word(socrata_type: str) -> str:
    """A dataset column's type as the portal's users know it (`calendar_date` is a floating timestamp)."""
    from pipeline.socrata.views import TYPE_WORDS

    return TYPE_WORDS.get(socrata_type, socrata_type)

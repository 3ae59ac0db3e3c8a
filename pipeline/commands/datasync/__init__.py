"""`route import datasync JOB`: a DataSync standard job (.sij + control.json) as a route file.

The job file names the dataset, the file to publish and the method; the control file says how to
read the file (delimiter, encoding, header, columns, timestamp formats, synthetic locations, ...).
When the portal can be read (--domain, or the domain of DataSync's config.json given with
--config), the dataset's columns say which columns are floating or fixed timestamps and what the
row identifier is, as DataSync learnt them; with --offline (or no domain) timestamps are found in
the data and the route is marked for review. Passwords and app tokens never reach the route: it
reads them from ${SOCRATA_USERNAME}, ${SOCRATA_PASSWORD} and ${SOCRATA_APP_TOKEN}.
"""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.basics.errors import RouteError, RouteInvalid
from pipeline.commands.datasync.convert import Portal, convert
from pipeline.commands.datasync.files import read_job, read_preferences


@click.group("import")
def import_group():
    """Turn another tool's job into a route file."""


@import_group.command("datasync")
@click.argument("job", type=click.Path(dir_okay=False))
@click.option(
    "--control",
    type=click.Path(dir_okay=False),
    help="The control file (control.json); default: the one the job names or holds.",
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="The route file to write (default: JOB's name .yaml here)."
)
@click.option("--domain", help="The portal, https://data.example.gov (or `local`); default: config.json's.")
@click.option(
    "--config",
    "preferences",
    type=click.Path(dir_okay=False),
    help="DataSync's config.json: its domain is used, its credentials never written.",
)
@click.option(
    "--file", "data_file", type=click.Path(dir_okay=False), help="The file to publish, if not the job's fileToPublish."
)
@click.option("--offline", is_flag=True, help="Do not read the dataset from the portal.")
@click.option("--force", is_flag=True, help="Overwrite the route file if it exists.")
def datasync_command(job, control, output, domain, preferences, data_file, offline, force):
    """Write the route file that does what the DataSync job JOB (.sij) does."""
    try:
        job_path = Path(job)
        spec = read_job(job_path, Path(control) if control else None)
        secrets = set(spec.secrets)
        config_domain, config_secrets = None, set()
        if preferences:
            config_domain, config_secrets, spec.elsewhere = read_preferences(Path(preferences))
            secrets |= config_secrets
        route_file = Path(output) if output else Path(f"{job_path.stem}.yaml")
        if route_file.exists() and not force:
            raise RouteInvalid(f"error: {route_file} exists; choose another --output, or --force to overwrite it")
        route_file.parent.mkdir(parents=True, exist_ok=True)
        where = domain or config_domain or spec.domain
        portal = _portal(where, spec.dataset, route_file, secrets, offline)
        text, notes, variables = convert(spec, route_file, portal, Path(data_file) if data_file else None)
        route_file.write_text(text, encoding="utf-8")
    except RouteError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(exc.exit_code) from None
    for path, seen in ((job_path, spec.secrets), (preferences, config_secrets)):
        if seen:
            click.echo(f"{path}: its {', '.join(sorted(seen))} were not copied into the route (variables instead)")
    if portal.dataset is None:
        click.echo(
            "the dataset was not read (--offline or no --domain): timestamp columns were found in the data; REVIEW them"
        )
    if notes.not_carried:
        click.echo("not carried over (no route equivalent; see the `# DataSync:` comments):")
        click.echo("\n".join(f"  - {n}" for n in notes.not_carried))
    if notes.review:
        click.echo("to review:")
        click.echo("\n".join(f"  - {n}" for n in notes.review))
    then = f"route validate {route_file}"
    if variables:
        then = f"export {' '.join(variables)}, then {then}"
    click.echo(f"wrote {route_file}: {spec.method} into {spec.dataset}. {then[0].upper()}{then[1:]}")


def _portal(domain: str | None, dataset: str, route_file: Path, secrets: set[str], offline: bool) -> Portal:
    """The portal as the route writes it, and the dataset read from it unless offline."""
    from pipeline.socrata import local
    from pipeline.socrata.http import normalise_domain

    if not domain:
        return Portal("${SOCRATA_DOMAIN}", secrets)
    if local.is_local(domain):
        written = "local"
    else:
        try:
            written = normalise_domain(domain)
        except ValueError as exc:
            raise RouteInvalid(f"error: --domain: {exc}") from None
    if offline:
        return Portal(written, secrets)
    from pipeline.commands.init.dataset import fetch_dataset

    try:
        found, _ = fetch_dataset(written, dataset, route_file, None)
    except RouteError as exc:
        raise type(exc)(f"{exc} (--offline converts the job without reading the dataset)") from None
    return Portal(written, secrets, found)

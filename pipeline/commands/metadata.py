"""`route metadata pull DATASET --domain URL`: a dataset's metadata as the `metadata:` block of a
socrata target, ready to paste into a route (see pipeline/socrata/metadata.py and docs/metadata.md).

    route metadata pull abcd-1234 --domain https://data.example.gov > metadata.yaml

Credentials come from the options or from SOCRATA_USERNAME / SOCRATA_PASSWORD (or
SOCRATA_API_KEY_ID / SOCRATA_API_KEY_SECRET, SOCRATA_APP_TOKEN); with them the block also has what
only a signed-in user sees (the contact email). They are never printed.
"""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from pipeline.basics.errors import EXIT_FAILED, EXIT_INVALID
from pipeline.commands.common import print_error
from pipeline.commands.remote import credential_options, get_json, open_portal


@click.group("metadata")
def metadata_group() -> None:
    """Dataset metadata as code: the `metadata:` block of a socrata target."""


@metadata_group.command("pull")
@click.argument("dataset")
@click.option("--domain", required=True, help="The portal: https://data.example.gov (http:// only for this machine).")
@credential_options
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the block to this file, not stdout.")
def pull_command(dataset, domain, username, password, api_key_id, api_key_secret, app_token, output) -> None:
    """Print DATASET's metadata (its 4x4 id) as a `metadata:` block, in YAML."""
    from pipeline.socrata.metadata import pull
    from pipeline.socrata.views import FOURFOUR

    if not FOURFOUR.match(dataset):
        print_error(f"'{dataset}' is not a dataset id: it has the form abcd-1234, as in the dataset's URL")
        raise SystemExit(EXIT_INVALID)
    http = open_portal(domain, username, password, api_key_id, api_key_secret, app_token)
    try:
        view = get_json(http, f"/api/views/{dataset}.json", f"reading dataset {dataset}", dataset=dataset)
    finally:
        http.close()
    domain = http.base
    if not isinstance(view, dict) or "columns" not in view:
        print_error(f"reading dataset {dataset}: the answer has no columns; is {domain} a Socrata portal?")
        raise SystemExit(EXIT_FAILED)
    text = block_yaml(pull(view), f'"{view.get("name")}" ({dataset}) on {domain}')
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote the metadata of {dataset} to {output}", err=True)
    else:
        click.echo(text, nl=False)


class _Dumper(yaml.SafeDumper):
    """Lists of text (tags) on one line, as people write them: `tags: [housing, code]`."""


_Dumper.add_representer(
    list,
    lambda dumper, data: dumper.represent_sequence(
        "tag:yaml.org,2002:seq", data, flow_style=all(isinstance(x, str) and len(x) < 40 for x in data)
    ),
)


def block_yaml(block: dict, what: str) -> str:
    """The block under `metadata:`, with a comment saying where it came from."""
    body = yaml.dump({"metadata": block}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return f"# The metadata of {what}: paste it under the socrata target's options.\n{body}"

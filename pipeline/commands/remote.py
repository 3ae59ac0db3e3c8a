"""Commands that read a portal on the network (`route metadata pull`, `route portal list|show --domain`):
one set of options for the domain and the credentials, and one way to open the session.

Credentials come from the options or from the environment (SOCRATA_USERNAME / SOCRATA_PASSWORD,
or SOCRATA_API_KEY_ID / SOCRATA_API_KEY_SECRET, and SOCRATA_APP_TOKEN); they go only into the
session's headers and are never printed.
"""

from __future__ import annotations

import click

from pipeline.basics.errors import EXIT_FAILED, EXIT_INVALID
from pipeline.commands.common import print_error

_CREDENTIALS = (
    click.option("--username", envvar="SOCRATA_USERNAME", help="Sign in as this user (or SOCRATA_USERNAME)."),
    click.option("--password", envvar="SOCRATA_PASSWORD", help="Its password (or SOCRATA_PASSWORD; better than here)."),
    click.option("--api-key-id", envvar="SOCRATA_API_KEY_ID", help="An API key id instead (or SOCRATA_API_KEY_ID)."),
    click.option("--api-key-secret", envvar="SOCRATA_API_KEY_SECRET", help="Its secret (or SOCRATA_API_KEY_SECRET)."),
    click.option("--app-token", envvar="SOCRATA_APP_TOKEN", help="An app token (or SOCRATA_APP_TOKEN)."),
)


def credential_options(f):
    """The five credential options, passed to the command as username, password, api_key_id,
    api_key_secret and app_token."""
    for option in reversed(_CREDENTIALS):
        f = option(f)
    return f


def open_portal(domain: str, username=None, password=None, api_key_id=None, api_key_secret=None, app_token=None):
    """A SocrataSession on `domain` with these credentials; a bad domain or an incomplete pair of
    credentials ends the command with exit 2 and a message."""
    from pipeline.socrata.http import SocrataSession, normalise_domain

    try:
        domain = normalise_domain(domain)
    except ValueError as exc:
        print_error(f"--domain: {exc}")
        raise SystemExit(EXIT_INVALID) from None
    if bool(username) != bool(password) or bool(api_key_id) != bool(api_key_secret):
        print_error("give a username with its password, or an API key id with its secret")
        raise SystemExit(EXIT_INVALID)
    auth = {"username": username, "password": password, "api_key_id": api_key_id, "api_key_secret": api_key_secret}
    auth = {k: v for k, v in auth.items() if v}
    if auth.get("username"):
        auth.pop("api_key_id", None), auth.pop("api_key_secret", None)
    if app_token:
        auth["app_token"] = app_token
    return SocrataSession(domain, auth=auth, retries=2, timeout=60)


def get_json(http, path: str, what: str, **kwargs):
    """GET `path` as JSON; a refusal or an unreachable portal ends the command with exit 1."""
    from pipeline.socrata.errors import SocrataError

    try:
        return http.get_json(path, what=what, **kwargs)
    except SocrataError as exc:
        print_error(str(exc))
        raise SystemExit(EXIT_FAILED) from None


def view_of(domain: str, fourfour: str, credentials: dict) -> dict:
    """The dataset's /api/views JSON, with its row count (asked of SODA: views may not carry it)."""
    from pipeline.socrata.views import FOURFOUR

    if not FOURFOUR.match(fourfour):
        print_error(f"'{fourfour}' is not a dataset id: it has the form abcd-1234, as in the dataset's URL")
        raise SystemExit(EXIT_INVALID)
    http = open_portal(domain, **credentials)
    try:
        view = get_json(http, f"/api/views/{fourfour}.json", f"reading dataset {fourfour}", dataset=fourfour)
        counted = get_json(
            http,
            f"/resource/{fourfour}.json",
            f"counting the rows of {fourfour}",
            dataset=fourfour,
            params={"$select": "count(*) AS n"},
        )
    finally:
        http.close()
    if not isinstance(view, dict) or "columns" not in view:
        print_error(f"reading dataset {fourfour}: the answer has no columns; is {domain} a Socrata portal?")
        raise SystemExit(EXIT_FAILED)
    try:
        view["rowCount"] = int(counted[0]["n"])
    except (TypeError, LookupError, ValueError):
        view.pop("rowCount", None)
    return view


PAGE = 100
MOST = 10_000  # a listing, not an export: the catalog of a big portal is browsed on its site


def list_datasets(domain: str, credentials: dict) -> None:
    """Print the datasets the domain's catalog (the Discovery API) lists: id, columns, name."""
    http = open_portal(domain, **credentials)
    shown = 0
    try:
        while shown < MOST:
            page = get_json(
                http,
                "/api/catalog/v1",
                f"listing the datasets of {http.base}",
                params={"domains": http.host, "only": "dataset", "limit": PAGE, "offset": shown},
            )
            results = page.get("results") if isinstance(page, dict) else None
            if not results:
                break
            if shown == 0:
                click.echo(f"{'id':9}  {'cols':>4}  name")
            for item in results:
                resource = item.get("resource") or {}
                columns = resource.get("columns_field_name") or []
                click.echo(f"{resource.get('id', '?'):9}  {len(columns):>4}  {resource.get('name', '')}")
            shown += len(results)
            if len(results) < PAGE:
                break
    finally:
        http.close()
    if shown == 0:
        click.echo(f"No datasets listed by {http.base}.")
    elif shown >= MOST:
        click.echo(f"(the first {MOST:,}; the portal's own catalog lists the rest)")

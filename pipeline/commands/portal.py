"""`route portal`: serve the local portal, and create, list and show its datasets.

route portal serve --user me:secret            # http://127.0.0.1:8000 on .route/portal.sqlite
route portal serve --state routes/payroll/.route  # a route's embedded portal (the folder must exist)
route portal serve --state new/.route --create    # a new, empty portal in a folder made for it
route portal create --name Cases --columns case_id:text,opened:calendar_date --row-id case_id
route portal list
route portal show abcd-1234
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click
import orjson

from pipeline.commands import remote
from pipeline.commands.remote import credential_options
from pipeline.portal.errors import PortalError


def _data_path(data: str | None, state: str | None) -> Path:
    if data:
        return Path(data)
    return Path(state or ".route") / "portal.sqlite"


def _checked_path(data: str | None, state: str | None, *, create: bool = True) -> Path:
    """The portal file for --data/--state, refusing what cannot be a portal (a folder given as the
    file, a file given as the folder) and, unless `create`, a folder that does not exist: a
    mistyped path would otherwise start a new, empty portal in silence."""
    path = _data_path(data, state)
    option, folder = ("--data", path.parent) if data else ("--state", Path(state or ".route"))
    if data and path.is_dir():
        raise click.BadParameter(
            f"'{data}' is a folder; --data takes the portal's SQLite file (or give the folder as --state)",
            param_hint=option,
        )
    if folder.exists() and not folder.is_dir():
        raise click.BadParameter(f"'{folder}' is a file, not a folder", param_hint=option)
    if not create and (data or state) and not folder.exists():
        where = f"folder '{folder}' (of '{data}')" if data else f"folder '{folder}'"
        raise click.BadParameter(
            f"{where} does not exist; check the path, or pass --create to start a new, empty portal there",
            param_hint=option,
        )
    return path


def _data_options(f):
    f = click.option("--state", metavar="DIR", help="State folder; the portal file is DIR/portal.sqlite.")(f)
    f = click.option("--data", metavar="PATH", help="The portal's SQLite file (default .route/portal.sqlite).")(f)
    return f


def _open(path: Path, **kwargs):
    from pipeline.portal import LocalPortal

    return LocalPortal(path, **kwargs)


def _fail(err: PortalError):
    if err.status == 400:
        raise click.UsageError(err.message)
    raise click.ClickException(err.message)


@click.group("portal")
def portal_group():
    """The local portal: Socrata's publishing APIs on a SQLite file, to try routes with no account."""


@portal_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port (0 = any free port).")
@_data_options
@click.option(
    "--create",
    "create_new",
    is_flag=True,
    help="Start a new, empty portal when the --state folder (or the --data file's folder) does not exist yet.",
)
@click.option(
    "--user",
    "users",
    multiple=True,
    metavar="NAME:SECRET",
    help="A user (or API key id) and its secret allowed to write; repeatable. None: no auth.",
)
@click.option("--tls", is_flag=True, help="Serve https with a self-signed certificate made at start.")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate file (PEM).")
@click.option("--key", type=click.Path(exists=True, dir_okay=False), help="TLS private key file (PEM).")
@click.option("--faults", metavar="SPEC", help="Failures on purpose, e.g. '500@3,429@5=2,drop@7' (see docs/portal.md).")
@click.option(
    "--max-body",
    "max_body",
    default="256MB",
    show_default=True,
    metavar="SIZE",
    help="Largest request body, on the wire and once decompressed (e.g. 64MB, 1GB); larger: 413.",
)
@click.option(
    "--read-timeout",
    "read_timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="Close a connection that stays silent this long.",
)
def serve(host, port, data, state, create_new, users, tls, cert, key, faults, max_body, read_timeout):
    """Serve the portal over HTTP (or https with --tls) until interrupted."""
    from pipeline.portal.bodies import parse_size
    from pipeline.portal.faults import FaultError

    try:
        max_body = parse_size(max_body)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--max-body") from None
    if max_body < 1:
        raise click.BadParameter("must be at least 1 byte", param_hint="--max-body")

    accounts = {}
    for spec in users:
        name, sep, secret = spec.partition(":")
        if not sep or not name or not secret:
            raise click.BadParameter(f"'{name or spec}' is not NAME:SECRET", param_hint="--user")
        accounts[name] = secret
    if bool(cert) != bool(key):
        raise click.UsageError("--cert and --key go together")
    path = _checked_path(data, state, create=create_new)
    new = not path.exists()
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        portal = _open(path, users=accounts, faults=faults)
    except FaultError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    # SIGTERM stops the portal cleanly from the moment it serves: a client that has had an answer
    # may stop it before the lines below are printed
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        server = portal.serve(
            host=host,
            port=port,
            tls=tls or bool(cert),
            cert=cert,
            key=key,
            max_body=max_body,
            read_timeout=read_timeout,
        )
    except (OSError, PortalError) as exc:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if isinstance(exc, PortalError):
            raise click.ClickException(exc.message) from None
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port"
        ) from None
    click.echo(f"Local portal at {server.url}  (data: {portal.data_path})")
    if new:
        click.echo(f"A new, empty portal: there was none at {path}.")
    if accounts:
        click.echo(f"Users: {', '.join(sorted(accounts))}")
    else:
        click.echo("No --user given: every request is allowed.")
    if faults:
        click.echo(f"Faults: {faults}")
    click.echo("Press Ctrl+C to stop.")
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        portal.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    click.echo("Stopped.")


def parse_columns(spec: str) -> list[dict]:
    """`name:type,name:type` -> /api/views column objects (type defaults to text)."""
    from pipeline.portal.wire import column_type, type_names

    columns = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, type_name = item.partition(":")
        name, type_name = name.strip(), (type_name.strip() or "text")
        if not name:
            raise click.BadParameter(f"'{item}' has no column name", param_hint="--columns")
        if column_type(type_name) is None:
            raise click.BadParameter(
                f"'{type_name}' (column {name}) is not a type; use one of: {', '.join(type_names())}",
                param_hint="--columns",
            )
        columns.append({"fieldName": name, "name": name, "dataTypeName": type_name})
    if not columns:
        raise click.BadParameter("give at least one column, e.g. id:number,name:text", param_hint="--columns")
    return columns


@portal_group.command("create")
@click.option("--name", help="The dataset's name.")
@click.option("--columns", metavar="NAME:TYPE,...", help="Field names and types, e.g. id:number,town:text.")
@click.option("--row-id", metavar="COLUMN", help="The row identifier column.")
@click.option("--description", default="", help="The dataset's description.")
@click.option("--private", is_flag=True, help="Reads need a user too.")
@click.option("--log-dataset", is_flag=True, help="A run log dataset: one row per run (see docs/unattended.md).")
@_data_options
def create(name, columns, row_id, description, private, data, state, log_dataset):
    """Create and publish a dataset; prints its id (4x4)."""
    if log_dataset:
        from pipeline.ops.logdataset import LOG_COLUMNS, LOG_DATASET_NAME

        if columns or row_id:
            raise click.UsageError("--log-dataset has its own columns: leave out --columns and --row-id")
        name, cols, row_id = name or LOG_DATASET_NAME, LOG_COLUMNS, "run_id"
    elif not (name and columns):
        raise click.UsageError("give --name and --columns (or --log-dataset for a run log dataset)")
    else:
        cols = parse_columns(columns)
    if row_id and row_id not in {c["fieldName"] for c in cols}:
        raise click.BadParameter(f"'{row_id}' is not one of the columns", param_hint="--row-id")
    path = _checked_path(data, state)
    try:
        portal = _open(path)
        try:
            click.echo(
                portal.create_dataset(
                    name=name, columns=cols, row_identifier=row_id, description=description, private=private
                )
            )
        finally:
            portal.close()
    except PortalError as err:
        _fail(err)


_DOMAIN = click.option(
    "--domain",
    help="Another portal (https://data.example.gov) instead of the local one; credentials as for metadata pull.",
)


@portal_group.command("list")
@_data_options
@_DOMAIN
@credential_options
def list_(data, state, domain, **credentials):
    """List the datasets: id, rows, columns, name (of the local portal, or of --domain)."""
    if domain:
        remote.list_datasets(domain, credentials)
        return
    path = _checked_path(data, state)
    if not path.exists():
        click.echo(f"No portal at {path} yet (route portal create makes one).")
        return
    portal = _open(path)
    try:
        views = portal.datasets()
    finally:
        portal.close()
    if not views:
        click.echo("No datasets.")
        return
    click.echo(f"{'id':9}  {'rows':>10}  {'cols':>4}  name")
    for v in views:
        flag = " (private)" if not v["grants"] else ""
        click.echo(f"{v['id']:9}  {v['rowCount']:>10,}  {len(v['columns']):>4}  {v['name']}{flag}")


@portal_group.command("show")
@click.argument("fourfour")
@click.option("--json", "as_json", is_flag=True, help="Print the /api/views JSON instead.")
@_data_options
@_DOMAIN
@credential_options
def show(fourfour, as_json, data, state, domain, **credentials):
    """Show one dataset: its columns, row identifier and row count (on the local portal, or on --domain)."""
    if domain:
        view = remote.view_of(domain, fourfour, credentials)
    else:
        path = _checked_path(data, state)
        if not path.exists():
            raise click.ClickException(f"no portal at {path}")
        portal = _open(path)
        try:
            view = portal.view(fourfour)
        except PortalError as err:
            _fail(PortalError(404, err.code, f"no dataset {fourfour} in {path}"))
        finally:
            portal.close()
    if as_json:
        click.echo(orjson.dumps(view, option=orjson.OPT_INDENT_2).decode())
        return
    ri = view.get("rowIdentifierColumnId")
    click.echo(f"{view['id']}  {view['name']}")
    if view.get("description"):
        click.echo(f"  {view['description']}")
    rows = f"{view['rowCount']:,} rows" if isinstance(view.get("rowCount"), int) else "rows not counted"
    public = "public" if any("public" in (g.get("flags") or []) for g in view.get("grants") or []) else "private"
    click.echo(f"  {rows}, {view.get('publicationStage', 'published')}, {public}")
    click.echo("  columns:")
    for c in view["columns"]:
        mark = "  (row identifier)" if c["id"] == ri else ""
        click.echo(f"    {c['fieldName']:24} {c['dataTypeName']:14} {c['name']}{mark}")
    if ri is None:
        click.echo("  no row identifier: rows are keyed by :id")


if __name__ == "__main__":  # pragma: no cover
    portal_group(sys.argv[1:])

"""`route dashboard`: serve the web dashboard over the routes of a folder (pipeline/ops/dashboard/).

route dashboard routes/                       # http://127.0.0.1:8700, this machine only
route dashboard routes/ --host 0.0.0.0 --user admin:'${DASHBOARD_PASSWORD}'
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import click

from pipeline.basics.errors import RouteInvalid

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def parse_users(specs: tuple[str, ...], env=None) -> dict[str, str]:
    """`name:password` (the password may be `${VAR}`, read from the environment) -> {name: password}."""
    env = os.environ if env is None else env
    users = {}
    for spec in specs:
        name, sep, password = spec.partition(":")
        if not sep or not name or not password:
            raise click.BadParameter(f"'{name or '...'}' is not NAME:PASSWORD", param_hint="--user")
        found = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", password)
        if found:
            if not env.get(found.group(1)):
                raise click.BadParameter(f"the variable {found.group(1)} is not set", param_hint="--user")
            password = env[found.group(1)]
        users[name] = password
    return users


@click.command("dashboard")
@click.argument("path", required=False, default=".", type=click.Path())
@click.option("--port", default=8700, show_default=True, type=click.IntRange(0, 65535), help="Port (0: a free one).")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but this machine needs --user.",
)
@click.option(
    "--state",
    help="State folder or database URL for every route (default: defaults.yaml's `state`, else .route beside "
    "each route file).",
)
@click.option("--profile", help="A profile of defaults.yaml (`local`: the embedded local portal).")
@click.option(
    "--user",
    "users",
    multiple=True,
    metavar="NAME:PASSWORD",
    help="Who may open the dashboard (HTTP Basic); the password may be ${VAR}. Repeatable.",
)
def dashboard_command(path, port, host, state, profile, users):
    """Serve a dashboard of the routes in PATH (default: .): status, runs, rejects, logs, run now."""
    from pipeline.ops.dashboard.app import Dashboard, DashboardServer
    from pipeline.ops.dashboard.state import DashboardState

    if not Path(path).exists():
        raise RouteInvalid(f"error: {path}: no such file or folder")
    accounts = parse_users(users)
    if host not in LOOPBACK and not accounts:
        raise click.UsageError(f"--host {host} lets other machines in: give --user NAME:PASSWORD too")
    app = Dashboard(DashboardState([path], state=state, profile=profile), accounts)
    try:
        server = DashboardServer(app, host, port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port"
        ) from None
    click.echo(f"route dashboard on {server.url} for {Path(path).resolve()} (Ctrl-C to stop)")
    if not accounts:
        click.echo("No --user given: anyone who can reach this address can start runs.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()

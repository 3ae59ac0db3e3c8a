"""`route schedule` and `route status`: the commands of unattended running (added by pipeline.cli)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path

import click

from pipeline.basics.errors import EXIT_FAILED, EXIT_OK, RouteInvalid

_STATE = click.option(
    "--state",
    help="State folder or database URL for every route (default: defaults.yaml's `state`, else .route beside "
    "each route file).",
)
_PROFILE = click.option("--profile", help="A profile of defaults.yaml (`local`: the embedded local portal).")


def _paths(paths: tuple[str, ...]) -> list[str]:
    from pipeline.ops.scheduling.catalog import route_paths

    paths = paths or (".",)
    for p in paths:
        if not Path(p).exists():
            raise RouteInvalid(f"error: {p}: no such file or folder")
    if not route_paths(list(paths)):
        raise RouteInvalid(f"error: {', '.join(paths)}: no route files (*.yaml) here")
    return list(paths)


def _cluster_setting(paths, variables, profile) -> str | None:
    """defaults.yaml's `cluster`, when the folders' (or route files') projects give one."""
    from pipeline.route.project import LenientVariables, load_project

    found = set()
    for path in map(Path, paths):
        project = load_project(path if path.is_dir() else path.parent, LenientVariables(variables), profile)
        if project is not None and project.setting("cluster"):
            found.add(str(project.setting("cluster")))
    return sorted(found)[0] if found else None


def _check_shared_state(paths, variables, profile, state) -> None:
    """--cluster needs one database state for every scheduled route: say so before starting."""
    from pipeline.ops.cluster.submit import ClusterNeedsSharedState, shared_state_of
    from pipeline.ops.scheduling.catalog import Catalog

    catalog = Catalog(paths, variables, profile, state)
    catalog.scan()
    try:
        shared_state_of([e for e in catalog.routes() if e.schedule is not None], state)
    except ClusterNeedsSharedState as exc:
        raise RouteInvalid(f"error: {exc}") from None


def _scheduler_log() -> logging.Logger:
    """The scheduler's own lines, on this command's stderr (journald / the terminal)."""
    log = logging.getLogger("route.schedule")
    for old in [h for h in log.handlers if getattr(h, "route_schedule", False)]:
        log.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.route_schedule = True
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


@click.command("schedule")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Routes run at the same time (default 2; on a cluster, as many as its workers take).",
)
@click.option(
    "--cluster",
    metavar="ADDRESS",
    help="Submit each due run to the Dask scheduler at ADDRESS (tcp://HOST:8786); the state must be a "
    "database (docs/cluster.md). Default: defaults.yaml's `cluster`.",
)
@click.option("--once", is_flag=True, help="Run what is due now, then exit (for cron or Task Scheduler).")
@click.option(
    "--print",
    "print_as",
    type=click.Choice(["cron", "systemd", "windows"]),
    help="Print the schedules as crontab lines, systemd units or schtasks commands, and exit.",
)
@_PROFILE
@_STATE
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Set a ${NAME} variable (repeatable).")
@click.option(
    "--isolation",
    type=click.Choice(["process", "thread"]),
    default="process",
    show_default=True,
    help="Run each route in its own process (a crash cannot take the scheduler down) or in a thread.",
)
@click.option(
    "--grace",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="On SIGTERM, seconds running routes get to finish before they are stopped.",
)
def schedule_command(paths, workers, cluster, once, print_as, profile, state, sets, isolation, grace):
    """Run the routes in PATHS (folders or route files; default: .) on their schedules until stopped.

    A route is due when its cron `schedule` fired since it last ran; one that never ran is due at
    once, and runs missed while the machine was off run once at start. Route files are re-read
    when they change. SIGTERM or Ctrl-C: start nothing more, let running routes finish (--grace),
    then stop them cleanly.
    """
    from pipeline.basics.errors import RunFailed
    from pipeline.commands.common import parse_sets, variables_with
    from pipeline.ops.scheduling.scheduler import Scheduler

    paths = _paths(paths)
    variables = variables_with(sets)
    if print_as:
        from pipeline.ops.scheduling.catalog import Catalog
        from pipeline.ops.scheduling.printers import PRINTERS

        catalog = Catalog(paths, variables, profile, state)
        catalog.scan()
        click.echo(PRINTERS[print_as](catalog.routes(), profile, state), nl=False)
        return
    log = _scheduler_log()
    cluster = cluster or _cluster_setting(paths, variables, profile)
    if cluster:
        _check_shared_state(paths, variables, profile, state)
    try:
        scheduler = Scheduler(
            paths,
            variables=variables,
            workers=workers or (10_000 if cluster else 2),
            profile=profile,
            state=state,
            isolation=isolation,
            grace=grace,
            log=log,
            cluster=cluster,
            sets=parse_sets(sets),
        )
    except RunFailed as exc:  # the cluster cannot be reached
        raise RouteInvalid(f"error: {exc}") from None
    if once:
        jobs = scheduler.run_once()
        failed = [j for j in jobs if j.outcome.status not in ("success", "dry-run", "busy")]
        if not jobs:
            log.info("nothing is due")
        raise SystemExit(EXIT_FAILED if failed else EXIT_OK)
    if cluster:
        log.info("route schedule: submitting to the Dask cluster at %s; SIGTERM or Ctrl-C to stop", cluster)
    else:
        log.info(
            "route schedule: %d worker%s, %s isolation; SIGTERM or Ctrl-C to stop",
            scheduler.workers,
            "" if scheduler.workers == 1 else "s",
            isolation,
        )
    scheduler.run_forever()
    raise SystemExit(EXIT_OK)


@click.command("status")
@click.argument("paths", nargs=-1, type=click.Path())
@_PROFILE
@_STATE
@click.option("--json", "as_json", is_flag=True, help="Print the statuses as JSON.")
@click.option(
    "--check",
    is_flag=True,
    help="Exit with 1 when a route is stale, failing, invalid or needs attention (for monitoring).",
)
@click.option(
    "--repair",
    is_flag=True,
    help="Clean up after interrupted runs now: record them as interrupted, remove "
    "their temporary files and spools, discard the revisions they left open.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a ${NAME} variable (repeatable): credentials --repair needs to discard revisions.",
)
def status_command(paths, profile, state, as_json, check, repair, sets):
    """Show, per route in PATHS (default: .), its schedule, next and last run, last success and flags."""
    from pipeline.commands.common import make_console, variables_with
    from pipeline.ops.scheduling.catalog import Catalog
    from pipeline.ops.scheduling.status import route_status

    variables = variables_with(sets)
    catalog = Catalog(_paths(paths), variables, profile, state)
    catalog.scan()
    if repair:
        from pipeline.ops.scheduling.repair import repair_route

        for entry in catalog.routes():
            for line in repair_route(entry, variables, profile):
                click.echo(line)
    now = dt.datetime.now(dt.UTC)
    statuses = [route_status(entry, now) for entry in catalog.routes()]
    bad = [s for s in statuses if s.state in ("stale", "failing", "invalid", "needs attention")]
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in statuses], indent=2))
    else:
        _table(statuses, make_console())
    raise SystemExit(EXIT_FAILED if check and bad else EXIT_OK)


def _table(statuses, console) -> None:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("route", "schedule", "next run", "last run", "result", "last success", "delivered", "status"):
        table.add_column(col)
    colours = {
        "ok": "green",
        "stale": "red",
        "failing": "red",
        "invalid": "red",
        "running": "cyan",
        "queued": "cyan",
        "needs attention": "red",
    }
    loud = ("stale", "failing", "invalid", "needs attention")
    for s in statuses:
        flag = f"[{colours.get(s.state, 'default')}]{s.state.upper() if s.state in loud else s.state}[/]"
        if s.reason:
            flag += f": {s.reason}"
        table.add_row(
            s.route,
            s.schedule or "-",
            "due now" if s.due and s.next_run else _local(s.next_run),
            _local(s.last_run),
            s.last_status or "-",
            _local(s.last_success),
            s.delivered,
            flag,
        )
    zone = dt.datetime.now().astimezone().tzname()
    console.print(table)
    console.print(f"times in {zone}")


def _local(iso: str | None) -> str:
    if not iso:
        return "-"
    return dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")

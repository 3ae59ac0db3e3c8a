"""The `route` command.

Exit codes: 0 success; 1 the run failed (nothing or part delivered: the message says which);
2 the route or the command line is invalid (nothing was run). No traceback for anything a user can
cause; `--debug` shows one for the rest.
"""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

import click

from pipeline.basics.context import RunOptions
from pipeline.basics.errors import EXIT_CANCELLED, EXIT_FAILED, EXIT_INVALID, EXIT_OK, RouteError, RouteInvalid
from pipeline.basics.plugins import Registry
from pipeline.commands.common import make_console, print_error, route_files, variables_with

_DEBUG = {"on": False}


# Commands that live beside their feature, imported only when used: `route --help` and `route
# validate` must not wait for the libraries of the portal, the scheduler or `route test`. Each entry
# is the command's place and its one-line help (tests/test_cli_startup.py keeps them in step).
LAZY_COMMANDS = {
    "dashboard": (
        "pipeline.commands.dashboard:dashboard_command",
        "Serve a dashboard of the routes in PATH (default: .): status, runs, rejects, logs, run now.",
    ),
    "import": ("pipeline.commands.datasync:import_group", "Turn another tool's job into a route file."),
    "init": (
        "pipeline.commands.init:init_command",
        "Write a commented route file for a CSV or Excel file (and a dataset to publish it to).",
    ),
    "metadata": (
        "pipeline.commands.metadata:metadata_group",
        "Dataset metadata as code: the `metadata:` block of a socrata target.",
    ),
    "portal": (
        "pipeline.commands.portal:portal_group",
        "The local portal: Socrata's publishing APIs on a SQLite file, to try routes with no account.",
    ),
    "schedule": (
        "pipeline.commands.schedule:schedule_command",
        "Run the routes in PATHS (folders or route files; default: .) on their schedules until stopped.",
    ),
    "schema": (
        "pipeline.commands.schema:schema_command",
        "Print the JSON Schema of route files for the rules, sources and deliveries installed here.",
    ),
    "status": (
        "pipeline.commands.schedule:status_command",
        "Show, per route in PATHS (default: .), its schedule, next and last run, last success and flags.",
    ),
    "test": (
        "pipeline.commands.test:test_command",
        "Run routes on their test cases (ROUTE.tests/<case>/) and compare each target's rows with expected/.",
    ),
}


def lazy_command(name: str) -> click.Command | None:
    """The command `name` of LAZY_COMMANDS, imported now; None when its module is not there."""
    import importlib

    where = LAZY_COMMANDS[name][0]
    module, attr = where.split(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None  # a command of a feature not in this install
        raise


def _findable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class RouteGroup(click.Group):
    """Turns click's usage errors into exit code 2 and RouteErrors into clean messages; imports the
    commands of LAZY_COMMANDS only when one is run."""

    def list_commands(self, ctx):
        here = {name for name, (where, _) in LAZY_COMMANDS.items() if _findable(where.split(":")[0])}
        return sorted({*super().list_commands(ctx), *here})

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS and name not in self.commands:
            command = lazy_command(name)
            if command is None:
                return None
            self.add_command(command, name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)  # as click lays out its own
        rows = []
        for name in names:
            if name in LAZY_COMMANDS and name not in self.commands:
                rows.append((name, click.utils.make_default_short_help(LAZY_COMMANDS[name][1], limit)))
            else:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RouteError as exc:
            print_error(str(exc))
            raise SystemExit(exc.exit_code) from None
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("cancelled", err=True)
            raise SystemExit(EXIT_CANCELLED) from None
        except Exception as exc:
            if _DEBUG["on"]:
                traceback.print_exc()
            else:
                print_error(
                    f"internal error: {type(exc).__name__}: {exc} (run again with --debug for the details, "
                    "and please report it)"
                )
            raise SystemExit(EXIT_FAILED) from None


@click.group(cls=RouteGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="route-etl", prog_name="route")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
def cli(debug: bool) -> None:
    """route: publish open data from files and databases to Socrata portals, files and tables."""
    _DEBUG["on"] = debug


@cli.command()
@click.argument("routes", nargs=-1, required=True, type=click.Path())
@click.option("--dry-run", is_flag=True, help="Read and check everything, deliver nothing; say what would happen.")
@click.option("--limit", type=click.IntRange(min=0), help="Read at most N rows from the source.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Set a ${NAME} variable (repeatable).")
@click.option(
    "--state",
    help="State folder, or a database URL shared by several machines (default: .route beside the route file).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON instead of a table.")
@click.option(
    "--force",
    is_flag=True,
    help="Allow a replace that would shrink or empty its output; append again "
    "after an append that stopped part way, sending every row.",
)
@click.option(
    "--resume", is_flag=True, help="After an append that stopped part way: send only the rows that did not arrive."
)
@click.option(
    "--in-doubt",
    type=click.Choice(["send", "skip"]),
    help="With --resume: send (or skip) the rows in doubt when route cannot check them against the dataset.",
)
@click.option("--full", is_flag=True, help="Ignore the incremental high-water mark for this run.")
@click.option("--chunk-rows", type=click.IntRange(min=1), help="Rows per chunk (default 25,000).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("--profile", help="A profile of the folder's defaults.yaml (`local`: the embedded local portal).")
@click.option(
    "--cluster",
    metavar="ADDRESS",
    help="Read a partitioned source and run its source rules on the Dask cluster at ADDRESS "
    "(tcp://HOST:8786); deliveries stay here (docs/cluster-execute.md).",
)
def execute(
    routes, dry_run, limit, sets, state, as_json, force, resume, in_doubt, full, chunk_rows, quiet, profile, cluster
):
    """Run ROUTES (route files or folders of them) and print a summary."""
    from pipeline.ops.runner import run_route
    from pipeline.runs.locks import RouteBusy

    if in_doubt and not resume:
        raise click.UsageError("--in-doubt goes with --resume")
    if resume and force:
        raise click.UsageError("--resume sends only what did not arrive, --force sends everything: choose one")
    if cluster:  # the routes run on a Dask cluster; distributed is imported only then
        from functools import partial

        from pipeline.ops.cluster.execute_run import connect, run_on_cluster

        client = connect(cluster)
        click.get_current_context().call_on_close(client.close)
        run_route = partial(run_on_cluster, client=client)
    variables = variables_with(sets)
    options = RunOptions(
        dry_run=dry_run, limit=limit, force=force, full=full, chunk_rows=chunk_rows, resume=resume, in_doubt=in_doubt
    )
    console = make_console()
    worst = EXIT_OK
    reports = []
    registry = Registry.discover()
    for route in route_files(routes):
        try:
            report = run_route(
                route,
                variables=variables,
                registry=registry,
                state_dir=state,
                options=options,
                quiet=quiet or as_json,
                console=None if as_json else console,
                profile=profile,
            )
        except RouteInvalid as exc:
            print_error(str(exc))
            worst = max(worst, EXIT_INVALID)
            continue
        except RouteBusy as exc:
            print_error(str(exc))
            worst = max(worst, EXIT_FAILED)
            continue
        reports.append(report)
        if report.status == "cancelled":
            worst = EXIT_CANCELLED
            break  # Ctrl+C stops the whole command, not only this route
        if not report.ok:
            worst = max(worst, EXIT_FAILED)
    if as_json:
        click.echo(
            json.dumps(
                [r.to_dict() for r in reports] if len(reports) != 1 else reports[0].to_dict(), indent=2, default=str
            )
        )
    raise SystemExit(worst)


@cli.command()
@click.argument("routes", nargs=-1, required=True, type=click.Path())
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Set a ${NAME} variable (repeatable).")
@click.option("--profile", help="Check with this profile of the folder's defaults.yaml applied.")
@click.option(
    "--offline", is_flag=True, help="Do not ask a portal or a database for its columns (check what the files say)."
)
def validate(routes, sets, profile, offline):
    """Check ROUTES (files or folders) without running them: every problem, with its line, including
    columns that rules read but the source does not have, and source files that do not exist."""
    from pipeline.route.plan import build_plan

    variables = variables_with(sets)
    registry = Registry.discover()
    failed = False
    for route in route_files(routes):
        try:
            build_plan(
                route, variables=variables, registry=registry, profile=profile, columns="strict", offline=offline
            )
        except RouteInvalid as exc:
            print_error(str(exc))
            failed = True
            continue
        click.echo(f"{route}: ok")
    raise SystemExit(EXIT_INVALID if failed else EXIT_OK)


@cli.command()
@click.argument("name", required=False)
def rules(name):
    """List the rules (built-in and plugins), or show one rule's options and example."""
    from pipeline.commands.rulesdoc import describe, listing

    click.echo(describe(name, Registry.discover()) if name else listing(Registry.discover()))


@cli.command()
@click.argument("route", type=click.Path())
@click.option("--rows", default=10, show_default=True, type=click.IntRange(min=1), help="Rows to show per stage.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Set a ${NAME} variable (repeatable).")
@click.option("--state", help="State folder, or a database URL.")
def preview(route, rows, sets, state):
    """Show the first rows after every stage, per target, without delivering anything.

    Exits 1 when a step fails (the steps before it are shown), 2 when the route is invalid."""
    from pipeline.commands.preview import preview_route

    code = preview_route(
        Path(route),
        rows=rows,
        variables=variables_with(sets),
        registry=Registry.discover(),
        state_dir=state,
        console=make_console(),
    )
    raise SystemExit(code)


@cli.command()
@click.argument("route", required=False)
@click.option("--state", help="Read this state folder or database URL (default: each route's own).")
@click.option(
    "--status",
    "status",
    type=click.Choice(["success", "failed", "partial", "cancelled", "interrupted", "dry-run", "running", "queued"]),
    help="Only runs with this status.",
)
@click.option("--since", help="Only runs started on or after this date (YYYY-MM-DD).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True)
def history(route, state, status, since, limit, as_json):
    """List past runs of ROUTE (a route file, or a route name found under this folder), or of
    every route under this folder."""
    from pipeline.commands.history import show_history

    show_history(route, state=state, status=status, since=since, limit=limit, as_json=as_json, console=make_console())


def main() -> None:
    # Arrow's jemalloc pool returns memory to the system steadily where the default pool (mimalloc
    # here) let system time and peak memory swing from run to run (issue 19); read by Arrow when
    # it first allocates, so it is set before pyarrow loads. An explicit setting is kept.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    # ...and, like polars' own jemalloc (the request bodies are written in it; read when polars
    # loads), gives freed pages back after 100 ms rather than 10 s, which kept 10-45 MB more at the
    # peak (a 1M-row upsert peaked 379-383 MB with the default decay). Not at once: with no decay
    # every chunk's and every body's buffers were faulted in afresh (Arrow: 580k page faults,
    # 2.1-2.7 s of system time per 1M rows upserted, against 300k and 1.1-1.5 s at 100 ms;
    # polars: ~1.5 s of CPU), for 25-30 MB less peak, which the smaller default chunk gives back.
    for variable in ("JE_ARROW_MALLOC_CONF", "_RJEM_MALLOC_CONF"):
        os.environ.setdefault(variable, "dirty_decay_ms:100,muzzy_decay_ms:0")
    # numpy's OpenBLAS starts a thread per extra core when numpy loads, and each spins about 0.1 s
    # of CPU waiting for matrix work that a route never gives it (measured: `import numpy` costs
    # 0.20-0.23 CPU-s with it, 0.12-0.14 without), CPU that the reader and the senders want.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _few_malloc_arenas()
    try:
        cli(prog_name="route")
    finally:
        _exit_without_last_collection()


def _exit_without_last_collection() -> None:
    """Python's shutdown collects garbage over every object still alive: once pandas, Arrow and
    polars are loaded, about 0.13 s after the last line a command prints (a fifth of a small run).
    Frozen objects are left out of that walk; the process ends either way, and every file route
    writes is closed (and renamed into place) before the command returns, so nothing waits on it.
    atexit handlers (logging's flush among them) still run."""
    import gc

    gc.freeze()


def _few_malloc_arenas() -> None:
    """glibc's malloc gives each thread that contends for memory an arena of its own (up to 8 per
    core), and a freed block stays in its arena: with a reader, a main, a target and four sender
    threads passing chunks between them, two arenas peak 10-20 MB lower at the same speed. Only
    where glibc's mallopt exists, and before any thread starts."""
    import ctypes

    try:
        ctypes.CDLL(None).mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


if __name__ == "__main__":  # pragma: no cover
    main()

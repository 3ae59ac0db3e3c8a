"""What every command shares: the console, --set variables, route files named on the command line,
and how an error is printed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline.basics.errors import RouteInvalid

if TYPE_CHECKING:
    from rich.console import Console

# rich and the route file scanner (YAML) are imported by the functions that use them, so that
# `route --help`, which imports this module, loads neither.


def print_error(message: str) -> None:
    """One error line on stderr, prefixed with `error:` unless it already names a place."""
    click.echo(
        message if message.startswith(("error", "internal")) or ":" in message.split(" ")[0] else f"error: {message}",
        err=True,
    )


def make_console() -> Console:
    """stdout as a rich console; wide enough off a terminal that tables never wrap in logs."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=True, width=240)
    return console


def parse_sets(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        if "=" not in item:
            raise RouteInvalid(f"error: --set takes NAME=value, got '{item}'")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


def variables_with(sets: tuple[str, ...]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(parse_sets(sets))
    return env


def route_files(paths: tuple[str, ...]) -> list[Path]:
    """Route files named on the command line; a folder means every route file under it, at any
    depth (see pipeline/route/files.py). The YAML files of a folder that are not routes are
    skipped, and one line on stderr names them."""
    from pipeline.route.files import scan_route_files

    found = scan_route_files(paths)
    if found.skipped:
        click.echo(found.note(), err=True)
    folders = [p for p in paths if Path(p).is_dir()]
    if not found.files and folders:
        raise RouteInvalid(f"error: {', '.join(folders)}: no route files (*.yaml) here")
    return found.files

"""Small factories shared by the tests: a route written into tmp_path, and the `route` command."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from portalkit import ServedPortal
from socratakit import Deliveries

from pipeline.basics.plugins import Registry
from pipeline.cli import cli


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_route_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> CliResult:
    """Run `route ARGS` in-process, as a user would from a shell, and capture what they would see."""
    runner = CliRunner()
    old = os.getcwd()
    if cwd:
        os.chdir(cwd)
    try:
        result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
    finally:
        os.chdir(old)
    return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def route_cli():
    return run_route_cli


@pytest.fixture
def write_route(tmp_path):
    """write_route(yaml_text, **files) -> path of route.yaml in tmp_path; files are name=text|bytes."""

    def write(text: str, name: str = "route.yaml", **files) -> Path:
        for fname, content in files.items():
            p = tmp_path / fname.replace("__", "/")
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(textwrap.dedent(content), encoding="utf-8")
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


def read_jsonl(path: Path) -> list[dict]:
    import orjson

    return [orjson.loads(line) for line in Path(path).read_bytes().splitlines() if line.strip()]


def read_csv_rows(path: Path) -> list[dict]:
    import csv

    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def example_plugin_installed():
    """The example plugin package, installed as a user would (pip), if it is not already (or is an
    older install without its source)."""
    if not _example_listed(Registry.discover()):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "-e",
                str(Path(__file__).resolve().parents[1] / "examples/route-rules-example"),
            ],
            check=True,
        )
        import importlib

        importlib.invalidate_caches()
    assert _example_listed(Registry.discover())


def _example_listed(registry: Registry) -> bool:
    return "fix_town" in registry.names("rules") and "fixed_width" in registry.names("sources")


# ---- the local portal (tests/portalkit.py) --------------------------------------------------------


@pytest.fixture
def portal(tmp_path):
    """A ServedPortal of this test, served from this process (tmp_path/portal/portal.sqlite)."""
    with ServedPortal(tmp_path / "portal" / "portal.sqlite") as served:
        yield served


@pytest.fixture(scope="module")
def shared_portal(tmp_path_factory):
    """One ServedPortal for a whole module, for tests that only use datasets of their own."""
    with ServedPortal(tmp_path_factory.mktemp("portal") / "portal.sqlite") as served:
        yield served


@pytest.fixture
def portal_process(tmp_path):
    """portal_process(*args, data=None, **options) -> a ServedPortal in a process of its own
    (`route portal serve`, with `args` on its command line; `options` as ServedPortal takes them).
    Without `data`, each gets its own file under tmp_path. Every one still running is stopped at
    teardown."""
    started: list[ServedPortal] = []

    def start(*args: str, data: Path | None = None, **options) -> ServedPortal:
        path = data or tmp_path / f"portal-process-{len(started) + 1}" / "portal.sqlite"
        served = ServedPortal(path, process=True, args=args, **options)
        started.append(served)
        return served

    yield start
    for served in started:
        served.close()


@pytest.fixture
def deliver(tmp_path):
    """deliver(options, *frames, dry_run=False, force=False) -> Run: one socrata delivery run
    (tests/socratakit.py's Deliveries), its state under tmp_path."""
    return Deliveries(tmp_path)

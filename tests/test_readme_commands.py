"""Every `route ...` command the README shows works as written.

The commands are read from README.md (its code blocks, and the inline code spans that are whole
command lines) and run in README order from a folder holding a copy of the repository's routes/,
as a newcomer would from the repository, on the embedded local portal. None may end in an error
exit or a traceback. A synopsis (`route execute ROUTE... [--dry-run]`) is not a command line;
every other command the README shows is run, unless NOT_RUN below says why not.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# Commands the README shows that are not run here, and why.
NOT_RUN = {
    "route execute my-route.yaml": "my-route.yaml stands for the reader's own route file",
    "route execute": "the command named in prose, without its ROUTE",
    "route validate": "the command named in prose, without its ROUTE",
    "route test": "the command named in prose, without its ROUTE",
    "route execute --resume": "an option named in prose; --resume needs an interrupted append (tests/runs/)",
    "route execute --dry-run": "an option named in prose, without its ROUTE",
    "route test --update": "an option named in prose, without its ROUTE",
    "route metadata pull abcd-1234 --domain https://data.example.gov": (
        "an example against a remote portal; tests/socrata/test_socrata_metadata.py pulls from the local one"
    ),
    "route test tests/cases": "the project's own test cases: tests/end_to_end/test_cases.py runs them through route test",
    "route schedule routes/": (
        "a service that runs until stopped, and would run routes/ct-data/permits-upsert.yaml at once "
        "(it never ran): that route needs the real data.ct.gov portal and SOCRATA_* credentials"
    ),
    "route schedule --once": (
        "runs what is due under the current folder, which is routes/ct-data/permits-upsert.yaml: "
        "it needs the real data.ct.gov portal and SOCRATA_* credentials"
    ),
}

# Commands that fail as the README writes them: the README is to be fixed (the test then says so).
FAILING: dict[str, str] = {}

# What the README runs before a command that needs it.
AFTER = {"route portal serve --state routes/payroll/.route": ["route execute routes/payroll/payroll.yaml"]}

PLACEHOLDER = re.compile(r"\[|\||\.\.\.|\b[A-Z][A-Z0-9_]{2,}\b")


def readme_commands(text: str) -> list[str]:
    """Every `route ...` command line in the README, in order, once each."""
    found: list[tuple[int, str]] = []
    for block in re.finditer(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M):
        offset = block.start(1)
        for line in block.group(1).splitlines(keepends=True):
            for part in re.split(r"&&|;", line.split("#", 1)[0]):
                if part.strip().startswith("route "):
                    found.append((offset, part.strip()))
            offset += len(line)
    prose = re.sub(r"^```.*?^```", lambda m: " " * len(m.group()), text, flags=re.S | re.M)
    for span in re.finditer(r"`([^`\n]+)`", prose):
        if span.group(1).startswith("route "):
            found.append((span.start(), span.group(1).replace("\\|", "|")))
    return list(dict.fromkeys(command for _, command in sorted(found)))


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))
SYNOPSES = [c for c in COMMANDS if PLACEHOLDER.search(c)]
RUN = [c for c in COMMANDS if c not in SYNOPSES and c not in NOT_RUN]


class Workspace:
    """A folder holding a copy of routes/, where the README's commands run one after another."""

    def __init__(self, root: Path):
        self.root = root
        shutil.copytree(ROOT / "routes", root / "routes", ignore=shutil.ignore_patterns(".route", "out"))
        self.done: set[str] = set()

    def prepare(self, command: str, route_cli) -> None:
        """Run what the README runs before `command`, unless it ran."""
        for before in AFTER.get(command, []):
            if before not in self.done:
                result = self.run(before, route_cli)
                assert result.exit_code == 0, f"{before}\n{result.output}"

    def run(self, command: str, route_cli):
        self.prepare(command, route_cli)
        self.done.add(command)
        return route_cli(*shlex.split(command)[1:], cwd=self.root)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return Workspace(tmp_path_factory.mktemp("readme"))


def test_the_readme_commands_are_found():
    assert RUN[0] == "route execute routes/payroll/payroll.yaml"  # the command of "Start here"
    assert "route portal serve --state routes/payroll/.route" in RUN
    assert (
        "route execute ROUTE... [--dry-run] [--limit N] [--set K=V] [--state DIR] [--json] [--force] [--resume] [--full]"
        in SYNOPSES
    )


def test_every_command_left_out_is_still_in_the_readme():
    stale = [c for c in [*NOT_RUN, *FAILING, *AFTER] if c not in COMMANDS]
    assert not stale, f"no longer in README.md: remove them from this test: {stale}"


def _params():
    for command in RUN:
        marks = (
            [pytest.mark.xfail(reason=f"README to fix: {FAILING[command]}", strict=True)] if command in FAILING else []
        )
        yield pytest.param(command, id=command, marks=marks)


@pytest.mark.parametrize("command", _params())
def test_readme_command_runs_as_written(command, workspace, route_cli):
    if command.startswith("route portal serve"):
        _serve(command, workspace, route_cli)
        return
    result = workspace.run(command, route_cli)
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    assert result.exit_code == 0, f"{command} exited {result.exit_code}:\n{result.output}"
    if command == "route execute routes/payroll/payroll.yaml":
        # what the README says of this run: one rejected row, a local portal and files under out/
        payroll = workspace.root / "routes/payroll"
        assert "1 row rejected" in result.output
        assert (payroll / ".route/portal.sqlite").is_file()
        assert sorted(p.suffix for p in (payroll / "out").iterdir()) == [".csv", ".jsonl"]


def _serve(command: str, workspace: Workspace, route_cli) -> None:
    """A server runs until stopped: start it as written, but on a free port (8000 may be taken on
    this machine), open its page as the README says, then stop it as Ctrl+C would."""
    workspace.prepare(command, route_cli)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *shlex.split(command)[1:], "--port", "0"],
        cwd=workspace.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    first = proc.stdout.readline()
    try:
        assert first.startswith("Local portal at http://127.0.0.1:"), first + proc.stderr.read()
        page = requests.get(first.split()[3] + "/", timeout=30)
        assert page.status_code == 200
        assert "State payroll" in page.text  # the dataset the README's run published
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    out, err = first + proc.stdout.read(), proc.stderr.read()
    assert proc.returncode == 0, out + err
    assert "Traceback" not in out + err and "new, empty" not in out

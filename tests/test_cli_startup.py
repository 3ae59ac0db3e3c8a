"""`route --help` and the commands that live beside their feature: imported only when run, listed
with the same one-line help as their own, and none of the heavy libraries loaded to show help."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.cli import LAZY_COMMANDS, _findable, lazy_command


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_a_lazy_command_is_where_it_says_with_the_help_it_says(name):
    if not _findable(LAZY_COMMANDS[name][0].split(":")[0]):
        pytest.skip(f"{name}: its module is not in this install")
    command = lazy_command(name)
    assert command is not None and command.name == name
    assert command.get_short_help_str(limit=300) == LAZY_COMMANDS[name][1]


def test_help_lists_every_command_without_importing_pandas():
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom pipeline.cli import cli\n"
        "out = CliRunner().invoke(cli, ['--help']).output\n"
        "print(out)\nprint('HEAVY', sorted(m for m in ('pandas', 'pyarrow', 'polars') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
    for name in ("execute", "validate", "portal", "test", "schedule", "status", "import"):
        assert f"\n  {name} " in done.stdout


def test_a_lazy_command_runs(route_cli):
    result = route_cli("portal", "--help")
    assert result.exit_code == 0 and "serve" in result.stdout

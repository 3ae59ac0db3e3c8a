"""`route --help` and the commands that live beside their feature: imported only when run, listed
with the same one-line help as their own, and none of the heavy libraries loaded to show help or
to check a route (issue 19: commands start fast). The checks are on the modules a fresh
interpreter loads, never on timings; bench/bench_startup.py measures the time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import LAZY_COMMANDS, _findable, lazy_command


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_a_lazy_command_is_where_it_says_with_the_help_it_says(name):
    if not _findable(LAZY_COMMANDS[name][0].split(":")[0]):
        pytest.skip(f"{name}: its module is not in this install")
    command = lazy_command(name)
    assert command is not None and command.name == name
    assert command.get_short_help_str(limit=300) == LAZY_COMMANDS[name][1]


# What `route --help` must not load: the data libraries, and what only some commands use.
HEAVY_FOR_HELP = ("pandas", "pyarrow", "polars", "numpy", "requests", "jsonschema", "rich", "yaml")
# What checking a route must not load: the data libraries and the HTTP client (no row is read and
# no request made; a plugin that does not follow this is its author's choice).
HEAVY_FOR_VALIDATE = ("pandas", "pyarrow", "polars", "numpy", "requests", "sqlalchemy")
PAYROLL = Path(__file__).resolve().parents[1] / "routes" / "payroll"


def test_help_lists_every_command_without_importing_pandas():
    code = (
        f"HEAVY_FOR_HELP = {HEAVY_FOR_HELP!r}\n"
        "import sys\nfrom click.testing import CliRunner\nfrom pipeline.cli import cli\n"
        "out = CliRunner().invoke(cli, ['--help']).output\n"
        "print(out)\nprint('HEAVY', sorted(m for m in HEAVY_FOR_HELP if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
    for name in ("execute", "validate", "portal", "test", "schedule", "status", "import"):
        assert f"\n  {name} " in done.stdout


def test_a_lazy_command_runs(route_cli):
    result = route_cli("portal", "--help")
    assert result.exit_code == 0 and "serve" in result.stdout


def validate_in_a_fresh_interpreter(folder: Path) -> subprocess.CompletedProcess:
    """`route validate payroll.yaml` in `folder`; stdout ends with its exit code and the heavy
    libraries it loaded."""
    code = (
        "import sys\nfrom pipeline.cli import main\n"
        "sys.argv = ['route', 'validate', 'payroll.yaml']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    print('EXIT', exc.code)\n"
        f"print('HEAVY', sorted(m for m in {HEAVY_FOR_VALIDATE!r} if m in sys.modules))"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=folder)


def test_validate_checks_a_route_without_loading_the_data_libraries(tmp_path):
    """The payroll example: a csv source, rename, trim, cast, filter, derive and select, and socrata,
    jsonl and csv targets, every one resolved, bound and its columns checked."""
    for name in ("payroll.yaml", "payroll.csv"):
        shutil.copy(PAYROLL / name, tmp_path / name)
    done = validate_in_a_fresh_interpreter(tmp_path)
    assert done.stdout.splitlines() == ["payroll.yaml: ok", "EXIT 0", "HEAVY []"], done.stdout + done.stderr


def test_a_mistake_found_by_validate_loads_no_data_library_either(tmp_path):
    shutil.copy(PAYROLL / "payroll.csv", tmp_path / "payroll.csv")
    text = (PAYROLL / "payroll.yaml").read_text().replace("gross >= 0", "gros >= 0")
    (tmp_path / "payroll.yaml").write_text(text)
    done = validate_in_a_fresh_interpreter(tmp_path)
    assert "unknown column 'gros'" in done.stderr
    assert done.stdout.splitlines() == ["EXIT 2", "HEAVY []"], done.stdout + done.stderr


# Built-in components whose module may load the data libraries when imported: reading a workbook
# or a layer needs them to plan (their columns are read then), and the SQL source, dedupe/sort and
# aggregate/pivot have not been split yet.
HEAVY_AT_IMPORT = {
    "pipeline.sources.excel",
    "pipeline.sources.geo",
    "pipeline.sources.sql",
    "transforms.rows",
    "transforms.reshape",
}


def test_the_built_in_components_import_without_the_data_libraries():
    """Every other built-in rule, source and delivery module, imported one after another in one
    fresh interpreter: the first that loads one of them is named."""
    code = (
        "import importlib, importlib.metadata as md, sys\n"
        f"skip = {sorted(HEAVY_AT_IMPORT)!r}\n"
        "names = sorted({ep.value.split(':')[0] for g in ('route.rules', 'route.sources', 'route.deliveries')\n"
        "    for ep in md.entry_points(group=g) if ep.dist and ep.dist.name == 'route-etl'} - set(skip))\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        f"    heavy = sorted(m for m in {HEAVY_FOR_VALIDATE!r} if m in sys.modules)\n"
        "    if heavy:\n"
        "        print('LOADS', name, heavy)\n"
        "        break\n"
        "else:\n"
        "    print('NONE of', len(names))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("NONE of"), done.stdout


def test_a_run_ends_without_a_last_collection_and_its_files_are_whole(tmp_path):
    """The objects alive when a command returns are frozen out of the collection Python's shutdown
    would walk them with (about 0.13 s once the data libraries are in): the files the run wrote are
    whole all the same, and atexit handlers still run after it."""
    rows = 20_000
    lines = ["id,town"] + [f"{i},Town {i % 7}" for i in range(rows)]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "r.yaml").write_text(
        "name: whole\nsource:\n  csv: {path: in.csv}\ntargets:\n"
        "  - name: table\n    deliver:\n      csv: {path: out/all.csv}\n"
        "  - name: lines\n    deliver:\n      jsonl: {path: out/all.jsonl}\n"
    )
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('FROZEN AT EXIT', gc.get_freeze_count() > 0, flush=True))\n"
        "sys.argv = ['route', 'execute', 'r.yaml', '-q']\n"
        "from pipeline.cli import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "FROZEN AT EXIT True", done.stdout
    table = (tmp_path / "out" / "all.csv").read_text().splitlines()
    assert len(table) == rows + 1 and table[-1] == f'"{rows - 1}","Town {(rows - 1) % 7}"'
    records = (tmp_path / "out" / "all.jsonl").read_text().splitlines()
    assert len(records) == rows and records[-1] == f'{{"id":"{rows - 1}","town":"Town {(rows - 1) % 7}"}}'


@pytest.mark.parametrize(("given", "kept"), [(None, "1"), ("4", "4")])
def test_numpy_matrix_threads_are_one_unless_the_user_says_otherwise(tmp_path, given, kept):
    """OpenBLAS's idle threads would spin about 0.1 CPU-s a run; a user who wants them says so."""
    code = (
        "import atexit, os, sys\n"
        "atexit.register(lambda: print('OPENBLAS', os.environ.get('OPENBLAS_NUM_THREADS'), flush=True))\n"
        "sys.argv = ['route', '--help']\n"
        "from pipeline.cli import main\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given:
        env["OPENBLAS_NUM_THREADS"] = given
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.stdout.splitlines()[-1] == f"OPENBLAS {kept}", done.stdout + done.stderr

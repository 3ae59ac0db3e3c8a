"""`route portal serve --state DIR / --data PATH`: a folder that is not there is refused (a mistyped
path would otherwise serve a new, empty portal in silence) unless `--create` asks for a new portal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests
from portalkit import ServedPortal

ROUTE = [sys.executable, "-m", "pipeline.cli"]


def test_a_state_folder_that_is_not_there_is_refused(route_cli, tmp_path):
    result = route_cli("portal", "serve", "--state", "routes/payrol/.route", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for --state: folder 'routes/payrol/.route' does not exist; check the path, "
        "or pass --create to start a new, empty portal there"
    )
    assert "Traceback" not in result.output and result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing made


def test_a_data_file_in_a_folder_that_is_not_there_is_refused(route_cli, tmp_path):
    result = route_cli("portal", "serve", "--data", "nowhere/portal.sqlite", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for --data: folder 'nowhere' (of 'nowhere/portal.sqlite') does not exist; "
        "check the path, or pass --create to start a new, empty portal there"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_folder_given_as_the_file_or_a_file_as_the_folder_is_refused_by_every_portal_command(route_cli, tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("not a folder\n")
    for command in (["serve"], ["list"], ["show", "abcd-1234"], ["create", "--name", "x", "--columns", "a:text"]):
        result = route_cli("portal", *command, "--data", "folder", cwd=tmp_path)
        assert (result.exit_code, result.stderr.splitlines()[-1]) == (
            2,
            "Error: Invalid value for --data: 'folder' is a folder; --data takes the portal's SQLite file "
            "(or give the folder as --state)",
        ), command
        result = route_cli("portal", *command, "--state", "afile", cwd=tmp_path)
        assert (result.exit_code, result.stderr.splitlines()[-1]) == (
            2,
            "Error: Invalid value for --state: 'afile' is a file, not a folder",
        ), command
        assert "Traceback" not in result.output and "internal error" not in result.output


def test_create_starts_a_new_empty_portal_in_a_new_folder(tmp_path):
    served = ServedPortal(None, process=True, users={}, args=("--state", "new/.route", "--create"), cwd=tmp_path)
    try:
        page = requests.get(served.url + "/", timeout=30)
        assert page.status_code == 200 and "No datasets yet." in page.text
    finally:
        served.stop()
    code, out, err = served.proc.returncode, served.stdout, served.stderr
    assert code == 0, err
    assert out.splitlines()[1] == f"A new, empty portal: there was none at {Path('new/.route/portal.sqlite')}."
    assert (tmp_path / "new/.route/portal.sqlite").is_file()
    assert "Traceback" not in err


def test_an_existing_portal_is_served_as_it_is(route_cli, tmp_path):
    state = tmp_path / "routes/cases/.route"
    created = route_cli(
        "portal", "create", "--name", "Cases", "--columns", "case_id:text", "--row-id", "case_id", "--state", str(state)
    )
    assert created.exit_code == 0, created.output
    fourfour = created.stdout.strip()
    served = ServedPortal(None, process=True, users={}, args=("--state", "routes/cases/.route"), cwd=tmp_path)
    try:
        page = requests.get(served.url + "/", timeout=30)
        assert page.status_code == 200 and fourfour in page.text and "Cases" in page.text
    finally:
        served.stop()
    code, out, err = served.proc.returncode, served.stdout, served.stderr
    assert code == 0, err
    assert "new, empty" not in out and out.splitlines()[-1] == "Stopped."


def test_a_portal_stopped_the_moment_it_serves_stops_cleanly(tmp_path):
    """SIGTERM as soon as the portal says where it serves (a script that needed one answer): it stops
    as Ctrl+C stops it. Its handler was once set only after the lines it prints, and a CI run under
    load killed it in between (exit -15); the window is too short to hit on purpose."""
    for _ in range(3):
        served = ServedPortal(None, process=True, users={}, args=("--state", ".route", "--create"), cwd=tmp_path)
        served.stop()
        assert served.proc.returncode == 0, served.stderr
        assert served.stdout.splitlines()[-1] == "Stopped."

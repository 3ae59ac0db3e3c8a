"""`route portal` commands: create, list, show (in-process) and serve (a real process)."""

from __future__ import annotations

from click.testing import CliRunner
from portalkit import KEY_SECRET, SECRET

from pipeline.commands.portal import portal_group
from pipeline.portal import LocalPortal


def run(*args):
    result = CliRunner().invoke(portal_group, list(args))
    return result.exit_code, result.output


def test_create_list_show(tmp_path):
    data = str(tmp_path / "p.sqlite")
    code, out = run(
        "create",
        "--name",
        "Payroll",
        "--columns",
        "employee_id:number, paid:calendar_date,name",
        "--row-id",
        "employee_id",
        "--description",
        "Weekly",
        "--data",
        data,
    )
    assert code == 0
    ff = out.strip()
    assert len(ff) == 9 and ff[4] == "-"
    view = LocalPortal(data).view(ff)
    assert [(c["fieldName"], c["dataTypeName"]) for c in view["columns"]] == [
        ("employee_id", "number"),
        ("paid", "calendar_date"),
        ("name", "text"),
    ]
    assert view["publicationStage"] == "published" and view["description"] == "Weekly"

    code, out = run("list", "--data", data)
    assert code == 0 and ff in out and "Payroll" in out

    code, out = run("show", ff, "--data", data)
    assert code == 0
    assert "employee_id" in out and "(row identifier)" in out and "0 rows" in out

    code, out = run("show", ff, "--json", "--data", data)
    assert code == 0 and f'"id": "{ff}"' in out


def test_state_folder_and_private(tmp_path):
    code, out = run("create", "--name", "Secret", "--columns", "a:text", "--private", "--state", str(tmp_path / "st"))
    assert code == 0
    assert (tmp_path / "st" / "portal.sqlite").exists()
    code, out = run("list", "--state", str(tmp_path / "st"))
    assert "(private)" in out


def test_bad_input_is_a_usage_error(tmp_path):
    data = str(tmp_path / "p.sqlite")
    code, out = run("create", "--name", "x", "--columns", "a:nonsense", "--data", data)
    assert code == 2 and "'nonsense' (column a) is not a type" in out
    code, out = run("create", "--name", "x", "--columns", "a:text", "--row-id", "b", "--data", data)
    assert code == 2 and "'b' is not one of the columns" in out
    code, out = run("create", "--name", "x", "--columns", "bad name:text", "--data", data)
    assert code == 2 and "bad name" in out
    code, out = run("show", "zzzz-zzzz", "--data", data)
    assert code == 1 and "no dataset zzzz-zzzz" in out
    code, out = run("list", "--data", str(tmp_path / "missing.sqlite"))
    assert code == 0 and "No portal" in out


def test_serve_a_real_process(portal_process):
    served = portal_process(faults="503@2")  # `route portal serve --port 0 --user ... --faults 503@2`
    assert served.url.startswith("http://127.0.0.1:")
    ff = served.create(columns=[{"fieldName": "a"}], row_identifier=None, name="x")
    assert served.post(f"/resource/{ff}.json", '[{"a": "1"}]').status_code == 200
    assert served.post(f"/resource/{ff}.json", '[{"a": "2"}]').status_code == 503
    assert served.get(f"/resource/{ff}.json").json() == [{"a": "1"}]
    served.stop()  # SIGTERM
    assert served.returncode == 0, served.stderr
    assert "Stopped." in served.stdout
    assert SECRET not in served.stdout + served.stderr and KEY_SECRET not in served.stdout + served.stderr


def test_serve_refuses_bad_options(tmp_path):
    code, out = run("serve", "--user", "nosecret", "--data", str(tmp_path / "p.sqlite"))
    assert code == 2 and "NAME:SECRET" in out
    code, out = run("serve", "--faults", "boom", "--data", str(tmp_path / "p.sqlite"))
    assert code == 2 and "KIND@N" in out

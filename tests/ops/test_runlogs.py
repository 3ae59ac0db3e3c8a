"""Per-run log files (plain or JSON lines, secrets masked), the JSON report beside the log, and
the log dataset that gets one row per run."""

from __future__ import annotations

import json
import textwrap

from portalkit import SECRET, USER

from pipeline.ops.logdataset import LOG_FIELDS, create_log_dataset
from pipeline.portal import LocalPortal

DATA = "id,amount\n1,10\n2,abc\n3,7\n"


def write_route(folder, extra_rule: str = "", source: str = "data.csv", name: str = "payments"):
    route = folder / f"{name}.yaml"
    route.write_text(
        textwrap.dedent(f"""\
        name: {name}
        source:
          csv: {{path: {source}}}
        source_transforms:
          - cast: {{amount: number}}
        {extra_rule}
        targets:
          - name: out
            deliver:
              csv: {{path: out.csv}}
        """)
    )
    (folder / "data.csv").write_text(DATA)
    return route


def run_id_of(result) -> str:
    return json.loads(result.stdout)["run_id"]


def test_each_run_has_a_plain_log_file_with_secrets_masked(tmp_path, route_cli):
    route = write_route(tmp_path, '  - unattended_plugins:record: {say: "calling the API with ${API_TOKEN}"}')
    result = route_cli("execute", "--json", str(route), env={"API_TOKEN": "tok-9f8e7d"})
    assert result.exit_code == 0, result.output
    run_id = run_id_of(result)
    log = (tmp_path / ".route" / "logs" / f"payments-{run_id}.log").read_text()
    assert "tok-9f8e7d" not in log
    assert "INFO    calling the API with ***" in log
    assert "WARNING something odd\nValueError: calling the API with ***" in log
    lines = log.splitlines()
    assert f"INFO    route payments run {run_id} started route_file={route}" in lines[0]
    assert lines[-1].split(" ", 2)[2] == (
        f"INFO    route payments run {run_id} ended: success; 3 rows read, 1 rejected, 2 delivered in "
        + lines[-1].split(" delivered in ")[1]
    )
    assert f"rejects_file={tmp_path}/.route/rejects/payments-{run_id}.csv" in lines[-1]


def test_json_lines_logs_and_the_masked_error(tmp_path, route_cli):
    (tmp_path / "defaults.yaml").write_text("logs: {format: json}\n")
    route = write_route(tmp_path, source='"${DATA_SECRET}.csv"')
    result = route_cli("execute", "--json", str(route), env={"DATA_SECRET": "hidden-name"})
    assert result.exit_code == 1
    run_id = run_id_of(result)
    records = [
        json.loads(line) for line in (tmp_path / ".route" / "logs" / f"payments-{run_id}.log").read_text().splitlines()
    ]
    assert all(r["route"] == "payments" and r["run_id"] == run_id for r in records)
    assert records[0]["message"] == f"route payments run {run_id} started"
    assert records[0]["route_file"] == str(route)
    last = records[-1]
    assert (last["level"], last["status"], last["rows_read"], last["rows_delivered"]) == ("error", "failed", 0, 0)
    assert "***.csv" in last["error"] and "hidden-name" not in json.dumps(records)


def test_json_report_is_written_next_to_the_log(tmp_path, route_cli):
    route = write_route(tmp_path)
    result = route_cli("execute", "--json", str(route))
    run_id = run_id_of(result)
    rejects = tmp_path / ".route" / "rejects"
    logs = tmp_path / ".route" / "logs"
    assert sorted(p.name for p in rejects.iterdir()) == [f"payments-{run_id}.csv"]
    assert sorted(p.name for p in logs.iterdir()) == [f"payments-{run_id}.json", f"payments-{run_id}.log"]
    report = json.loads((logs / f"payments-{run_id}.json").read_text())
    assert (report["status"], report["rows_read"], report["rows_rejected"], report["rows_delivered"]) == (
        "success",
        3,
        1,
        2,
    )
    assert report["log_file"] == str(tmp_path / ".route" / "logs" / f"payments-{run_id}.log")
    assert report["rejects_file"] == str(rejects / f"payments-{run_id}.csv")
    assert report["notifications"] == [] and report["log_dataset"] is None


def test_old_log_files_are_removed_beyond_keep(tmp_path, route_cli):
    (tmp_path / "defaults.yaml").write_text("logs: {keep: 2}\n")
    route = write_route(tmp_path)
    ids = [run_id_of(route_cli("execute", "--json", str(route))) for _ in range(3)]
    # the two newest runs (runs of one second are told apart by when their log was written), each
    # run's JSON report with its log
    assert sorted(p.name for p in (tmp_path / ".route" / "logs").iterdir()) == sorted(
        f"payments-{i}.{kind}" for i in ids[1:] for kind in ("json", "log")
    )


def test_every_run_adds_a_row_to_the_log_dataset(tmp_path, route_cli, portal):
    dataset = create_log_dataset(portal.url, {"username": USER, "password": SECRET})
    columns = [(c["fieldName"], c["dataTypeName"]) for c in portal.local.view(dataset)["columns"]]
    assert columns == [(f, t) for f, _, t in LOG_FIELDS]
    (tmp_path / "defaults.yaml").write_text(
        textwrap.dedent(f"""\
        socrata:
          domain: {portal.url}
          auth: {{username: {USER}, password: "${{LOG_PASSWORD}}"}}
        log_dataset: {{dataset: {dataset}}}
        """)
    )
    route = write_route(tmp_path)
    ok = route_cli("execute", "--json", str(route), env={"LOG_PASSWORD": SECRET})
    (tmp_path / "data.csv").unlink()
    failed = route_cli("execute", "--json", str(route), env={"LOG_PASSWORD": SECRET})
    rows = {r["run_id"]: r for r in portal.rows(dataset)}
    good, bad = rows[run_id_of(ok)], rows[run_id_of(failed)]
    assert (
        good["route"],
        good["status"],
        good["rows_read"],
        good["rows_created"],
        good["rows_rejected"],
        good["rows_delivered"],
    ) == ("payments", "success", "3", "2", "1", "2")
    assert "error" not in good
    assert good["targets"] == f"out: delivered 2 -> {tmp_path / 'out.csv'}"
    assert bad["status"] == "failed" and "data.csv" in bad["error"]
    assert bad["started"] <= bad["ended"]
    report = json.loads((tmp_path / ".route" / "logs" / f"payments-{run_id_of(ok)}.json").read_text())
    assert report["log_dataset"] == {"dataset": dataset, "ok": True}


def test_a_log_dataset_that_refuses_does_not_fail_the_run(tmp_path, route_cli, portal):
    (tmp_path / "defaults.yaml").write_text(
        textwrap.dedent(f"""\
        log_dataset: {{dataset: none-0000, domain: "{portal.url}", auth: {{username: {USER}, password: wrong}}}}
        """)
    )
    result = route_cli("execute", "--json", str(route := write_route(tmp_path)))
    assert result.exit_code == 0
    run_id = run_id_of(result)
    log = (tmp_path / ".route" / "logs" / f"payments-{run_id}.log").read_text()
    assert (
        f"WARNING could not add this run to the log dataset none-0000: upsert of this run's row: the portal on "
        f"{portal.url} refused the credentials (HTTP 401)"
    ) in log
    assert "wrong" not in log
    assert route.exists()


def test_log_dataset_on_the_embedded_local_portal(tmp_path, route_cli):
    (tmp_path / ".route").mkdir()
    portal = LocalPortal(tmp_path / ".route" / "portal.sqlite")
    dataset = create_log_dataset(None, portal=portal)
    portal.close()
    (tmp_path / "defaults.yaml").write_text(f"log_dataset: {{dataset: {dataset}, domain: local}}\n")
    result = route_cli("execute", "--json", str(write_route(tmp_path)))
    assert result.exit_code == 0
    portal = LocalPortal(tmp_path / ".route" / "portal.sqlite")
    assert [(r["run_id"], r["status"]) for r in portal.rows(dataset)] == [(run_id_of(result), "success")]
    portal.close()

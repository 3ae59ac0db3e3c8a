"""The dashboard over plain HTTP: its JSON endpoints, the rejects download, and the rules that keep
it safe (nothing on a GET, a POST needs the CSRF token and the same origin, Basic auth, --host)."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import urllib.error
import urllib.request

from click.testing import CliRunner
from dashkit import dashboard, project  # noqa: F401  (fixtures)
from polling import wait_until

from pipeline.commands.dashboard import dashboard_command, parse_users
from pipeline.ops.dashboard.app import Dashboard, DashboardServer
from pipeline.ops.dashboard.state import DashboardState, mask_route_text


def call(url, data: bytes | None = None, headers: dict | None = None, method: str | None = None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get_json(url):
    status, _, body = call(url)
    assert status == 200, body
    return json.loads(body)


def csrf_of(base, route="payroll", action="run"):
    status, _, body = call(f"{base}/routes/{route}/confirm?action={action}")
    assert status == 200
    return re.search(r"name='csrf' value='([^']+)'", body.decode()).group(1)


def test_routes_json_says_failing_and_delivered_per_target(dashboard):
    routes = {r["route"]: r for r in get_json(f"{dashboard.url}/api/routes.json")}
    assert routes["broken"]["state"] == "failing"
    assert "every row was rejected" in routes["broken"]["reason"]
    assert routes["payroll"]["last_status"] == "success"
    assert routes["payroll"]["delivered"] == "portal 4, published 4, archive 5"
    assert routes["slow"]["state"] == "not scheduled" and routes["slow"]["last_run"] is None


def test_runs_json_and_a_run_with_its_counts(dashboard):
    runs = get_json(f"{dashboard.url}/api/routes/broken/runs.json")
    assert [r["status"] for r in runs] == ["failed"]
    run = get_json(f"{dashboard.url}/api/runs/{runs[0]['run_id']}.json")
    assert run["rows_read"] == 120 and run["rows_rejected"] == 120 and run["rows_delivered"] == 0
    assert run["targets"][0]["name"] == "out" and run["targets"][0]["status"] == "untouched"
    assert call(f"{dashboard.url}/api/runs/nope.json")[0] == 404
    assert get_json(f"{dashboard.url}/api/running.json")["runs"] == []


def test_rejects_are_paged_filtered_and_downloadable(dashboard):
    run_id = get_json(f"{dashboard.url}/api/routes/broken/runs.json")[0]["run_id"]
    _, _, page = call(f"{dashboard.url}/runs/{run_id}")
    page = page.decode()
    assert "Rejected rows 1\u201350 of 120" in page and "rel='next'" in page
    _, _, page2 = call(f"{dashboard.url}/runs/{run_id}?offset=100")
    assert "Rejected rows 101\u2013120 of 120" in page2.decode()
    _, _, filtered = call(f"{dashboard.url}/runs/{run_id}?q=not-a-date-10")
    filtered = filtered.decode()
    assert "of 6 matching the filter" in filtered  # not-a-date-10, -100, -102, -104, -106, -108
    assert "not-a-date-100" in filtered and "not-a-date-12<" not in filtered
    status, headers, body = call(f"{dashboard.url}/runs/{run_id}/rejects.csv?q=x1")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert "attachment" in headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert rows and all("x1" in r["value"] for r in rows) and {r["column"] for r in rows} == {"n"}
    everything = list(csv.DictReader(io.StringIO(call(f"{dashboard.url}/runs/{run_id}/rejects.csv")[2].decode())))
    assert len(everything) == 120 and {r["column"] for r in everything} == {"n", "d"}


def test_nothing_starts_on_a_get_and_a_post_needs_the_token(dashboard, project):
    base = dashboard.url
    before = len(get_json(f"{base}/api/routes/payroll/runs.json"))
    assert call(f"{base}/routes/payroll/run")[0] == 405  # GET
    assert call(f"{base}/routes/payroll/confirm?action=run")[0] == 200  # the confirmation page only
    assert call(f"{base}/routes/payroll/run", b"action=run", method="POST")[0] == 403  # no token
    assert call(f"{base}/routes/payroll/run", b"action=run&csrf=wrong", method="POST")[0] == 403
    token = csrf_of(base)
    other = {"Origin": "http://evil.example"}
    assert call(f"{base}/routes/payroll/run", f"action=run&csrf={token}".encode(), other, "POST")[0] == 403
    assert call(f"{base}/", b"x", method="POST")[0] == 405
    assert call(f"{base}/routes/payroll/confirm", headers={"Host": "evil.example:8700"})[0] == 403  # rebinding
    assert call(f"{base}/api/routes.json", headers={"Host": f"localhost:{dashboard.port}"})[0] == 200
    assert call(f"{base}/", method="DELETE")[0] == 405
    assert len(get_json(f"{base}/api/routes/payroll/runs.json")) == before
    status, headers, _ = call(f"{base}/routes/payroll/run", f"action=run&csrf={token}".encode(), method="POST")
    assert status == 303 and headers["Location"].startswith("/runs/")
    run_id = headers["Location"].rsplit("/", 1)[1]

    def ended():
        return get_json(f"{base}/api/runs/{run_id}.json")["status"] not in ("starting", "running")

    wait_until(ended, 60, "the run started from the dashboard to end")
    run = get_json(f"{base}/api/runs/{run_id}.json")
    assert run["status"] == "success" and run["rows_read"] == 7 and run["rows_rejected"] == 1
    assert {t["name"]: t["delivered"] for t in run["targets"]} == {"portal": 4, "published": 4, "archive": 5}


def test_a_dry_run_writes_only_its_history_line(dashboard):
    base = dashboard.url
    token = csrf_of(base, action="dry-run")
    status, headers, _ = call(f"{base}/routes/payroll/run", f"action=dry-run&csrf={token}".encode(), method="POST")
    assert status == 303 and headers["Location"] == "/routes/payroll"

    def dry():
        return any(r["status"] == "dry-run" for r in get_json(f"{base}/api/routes/payroll/runs.json"))

    wait_until(dry, 60, "the dry run in the history")


def test_pages_carry_a_strict_policy_and_never_show_secrets(project):
    route = project / "payroll" / "payroll.yaml"
    route.write_text(route.read_text() + "# auth: {username: me, password: hunter2}\n")
    with DashboardServer(Dashboard(DashboardState([project])), "127.0.0.1", 0) as server:
        status, headers, body = call(f"{server.url}/routes/payroll")
    assert status == 200
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"
    assert "hunter2" not in body.decode() and "password: ***" in body.decode()
    assert "Validation:" in body.decode() and "valid (checked offline" in body.decode()
    assert mask_route_text('auth: {password: "${PW}", token: abc}') == 'auth: {password: "${PW}", token: ***}'
    assert mask_route_text("url: postgresql://me:pw@db/x") == "url: postgresql://me:***@db/x"


def test_basic_auth_when_users_are_given(project):
    with DashboardServer(Dashboard(DashboardState([project]), {"admin": "s3cret"}), "127.0.0.1", 0) as server:
        status, headers, _ = call(f"{server.url}/api/routes.json")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
        bad = {"Authorization": "Basic " + base64.b64encode(b"admin:nope").decode()}
        assert call(f"{server.url}/api/routes.json", headers=bad)[0] == 401
        good = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret").decode()}
        assert call(f"{server.url}/api/routes.json", headers=good)[0] == 200


def test_the_command_refuses_another_host_without_a_user(project):
    result = CliRunner().invoke(dashboard_command, [str(project), "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2 and "give --user" in result.output
    result = CliRunner().invoke(dashboard_command, [str(project), "--user", "admin"])
    assert result.exit_code == 2 and "NAME:PASSWORD" in result.output
    assert parse_users(("admin:${DASH_PW}",), {"DASH_PW": "from-env"}) == {"admin": "from-env"}
    result = CliRunner().invoke(dashboard_command, [str(project), "--user", "admin:${NOT_SET_HERE_X}"], env={})
    assert result.exit_code == 2 and "NOT_SET_HERE_X is not set" in result.output
    assert "from-env" not in result.output


def test_the_command_serves_on_loopback_until_stopped(project):
    """`route dashboard DIR --port 0` in its own process: it says where, answers there, stops on SIGINT."""
    import os
    import signal
    import subprocess
    import sys

    code = "from pipeline.commands.dashboard import dashboard_command; dashboard_command()"
    env = dict(os.environ, DASH_PW="pw-from-env-7")
    args = [sys.executable, "-c", code, str(project), "--port", "0", "--user", "admin:${DASH_PW}"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        assert call(f"{url}/api/routes.json")[0] == 401
        auth = {"Authorization": "Basic " + base64.b64encode(b"admin:pw-from-env-7").decode()}
        assert {r["route"] for r in json.loads(call(f"{url}/api/routes.json", headers=auth)[2])} == {
            "payroll",
            "broken",
            "slow",
        }
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "pw-from-env-7" not in line + out + err


def test_a_run_that_cannot_start_says_why(dashboard, project):
    (project / "typo").mkdir()
    (project / "typo" / "typo.csv").write_text("id,town\n1,Avon\n")
    (project / "typo" / "typo.yaml").write_text(
        "name: typo\nsource:\n  csv: {path: typo.csv}\nsource_transforms:\n  - trim: [towm]\n"
        "targets:\n  - name: out\n    deliver:\n      csv: {path: out/typo.csv}\n"
    )
    token = csrf_of(dashboard.url, "typo")
    status, headers, _ = call(f"{dashboard.url}/routes/typo/run", f"action=run&csrf={token}".encode(), method="POST")
    assert status == 303
    run_id = headers["Location"].rsplit("/", 1)[1]

    def told():
        return get_json(f"{dashboard.url}/api/runs/{run_id}.json")["status"] not in ("starting", "running")

    wait_until(told, 60, "the run's outcome")
    run = get_json(f"{dashboard.url}/api/runs/{run_id}.json")
    assert run["status"] == "invalid" and "towm" in run["error"] and "did you mean 'town'" in run["error"]
    page = call(f"{dashboard.url}/runs/{run_id}")[2].decode()
    assert "did not start" in page and "towm" in page

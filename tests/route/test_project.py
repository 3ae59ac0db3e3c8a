"""Projects: defaults.yaml fills what routes leave out, profiles redirect writes, and every problem in
defaults.yaml is reported at its own lines."""

from __future__ import annotations

import textwrap

import pytest

from pipeline.basics.errors import RouteInvalid
from pipeline.basics.plugins import Registry
from pipeline.deliveries.socrata import SocrataDelivery
from pipeline.route.plan import build_plan

SOCRATA_ROUTE = """\
name: cases
source:
  csv: {path: data.csv}
targets:
  - name: portal
    deliver:
      socrata:
        dataset: prod-0001
        mode: upsert
"""


@pytest.fixture
def registry():
    reg = Registry.discover()
    if "socrata" not in reg.names("deliveries"):
        reg.add("deliveries", "socrata", SocrataDelivery)
    return reg


def write(folder, name, text):
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def plan_of(path, registry, env=None, **kw):
    return build_plan(path, variables=env or {}, registry=registry, **kw)


def test_defaults_fill_domain_and_auth_of_a_socrata_delivery(tmp_path, registry):
    write(
        tmp_path,
        "defaults.yaml",
        """\
        socrata:
          domain: https://data.example.gov
          auth: {username: publisher, password: "${SOC_PASSWORD}"}
        """,
    )
    route = write(tmp_path, "cases.yaml", SOCRATA_ROUTE)
    (tmp_path / "data.csv").write_text("id\n1\n")
    plan = plan_of(route, registry, {"SOC_PASSWORD": "s3cret"})
    options = plan.targets[0].delivery.options
    assert options["domain"] == "https://data.example.gov"
    assert options["auth"] == {"username": "publisher", "password": "s3cret"}
    assert plan.run.mask("login s3cret") == "login ***"


def test_project_credentials_never_go_to_a_route_s_other_portal(tmp_path, registry):
    write(
        tmp_path,
        "defaults.yaml",
        """\
        socrata: {domain: data.example.gov, auth: {username: publisher, password: pw}}
        """,
    )
    route = write(
        tmp_path,
        "cases.yaml",
        SOCRATA_ROUTE.replace("dataset: prod-0001", "dataset: prod-0001\n        domain: https://other.example.org"),
    )
    options = plan_of(route, registry).targets[0].delivery.options
    assert options["domain"] == "https://other.example.org"
    assert "auth" not in options


def test_a_route_file_stays_valid_on_its_own(tmp_path, registry):
    route = write(tmp_path, "cases.yaml", SOCRATA_ROUTE)
    plan = plan_of(route, registry)
    assert plan.project is None
    assert plan.targets[0].delivery.options["domain"] == "local"


def test_profile_points_writes_at_the_local_portal(tmp_path, registry):
    from pipeline.ops.runner import run_route
    from pipeline.portal import LocalPortal

    state = tmp_path / "state"
    state.mkdir()
    portal = LocalPortal(state / "portal.sqlite")
    local_id = portal.create_dataset(
        name="Cases",
        columns=[
            {"fieldName": "id", "name": "id", "dataTypeName": "text"},
            {"fieldName": "town", "name": "town", "dataTypeName": "text"},
        ],
        row_identifier="id",
    )
    portal.close()
    write(
        tmp_path,
        "defaults.yaml",
        f"""\
        socrata: {{domain: https://data.example.gov, auth: {{username: publisher, password: "${{SOC_PASSWORD}}"}}}}
        state: state
        profiles:
          test:
            socrata: {{domain: local}}
            datasets: {{prod-0001: {local_id}}}
        """,
    )
    (tmp_path / "data.csv").write_text("id,town\n1,Hartford\n2,Salem\n")
    route = write(tmp_path, "cases.yaml", SOCRATA_ROUTE)
    report = run_route(route, variables={"SOC_PASSWORD": "pw"}, registry=registry, quiet=True, profile="test")
    assert report.status == "success", report.error
    assert report.targets[0].delivered == 2
    portal = LocalPortal(state / "portal.sqlite")
    assert sorted(r["town"] for r in portal.rows(local_id)) == ["Hartford", "Salem"]
    portal.close()
    # without the profile the same route would write to the production portal
    assert (
        plan_of(route, registry, {"SOC_PASSWORD": "pw"}).targets[0].delivery.options["domain"]
        == "https://data.example.gov"
    )


def test_problems_in_defaults_are_reported_at_defaults_lines(tmp_path, route_cli):
    write(
        tmp_path,
        "defaults.yaml",
        """\
        stat: /var/lib/route
        notify:
          - email: {to: ops@example.gov}
            on: [failure, sometimes]
        """,
    )
    write(
        tmp_path,
        "a.yaml",
        "name: a\nsource: {csv: {path: d.csv}}\ntargets: [{name: t, deliver: {csv: {path: o.csv}}}]\n",
    )
    result = route_cli("validate", str(tmp_path / "a.yaml"))
    assert result.exit_code == 2
    d = tmp_path / "defaults.yaml"
    assert result.stderr.splitlines() == [
        f"{d}:1:1: stat: unknown key 'stat'; did you mean 'state'?",
        f"{d}:3:12: notify[0].email: missing required key 'host'",
        f"{d}:4:19: notify[0].on[1]: 'sometimes' is not one of: failure, rejects, stale, recovery, success",
    ]


def test_a_bad_shared_value_is_reported_where_it_is_written(tmp_path, registry):
    write(
        tmp_path,
        "defaults.yaml",
        """\
        # shared by every route of this folder
        socrata:
          domain: http://data.example.gov
        """,
    )
    route = write(tmp_path, "cases.yaml", SOCRATA_ROUTE)
    with pytest.raises(RouteInvalid) as err:
        plan_of(route, registry)
    d = tmp_path / "defaults.yaml"
    assert str(err.value) == (
        f"{d}:3:11: socrata.domain: 'http://data.example.gov' uses plain http: use https:// (plain http is only "
        f"allowed for a portal on this machine, such as 127.0.0.1) (used by {route} at targets[0].deliver.socrata.domain)"
    )


def test_a_missing_variable_in_defaults_matters_only_where_it_is_used(tmp_path, registry):
    write(
        tmp_path,
        "defaults.yaml",
        """\
        socrata:
          auth: {username: publisher, password: "${SOC_PASSWORD}"}
        """,
    )
    csv_route = write(
        tmp_path,
        "files.yaml",
        "name: files\nsource: {csv: {path: d.csv}}\ntargets: [{name: t, deliver: {csv: {path: o.csv}}}]\n",
    )
    plan_of(csv_route, registry)  # no socrata: the password is not needed
    with pytest.raises(RouteInvalid) as err:
        plan_of(write(tmp_path, "cases.yaml", SOCRATA_ROUTE), registry)
    assert str(err.value) == (
        f"{tmp_path / 'defaults.yaml'}:2:41: socrata.auth.password: variable ${{SOC_PASSWORD}} "
        f"is not set: export SOC_PASSWORD=... or pass --set SOC_PASSWORD=... "
        f"(used by {tmp_path / 'cases.yaml'} at targets[0].deliver.socrata.auth.password)"
    )


def test_unknown_profile_names_the_known_ones(tmp_path, route_cli):
    write(tmp_path, "defaults.yaml", "profiles:\n  test: {state: .route-test}\n  staging: {}\n")
    write(
        tmp_path,
        "a.yaml",
        "name: a\nsource: {csv: {path: d.csv}}\ntargets: [{name: t, deliver: {csv: {path: o.csv}}}]\n",
    )
    write(tmp_path, "d.csv", "id\n1\n")
    result = route_cli("validate", "--profile", "tets", str(tmp_path / "a.yaml"))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{tmp_path / 'defaults.yaml'}:1:1: profiles: --profile tets is not defined here "
        f"(profiles: test, staging); did you mean 'test'?"
    )
    assert route_cli("validate", "--profile", "test", str(tmp_path / "a.yaml")).exit_code == 0


def test_profile_without_defaults_file(tmp_path, route_cli, registry):
    route = write(
        tmp_path,
        "cases.yaml",
        SOCRATA_ROUTE.replace("dataset: prod-0001", "dataset: prod-0001\n        domain: data.example.gov"),
    )
    assert plan_of(route, registry, profile="local").targets[0].delivery.options["domain"] == "local"
    result = route_cli("validate", "--profile", "test", str(route))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: --profile test: there is no defaults.yaml in {tmp_path} to define it (built-in profiles: local)"
    )


def test_state_notify_and_timezone_come_from_the_project_and_the_route_wins(tmp_path, registry):
    write(
        tmp_path,
        "defaults.yaml",
        """\
        state: ../shared-state
        timezone: America/New_York
        notify: [{webhook: {url: "https://hooks.example.gov/team"}}]
        profiles:
          quiet: {notify: []}
        """,
    )
    plain = write(
        tmp_path,
        "a.yaml",
        "name: a\nsource: {csv: {path: d.csv}}\ntargets: [{name: t, deliver: {csv: {path: o.csv}}}]\n",
    )
    own = write(
        tmp_path,
        "b.yaml",
        "name: b\nschedule: '0 6 * * *'\ntimezone: UTC\nsource: {csv: {path: d.csv}}\n"
        "targets: [{name: t, deliver: {csv: {path: o.csv}}}]\n"
        "notify: {email: {to: me@example.gov, host: smtp.example.gov}}\n",
    )
    a = plan_of(plain, registry)
    assert a.run.state_dir == (tmp_path.parent / "shared-state").resolve()
    assert a.raw["notify"] == [{"webhook": {"url": "https://hooks.example.gov/team"}}]
    assert a.raw["timezone"] == "America/New_York"
    b = plan_of(own, registry)
    assert b.raw["notify"] == {"email": {"to": "me@example.gov", "host": "smtp.example.gov"}}
    assert b.timezone == "UTC"
    assert plan_of(own, registry, profile="quiet").raw["notify"] == []
    assert plan_of(plain, registry, state_dir=tmp_path / "cli-state").run.state_dir == tmp_path / "cli-state"


def test_notify_target_needs_exactly_one_kind(tmp_path, route_cli):
    route = write(
        tmp_path,
        "a.yaml",
        """\
        name: a
        source: {csv: {path: d.csv}}
        targets: [{name: t, deliver: {csv: {path: o.csv}}}]
        notify:
          - on: [failure]
          - email: {to: me@example.gov, host: smtp.example.gov}
            webhook: {url: "https://hooks.example.gov/x"}
            rejects_over: 5 percent
        """,
    )
    result = route_cli("validate", str(route))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{route}:5:5: notify[0]: a notify target needs `email: {{to: ..., host: ...}}` or `webhook: {{url: ...}}`",
        f"{route}:7:5: notify[1].webhook: a notify target is either email or webhook: start a new list item with "
        f"'-' for the other",
        f"{route}:8:19: notify[1].rejects_over: expected a whole number or a text such as \"1%\", got '5 percent'",
    ]

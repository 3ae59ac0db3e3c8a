"""`route portal list|show --domain URL` and `route metadata pull`: a portal on the network read with
credentials from the options or the environment, never printed."""

from __future__ import annotations

from portalkit import KEY_ID, KEY_SECRET, SECRET, USER


def test_list_and_show_read_a_portal_by_its_address(route_cli, portal):
    ds = portal.create(name="Code cases")
    portal.post(f"/resource/{ds}.json", [{"case_id": "A-1"}, {"case_id": "A-2"}]).raise_for_status()
    listed = route_cli("portal", "list", "--domain", portal.url, "--username", USER, "--password", SECRET)
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == ["id         cols  name", f"{ds}     5  Code cases"]
    shown = route_cli(
        "portal",
        "show",
        ds,
        "--domain",
        portal.url,
        env={"SOCRATA_API_KEY_ID": KEY_ID, "SOCRATA_API_KEY_SECRET": KEY_SECRET},
    )
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == f"{ds}  Code cases"
    assert lines[1] == "  2 rows, published, public"
    assert "    case_id                  text           Case ID  (row identifier)" in lines
    assert SECRET not in listed.output + shown.output and KEY_SECRET not in shown.output


def test_a_dataset_that_is_not_there_and_half_a_credential_are_said_plainly(route_cli, portal):
    missing = route_cli("portal", "show", "zzzz-9999", "--domain", portal.url, "--username", USER, "--password", SECRET)
    assert missing.exit_code == 1
    assert "zzzz-9999" in missing.stderr and "Traceback" not in missing.output
    half = route_cli("portal", "list", "--domain", portal.url, "--username", USER)
    assert half.exit_code == 2
    assert "give a username with its password, or an API key id with its secret" in half.stderr
    bad = route_cli("portal", "show", "not-an-id", "--domain", portal.url)
    assert bad.exit_code == 2
    assert "'not-an-id' is not a dataset id" in bad.stderr

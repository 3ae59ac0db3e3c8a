"""Dataset metadata as code (issue 14): a socrata target's `metadata:` block, through real
`route execute` runs against the local portal served on 127.0.0.1, checked by what the portal
serves back in /api/views/{4x4}.json (read with plain requests, as sodapy's get_metadata does), and
`route metadata pull` back to the same block."""

from __future__ import annotations

import json
import textwrap

import pytest
import requests
import yaml
from click.testing import CliRunner
from portalkit import SECRET, USER

from pipeline.commands.metadata import metadata_group

COLUMNS = [
    {"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
    {"fieldName": "status", "name": "Status", "dataTypeName": "text"},
    {"fieldName": "amount", "name": "Amount", "dataTypeName": "number"},
]
ROWS = "case_id,status,amount\nC-1,open,5\nC-2,closed,7.5\n"

BEFORE = """\
name: Code enforcement cases
description: Cases opened by the city.
category: Housing
tags: [housing, code]
license: CC0_10
attribution: City of Hartford
attribution_link: https://www.hartfordct.gov
contact_email: data@hartfordct.gov
row_label: Case
custom_fields:
  Dataset Information: {Agency: Licenses and Inspections, Update Frequency: Daily}
public: true
columns:
  case_id: {display_name: Case ID, description: The case number, position: 1}
  status: {display_name: Status, description: Open or closed, position: 2}
  amount: {display_name: Amount, description: The fine in dollars, position: 3}
"""

# What the next run's route says instead: a new description, tags, one column's description
# and display name.
AFTER = (
    BEFORE.replace("description: Cases opened by the city.", "description: Every case since 2020, updated daily.")
    .replace("tags: [housing, code]", "tags: [housing, code enforcement, fines]")
    .replace(
        "amount: {display_name: Amount, description: The fine in dollars, position: 3}",
        "amount: {display_name: Fine amount, description: The fine in US dollars, position: 3}",
    )
)


TIMES = ("viewLastModified", "rowsUpdatedAt")  # when the view and the rows last changed


def route_text(portal, dataset: str, block: str, mode: str = "upsert") -> str:
    target = textwrap.indent(
        portal.target(dataset) + f"mode: {mode}\nmetadata:\n" + textwrap.indent(block, "  "), " " * 8
    )
    return f"name: cases\nsource:\n  csv: {{path: rows.csv}}\ntargets:\n  - name: portal\n    deliver:\n      socrata:\n{target}"


def views_json(portal, dataset: str, auth=True) -> dict:
    """GET /api/views/{4x4}.json with plain requests, as sodapy's get_metadata sends it."""
    r = requests.get(f"{portal.url}/api/views/{dataset}.json", auth=(USER, SECRET) if auth else None, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def pull(portal, dataset: str, *extra: str):
    return CliRunner().invoke(
        metadata_group,
        ["pull", dataset, "--domain", portal.url, *extra],
        env={"SOCRATA_USERNAME": USER, "SOCRATA_PASSWORD": SECRET},
        catch_exceptions=False,
    )


def execute(route_cli, path, *args):
    return route_cli("execute", str(path), "--set", f"PORTAL_PW={SECRET}", *args)


def without(view: dict, *keys: str) -> dict:
    """The views JSON minus top-level keys and (as "columns.<field>.<key>") column keys."""
    out = {k: v for k, v in view.items() if k not in keys}
    out["columns"] = [
        {k: v for k, v in c.items() if f"columns.{c['fieldName']}.{k}" not in keys} for c in view["columns"]
    ]
    return out


def test_changes_reach_the_portal_and_nothing_else_changes(portal, route_cli, write_route):
    ds = portal.create(COLUMNS)
    route = write_route(route_text(portal, ds, BEFORE), **{"rows.csv": ROWS})
    first = execute(route_cli, route)
    assert first.exit_code == 0, first.output
    view = views_json(portal, ds)
    assert (view["name"], view["description"], view["category"]) == (
        "Code enforcement cases",
        "Cases opened by the city.",
        "Housing",
    )
    assert view["tags"] == ["housing", "code"]
    assert view["licenseId"] == "CC0_10" and view["license"]["name"].startswith("Creative Commons 1.0")
    assert (view["attribution"], view["attributionLink"]) == ("City of Hartford", "https://www.hartfordct.gov")
    assert view["privateMetadata"]["contactEmail"] == "data@hartfordct.gov"
    assert view["metadata"]["rowLabel"] == "Case"
    assert view["metadata"]["custom_fields"] == {
        "Dataset Information": {"Agency": "Licenses and Inspections", "Update Frequency": "Daily"}
    }
    assert view["metadata"]["rowIdentifier"] == view["rowIdentifierColumnId"]  # kept
    assert {"type": "viewer", "flags": ["public"], "inherited": False} in view["grants"]
    amount = next(c for c in view["columns"] if c["fieldName"] == "amount")
    assert (amount["name"], amount["description"], amount["position"]) == ("Amount", "The fine in dollars", 3)
    assert len(portal.rows(ds)) == 2  # and the rows went too
    # Anonymous readers do not see private metadata.
    assert "privateMetadata" not in views_json(portal, ds, auth=False)

    route.write_text(route_text(portal, ds, AFTER))
    second = execute(route_cli, route, "--json")
    assert second.exit_code == 0, second.output
    after = views_json(portal, ds)
    assert after["description"] == "Every case since 2020, updated daily."
    assert after["tags"] == ["housing", "code enforcement", "fines"]
    amount = next(c for c in after["columns"] if c["fieldName"] == "amount")
    assert (amount["name"], amount["description"]) == ("Fine amount", "The fine in US dollars")
    # (The rows were sent again too: rowsUpdatedAt may move on.)
    changed = ("description", "tags", "columns.amount.name", "columns.amount.description", *TIMES)
    assert without(after, *changed) == without(view, *changed)
    report = json.loads(second.stdout)
    target = report["targets"][0]
    assert target["details"]["metadata"] == {
        "applied": True,
        "changes": [
            {"what": "description", "from": "Cases opened by the city.", "to": "Every case since 2020, updated daily."},
            {"what": "tags", "from": ["housing", "code"], "to": ["housing", "code enforcement", "fines"]},
            {"what": "column amount: display name", "from": "Amount", "to": "Fine amount"},
            {"what": "column amount: description", "from": "The fine in dollars", "to": "The fine in US dollars"},
        ],
    }

    # The summary says what changed; a run with nothing to change sends no metadata request.
    route.write_text(route_text(portal, ds, AFTER.replace("Daily}", "Weekly}")))
    third = execute(route_cli, route)
    assert third.exit_code == 0, third.output
    assert "metadata updated: custom field Dataset Information: Update Frequency" in " ".join(third.stdout.split())
    writes = portal.writes
    fourth = execute(route_cli, route)
    assert fourth.exit_code == 0 and "metadata updated" not in fourth.output
    assert portal.writes == writes + 1  # the upsert only

    # Round trip: `route metadata pull` gives back the block the route says.
    pulled = pull(portal, ds)
    assert pulled.exit_code == 0, pulled.output
    assert SECRET not in pulled.output
    assert yaml.safe_load(pulled.stdout) == {"metadata": yaml.safe_load(AFTER.replace("Daily}", "Weekly}"))}
    # ... and pasted into the route, it changes nothing.
    route.write_text(route_text(portal, ds, textwrap.dedent(pulled.stdout.split("metadata:\n", 1)[1])))
    again = execute(route_cli, route, "--json")
    assert again.exit_code == 0, again.output
    assert "metadata" not in json.loads(again.stdout)["targets"][0]["details"]


def test_keys_not_named_are_left_alone(portal, route_cli, write_route):
    ds = portal.create(COLUMNS)
    set_by_hand = {
        "description": "Written on the portal.",
        "attribution": "Someone else",
        "metadata": {"custom_fields": {"Other": {"Kept": "yes"}, "Dataset Information": {"Agency": "Old"}}},
        "privateMetadata": {"contactEmail": "hand@example.org", "custom_fields": {"Internal": {"Owner": "ops"}}},
    }
    assert portal.put(f"/api/views/{ds}.json", set_by_hand).status_code == 200
    portal.put(f"/api/views/{ds}/columns/{views_json(portal, ds)['columns'][1]['id']}.json", {"description": "hand"})
    before = views_json(portal, ds)
    block = "custom_fields: {Dataset Information: {Agency: New}}\nrow_label: Case\n"
    route = write_route(route_text(portal, ds, block), **{"rows.csv": ROWS})
    result = execute(route_cli, route)
    assert result.exit_code == 0, result.output
    after = views_json(portal, ds)
    assert after["metadata"]["custom_fields"] == {"Other": {"Kept": "yes"}, "Dataset Information": {"Agency": "New"}}
    assert after["metadata"]["rowLabel"] == "Case"
    assert after["privateMetadata"] == set_by_hand["privateMetadata"]
    assert without(after, "metadata", *TIMES) == without(before, "metadata", *TIMES)


def test_positions_and_private(portal, route_cli, write_route):
    ds = portal.create(COLUMNS)
    block = "public: false\ncolumns:\n  amount: {position: 1}\n"
    route = write_route(route_text(portal, ds, block), **{"rows.csv": ROWS})
    result = execute(route_cli, route)
    assert result.exit_code == 0, result.output
    view = views_json(portal, ds)
    assert [(c["fieldName"], c["position"]) for c in view["columns"]] == [("amount", 1), ("case_id", 2), ("status", 3)]
    assert view["grants"] == []
    anonymous = requests.get(f"{portal.url}/api/views/{ds}.json", timeout=30)
    assert anonymous.status_code == 403


def test_dry_run_changes_nothing_and_shows_the_differences(portal, route_cli, write_route):
    ds = portal.create(COLUMNS)
    route = write_route(route_text(portal, ds, BEFORE), **{"rows.csv": ROWS})
    assert execute(route_cli, route).exit_code == 0
    before = views_json(portal, ds)
    route.write_text(route_text(portal, ds, AFTER))
    writes = portal.writes
    dry = execute(route_cli, route, "--dry-run")
    assert dry.exit_code == 0, dry.output
    shown = " ".join(dry.stdout.split())
    assert "update its metadata: description, tags, column amount: display name, column amount: description" in shown, (
        dry.output
    )
    assert portal.writes == writes
    assert views_json(portal, ds) == before
    report = json.loads(execute(route_cli, route, "--dry-run", "--json").stdout)
    meta = report["targets"][0]["details"]["metadata"]
    assert meta["applied"] is False and [c["what"] for c in meta["changes"]][:2] == ["description", "tags"]
    assert views_json(portal, ds) == before


def test_a_misspelt_key_is_an_error_at_its_line(portal, route_cli, write_route):
    ds = portal.create(COLUMNS)
    route = write_route(route_text(portal, ds, "descripton: x\n"), **{"rows.csv": ROWS})
    result = execute(route_cli, route)
    assert result.exit_code == 2
    line = next(i for i, text in enumerate(route.read_text().splitlines(), 1) if "descripton" in text)
    assert f"route.yaml:{line}:11: " in result.output and "did you mean 'description'" in result.output, result.output
    route.write_text(route_text(portal, ds, "columns:\n  amount: {display_nam: Fine}\n"))
    result = execute(route_cli, route)
    line = next(i for i, text in enumerate(route.read_text().splitlines(), 1) if "display_nam" in text)
    assert result.exit_code == 2 and f"route.yaml:{line}:" in result.output and "display_name" in result.output
    # What the schema cannot say is also at its line.
    route.write_text(route_text(portal, ds, "attribution_link: www.example.org\n"))
    result = execute(route_cli, route)
    line = next(i for i, text in enumerate(route.read_text().splitlines(), 1) if "www.example.org" in text)
    assert result.exit_code == 2 and f"route.yaml:{line}:" in result.output and "not a link" in result.output
    route.write_text(route_text(portal, ds, "columns:\n  status: {position: 1}\n  amount: {position: 1}\n"))
    result = execute(route_cli, route)
    line = next(i for i, text in enumerate(route.read_text().splitlines(), 1) if "amount: {position" in text)
    assert result.exit_code == 2 and f"route.yaml:{line}:" in result.output
    assert "position 1 is given to both status and amount" in result.output
    assert portal.rows(ds) == []


def test_a_column_the_dataset_does_not_have_stops_the_run_before_any_row(portal, route_cli, write_route):
    ds = portal.create(COLUMNS)
    route = write_route(route_text(portal, ds, "columns:\n  amuont: {description: x}\n"), **{"rows.csv": ROWS})
    result = execute(route_cli, route)
    assert result.exit_code == 1
    assert "the dataset has no column amuont (its columns: case_id, status, amount)" in result.output
    assert portal.rows(ds) == []


def test_create_gives_the_new_dataset_the_block(portal, route_cli, write_route):
    create = textwrap.indent(BEFORE.replace("name: Code enforcement cases", "name: Made by route"), "  ")
    text = route_text(portal, None, "row_label: Case\n").replace(
        "        metadata:\n",
        f"        row_identifier: case_id\n        create:\n{textwrap.indent(create, ' ' * 8)}        metadata:\n",
    )
    route = write_route(text, **{"rows.csv": ROWS})
    result = execute(route_cli, route, "--json")
    assert result.exit_code == 0, result.output
    ds = json.loads(result.stdout)["targets"][0]["details"]["dataset"]
    pulled = yaml.safe_load(pull(portal, ds).stdout)["metadata"]
    assert pulled == yaml.safe_load(BEFORE.replace("name: Code enforcement cases", "name: Made by route"))
    assert len(portal.rows(ds)) == 2


def test_pull_says_what_is_wrong(portal):
    ds = portal.create(COLUMNS)
    bad = CliRunner().invoke(
        metadata_group, ["pull", ds, "--domain", portal.url, "--username", USER, "--password", "nope-Wr0ng"]
    )
    assert bad.exit_code == 1 and "nope-Wr0ng" not in bad.output and "401" in bad.output
    assert CliRunner().invoke(metadata_group, ["pull", "abcd", "--domain", portal.url]).exit_code == 2
    missing = pull(portal, "zzzz-9999")
    assert missing.exit_code == 1 and "zzzz-9999" in missing.output


def test_sodapy_sees_what_the_route_declared(portal, route_cli, write_route):
    """sodapy, unchanged, reading the dataset's metadata and rows from the portal the route wrote."""
    import warnings

    sodapy = pytest.importorskip("sodapy")
    from requests.adapters import HTTPAdapter

    ds = portal.create(COLUMNS)
    route = write_route(route_text(portal, ds, AFTER), **{"rows.csv": ROWS})
    assert execute(route_cli, route).exit_code == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = sodapy.Socrata(
            portal.domain,
            None,
            username=USER,
            password=SECRET,
            session_adapter={"prefix": "http://", "adapter": HTTPAdapter()},
        )
    try:
        meta = client.get_metadata(ds)
        rows = client.get(ds, order=":id")
    finally:
        client.close()
    assert meta["description"] == "Every case since 2020, updated daily."
    assert meta["tags"] == ["housing", "code enforcement", "fines"]
    assert meta["metadata"]["custom_fields"]["Dataset Information"]["Update Frequency"] == "Daily"
    amount = next(c for c in meta["columns"] if c["fieldName"] == "amount")
    assert (amount["name"], amount["description"]) == ("Fine amount", "The fine in US dollars")
    assert [(r["case_id"], r["amount"]) for r in rows] == [("C-1", "5"), ("C-2", "7.5")]

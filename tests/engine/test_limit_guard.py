"""`--limit` reads part of the source: a replace must not leave the dataset with only that part."""

from __future__ import annotations

import json

ROUTE = """
    name: guard
    source:
      csv: {path: data.csv}
    targets:
      - name: portal
        deliver:
          socrata:
            mode: replace
            create: {name: Guarded}
"""


def test_limit_with_a_replace_stops_before_sending(route_cli, write_route):
    path = write_route(ROUTE, **{"data.csv": "id,town\n1,Hartford\n2,Avon\n3,Salem\n"})
    assert route_cli("execute", str(path)).exit_code == 0
    result = route_cli("execute", "--limit", "1", "--json", str(path))
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (
        "--limit reads only the first 1 rows, and a replace would leave the dataset with only those" in report["error"]
    )
    # the dataset still has its three rows: read them back through the portal's own tool
    listing = route_cli("portal", "list", "--state", str(path.parent / ".route")).stdout
    assert "Guarded" in listing and " 3 " in listing
    assert route_cli("execute", "--limit", "1", "--dry-run", str(path)).exit_code == 0


def test_history_json_has_per_target_counts_and_ids(route_cli, write_route):
    path = write_route(
        ROUTE.replace("mode: replace", "mode: upsert\n            row_identifier: id"),
        **{"data.csv": "id,town\n1,Hartford\n2,Avon\n"},
    )
    assert route_cli("execute", str(path)).exit_code == 0
    runs = json.loads(route_cli("history", str(path), "--json").stdout)
    target = runs[0]["targets"][0]
    assert (target["name"], target["status"], target["created"], target["delivered"]) == ("portal", "delivered", 2, 2)
    assert target["details"]["request_ids"]

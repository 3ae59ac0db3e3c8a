"""A plugin's own tests: the conformance kits from pipeline.api check the rule and the source keep
route's contracts (run with `python -m pytest examples/route-rules-example/tests`)."""

import pandas as pd
from route_rules_example.rules import fix_town
from route_rules_example.sources import FixedWidthSource

from pipeline.api import TEXT, check_rule, check_source

TOWNS = "NO  TOWN\n001 hartford\n002 W HARTFORD\n003 NEW HAVEN CITY OF CONNECTICUT\n004 ansonia\n"
OPTIONS = {"path": "towns.txt", "skip_rows": 1, "fields": {"code": 4, "town": 12}}


def test_fixed_width_keeps_the_source_contract():
    read = check_source(
        FixedWidthSource, OPTIONS, empty={**OPTIONS, "path": "empty.txt"}, files={"towns.txt": TOWNS, "empty.txt": ""}
    )
    assert read.output["town"].tolist() == ["hartford", "W HARTFORD", "ansonia"]
    assert read.output.index.tolist() == [2, 3, 5]  # the line numbers
    assert read.rejected == 1  # line 4 is longer than the fields


def test_fix_town_keeps_the_rule_contract():
    sample = pd.DataFrame({"town": pd.Series([" hartford", "W HARTFORD", None, "Gotham"], dtype=TEXT)})
    result = check_rule(
        fix_town, {"column": "town", "unknown": "reject", "towns": ["Hartford", "West Hartford"]}, sample
    )
    assert result.output["town"].fillna("(none)").tolist() == ["Hartford", "West Hartford", "(none)"]
    assert result.rejected == 1

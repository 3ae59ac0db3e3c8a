"""`route rules`: one entry per rule, source and delivery, with the first sentence of its description
whole, wrapped to the terminal's width with no word cut; `route rules NAME` shows all of it."""

from __future__ import annotations

import inspect
import re

import pytest

from pipeline.basics.plugins import Registry

KINDS = {"Rules:": "rules", "Sources:": "sources", "Deliveries:": "deliveries"}


def entries(stdout: str) -> dict[tuple[str, str], list[str]]:
    """(kind, name) -> the lines of its entry, as `route rules` printed them."""
    found: dict[tuple[str, str], list[str]] = {}
    kind = key = None
    for line in stdout.splitlines():
        if line in KINDS:
            kind, key = KINDS[line], None
        elif kind and re.match(r"  \S", line):
            key = (kind, line.split()[0])
            found[key] = [line]
        elif key and line.startswith("   "):
            found[key].append(line)
        else:
            kind = key = None
    return found


def documented(kind: str, name: str) -> str:
    """The first paragraph of the component's description, on one line."""
    doc = inspect.getdoc(Registry.discover().load(kind, name)) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())


@pytest.mark.parametrize("columns", [100, 60])
def test_every_description_starts_with_a_whole_sentence_within_the_width(route_cli, columns):
    result = route_cli("rules", env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    shown = entries(result.stdout)
    registry = Registry.discover()
    assert set(shown) == {(kind, name) for kind in KINDS.values() for name in registry.names(kind)}
    for (kind, name), lines in shown.items():
        for n, line in enumerate(lines):
            # a line goes past the width only when it holds one word wider than the room left
            assert len(line) <= columns or len(line.split()) == (2 if n == 0 else 1), line
        text = " ".join(" ".join(lines).split()[1:])
        text = re.sub(r"^\[[\w.-]+\] ", "", text)  # a plugin's distribution
        assert documented(kind, name).startswith(text), f"{name}: {text!r} is not its description's start"
        assert text.endswith((".", ")", '"')), f"{name}: {text!r} ends mid-sentence"


def test_the_first_sentence_is_shown_whole_and_stops_there(route_cli):
    shown = entries(route_cli("rules", env={"COLUMNS": "100"}).stdout)
    assert shown[("rules", "concat")] == ["  concat           Join several columns into one with a separator."]
    # "e.g. to strip" does not end the sentence
    assert shown[("rules", "regex_replace")] == [
        "  regex_replace    Replace every match of a regular expression, e.g. to strip what is not a digit",
        "                   from phone numbers.",
    ]
    # a long first sentence goes on, on lines of whole words, to its end
    assert (
        shown[("rules", "aggregate")][-1]
        == "                   non-null values, and a sum or mean of no values is null."
    )


def test_a_plugin_names_its_distribution_on_the_line_of_its_name(route_cli, example_plugin_installed):
    shown = entries(route_cli("rules", env={"COLUMNS": "60"}).stdout)
    assert shown[("rules", "fix_town")][0].split()[:2] == ["fix_town", "[route-rules-example]"]
    assert shown[("sources", "fixed_width")][0].split()[:2] == ["fixed_width", "[route-rules-example]"]


def test_a_terminal_too_narrow_is_wrapped_as_40_columns(route_cli):
    result = route_cli("rules", env={"COLUMNS": "12"})
    assert result.exit_code == 0
    assert entries(result.stdout)[("deliveries", "csv")] == [
        "  csv              Write the rows to a",
        "                   CSV file (header",
        "                   line, quoted where",
        "                   needed, ISO dates),",
        "                   atomically.",
    ]


def test_route_rules_name_shows_the_whole_description(route_cli):
    result = route_cli("rules", "regex_replace", env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    paragraph = " ".join(result.stdout.split("\n\n")[1].split())
    assert paragraph == documented("rules", "regex_replace")
    assert paragraph.endswith("`replacement` may refer to groups as \\1, \\2.")
    assert "its whole description" in route_cli("rules").stdout.splitlines()[-1]

"""The documentation stays true to the code: the generated reference and the README's commands."""

from __future__ import annotations

from pathlib import Path

from pipeline.basics.plugins import Registry
from pipeline.commands.refdoc import render

ROOT = Path(__file__).resolve().parents[1]


def test_reference_matches_the_schemas():
    expected = render(Registry.discover())
    actual = (ROOT / "docs/reference.md").read_text(encoding="utf-8")
    assert actual == expected, (
        "docs/reference.md is stale: run `python -m pipeline.commands.refdoc > docs/reference.md`"
    )


def test_every_builtin_component_has_an_example():
    registry = Registry.discover()
    for kind in ("rules", "sources", "deliveries"):
        for entry in registry.entries(kind):
            if entry.distribution not in (None, "route-etl"):
                continue
            doc = registry.load(kind, entry.name).__doc__ or ""
            assert "Example" in doc or "```yaml" in doc, f"{kind} {entry.name} has no YAML example in its docstring"


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = readme.index("pip install -e '.[all]' && route execute routes/payroll/payroll.yaml")
    second = readme.index("pip install -e '.[test]' -e examples/route-rules-example && python -m pytest -q")
    assert first < second < readme.index("## A route file")
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    assert "python3 -m pytest -q" in ci and '-e ".[test]" -e examples/route-rules-example' in ci

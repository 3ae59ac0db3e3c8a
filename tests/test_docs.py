"""The documentation stays true to the code: the generated reference, the README's commands, and
every file a document points at."""

from __future__ import annotations

import glob
import re
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


# What a document points at: the README and docs/*.md, with their fenced code blocks left out (they
# show commands and route files, whose paths are the reader's own).
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FOLDERS = sorted({p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")} | {".ci"})
REPOSITORY_PATH = re.compile(rf"^(?:{'|'.join(map(re.escape, FOLDERS))})/")
# A route's run makes these beside the route file; the route's own folder must exist
# (tests/test_readme_commands.py checks that the README's run makes the ones it names).
MADE_BY_A_RUN = {".route", "out"}


def _prose(text: str) -> str:
    """The text with fenced code blocks blanked out, line numbers kept."""
    return re.sub(r"^```.*?^```", lambda m: "\n" * m.group().count("\n"), text, flags=re.S | re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_slug(h) for h in re.findall(r"^#+\s+(.*)$", _prose(path.read_text(encoding="utf-8")), re.M)}


def _missing(document: Path, target: str, link: bool = False) -> str | None:
    """Why `target`, as `document` names it, is not in the repository (None when it is). A link is
    relative to the document's folder; a path in the text may also be relative to the repository."""
    name, _, anchor = target.partition("#")
    if any(c in name for c in "*?["):
        return None if glob.glob(str(ROOT / name)) else "matches no file"
    candidates = [document.parent / name] + ([] if link else [ROOT / name]) if name else [document]
    found = next((c for c in candidates if c.exists()), None)
    if found is None:
        parts = Path(name).parts
        made = next((i for i, part in enumerate(parts) if part in MADE_BY_A_RUN), None)
        if made and REPOSITORY_PATH.match(name) and (ROOT / Path(*parts[:made])).is_dir():
            return None
        return "is not in the repository"
    if anchor and found.suffix == ".md" and anchor not in _anchors(found):
        return f"has no heading #{anchor}"
    return None


def _pointers(markdown: str) -> list[tuple[int, str, bool]]:
    """(line, target, is a link) for every relative link, every backticked repository path and
    every .md file named in the prose of a document."""
    text = _prose(markdown)
    found = []

    def add(offset: int, target: str, link: bool = False) -> None:
        found.append((text.count("\n", 0, offset) + 1, target, link))

    for m in re.finditer(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z][a-z0-9+.-]*:", m.group(1)):
            add(m.start(1), m.group(1), link=True)
    for m in re.finditer(r"`([^`\n]+)`", text):
        for token in m.group(1).split():
            token = token.strip("()[],;:'\"")
            if REPOSITORY_PATH.match(token) or token.endswith(".md"):
                add(m.start(1), token)
    outside = re.sub(r"`[^`\n]*`|\]\([^)]*\)|https?://\S+", lambda m: " " * len(m.group()), text)
    for m in re.finditer(r"(?<![\w/.-])([\w./-]+\.md)\b", outside):
        add(m.start(1), m.group(1))
    return found


def test_every_file_a_document_points_at_is_in_the_repository():
    wrong = [
        f"{doc.relative_to(ROOT)}:{line}: {target} {why}"
        for doc in DOCUMENTS
        for line, target, link in _pointers(doc.read_text(encoding="utf-8"))
        if (why := _missing(doc, target, link))
    ]
    assert not wrong, "documents point at files that are not there:\n" + "\n".join(wrong)


def test_the_document_check_finds_what_it_must():
    """The check above sees links, backticked paths and bare .md names, and refuses what is not there."""
    doc = ROOT / "docs" / "a-page-of-docs.md"  # never written: only its folder matters
    text = (
        "See [limits](limits.md#excel-workbooks), [gone](gone.md), [bad](limits.md#no-such-part)\n"
        "and [up](docs/limits.md). Run `python -m pytest tests/test_docs.py`, read `socrata-api.md`,\n"
        "then other-page.md. A run makes `routes/payroll/.route/`, never `routes/nowhere/.route/`.\n"
        "```sh\nroute execute routes/mine.yaml   # see mine.md\n```\n"
    )
    assert [(line, target, _missing(doc, target, link)) for line, target, link in _pointers(text)] == [
        (1, "limits.md#excel-workbooks", None),
        (1, "gone.md", "is not in the repository"),
        (1, "limits.md#no-such-part", "has no heading #no-such-part"),
        (2, "docs/limits.md", "is not in the repository"),  # a link is relative to its document
        (2, "tests/test_docs.py", None),
        (2, "socrata-api.md", "is not in the repository"),
        (3, "routes/payroll/.route/", None),  # made by a run, in a route folder that exists
        (3, "routes/nowhere/.route/", "is not in the repository"),
        (3, "other-page.md", "is not in the repository"),
    ]


ON_ERROR_ROUTE = """\
name: limits
source:
  csv: {path: data.csv}
targets:
  - name: out
    deliver:
      jsonl: {path: out.jsonl}
on_error:
  max_rejects: %s
"""


def test_both_forms_of_max_rejects_in_the_readme_are_accepted(route_cli, tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(line for line in readme.splitlines() if line.strip().startswith("max_rejects:"))
    count, percent = re.fullmatch(r'\s*max_rejects: (\d+)\s+# or (".*?").*', line).groups()
    (tmp_path / "data.csv").write_text("a\n1\n", encoding="utf-8")
    for value in (count, percent):
        route = tmp_path / "route.yaml"
        route.write_text(ON_ERROR_ROUTE % value, encoding="utf-8")
        result = route_cli("validate", str(route))
        assert (result.exit_code, result.stdout) == (0, f"{route}: ok\n"), result.output


def test_a_wrong_max_rejects_names_both_forms_at_its_line(route_cli, tmp_path):
    route = tmp_path / "route.yaml"
    both = 'expected a number of rejected rows such as 100, or a percentage of the rows read such as "5%" (quoted)'
    for value, shown in (("lots", "'lots'"), ("-3", "-3"), ("2.5", "2.5"), ('"5 %"', "'5 %'"), ("[5]", "a list")):
        route.write_text(ON_ERROR_ROUTE % value, encoding="utf-8")
        result = route_cli("validate", str(route))
        assert result.exit_code == 2
        assert result.stderr == f"{route}:9:16: on_error.max_rejects: {both}, got {shown}\n"
        assert result.stdout == ""

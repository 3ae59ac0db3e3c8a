"""The layout keeps its promises (docs/architecture.md): imports point one way, down the layers, with
no circle between modules; no private name is imported from another module; a module longer than
400 lines says at its top why."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Higher layers may import lower ones, never the reverse. Stage packages sit side by side on one
# layer and may use each other, as long as no circle forms between packages.
LAYERS = [
    ("basics", ["pipeline.basics", "pipeline.state"]),
    (
        "stages",
        [
            "pipeline.expressions",
            "pipeline.http",
            "pipeline.sources",
            "pipeline.deliveries",
            "pipeline.socrata",
            "pipeline.portal",
            "transforms",
        ],
    ),
    ("route", ["pipeline.route"]),
    ("engine", ["pipeline.engine"]),
    ("runs", ["pipeline.runs"]),
    ("ops", ["pipeline.ops"]),
    ("commands", ["pipeline.commands"]),
    ("entry points", ["pipeline.cli", "pipeline.api", "pipeline.testing", "pipeline"]),
]
LOOSE = {"pipeline", "pipeline.cli", "pipeline.api", "pipeline.testing"}
LONG = 400


def modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for top in ("pipeline", "transforms"):
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return found


def imports(name: str, path: Path, is_pkg: bool, known) -> set[str]:
    """The modules of ours that `name` imports (anywhere in it, functions included)."""
    out = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", getattr(block.test, "attr", "")) == "TYPE_CHECKING"
        for n in ast.walk(block)
    }  # imports for annotations only: not imported at run time
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            out.update(subs)
            if len(subs) < len(node.names) and target in known:
                out.add(target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
    out.discard(name)
    return out


def layer_of(name: str) -> tuple[int, str]:
    best = (-1, "", "")
    for rank, (layer, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > len(best[2]):
                best = (rank, layer, prefix)
    return best[0], best[1]


def graph():
    known = modules()
    return known, {name: imports(name, path, is_pkg, known) for name, (path, is_pkg) in known.items()}


def test_pipeline_has_no_loose_module_but_its_entry_points():
    loose = {n for n, (p, pkg) in modules().items() if n.startswith("pipeline") and n.count(".") <= 1 and not pkg}
    assert loose <= LOOSE, f"modules outside a package: {sorted(loose - LOOSE)}"


def test_imports_point_down_the_layers():
    known, edges = graph()
    upward = []
    for name, targets in edges.items():
        rank, layer = layer_of(name)
        assert rank >= 0, f"{name} belongs to no layer of docs/architecture.md"
        for target in targets:
            t_rank, t_layer = layer_of(target)
            if t_rank > rank:
                upward.append(f"{name} ({layer}) imports {target} ({t_layer})")
    assert not upward, "imports that point up:\n" + "\n".join(sorted(upward))


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(start):
        # iterative Tarjan: (node, iterator over its targets)
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                    break
                if nxt in on:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return out


def test_no_import_circle_between_modules():
    _, edges = graph()
    # A package's __init__ that re-exports its modules is not a circle with them.
    plain = {n: {t for t in ts if not n.startswith(t + ".")} for n, ts in edges.items()}
    assert _cycles(plain) == []


def test_no_import_circle_between_stage_packages():
    _, edges = graph()
    stages = LAYERS[1][1]

    def package(name):
        return next((p for p in stages if name == p or name.startswith(p + ".")), None)

    between: dict[str, set[str]] = {}
    for name, targets in edges.items():
        a = package(name)
        for t in targets:
            b = package(t)
            if a and b and a != b:
                between.setdefault(a, set()).add(b)
    assert _cycles(between) == []


def test_no_private_name_is_imported_from_another_module():
    known, _ = graph()
    found = []
    for name, (path, _) in known.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                for a in node.names:
                    module = f"{node.module}.{a.name}"
                    if module in known and module.rsplit(".", 1)[0] == name.rsplit(".", 1)[0]:
                        continue  # a helper module of the same package (transforms/_frames.py)
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        found.append(f"{name}: {a.name} from {node.module or '.'}")
    assert not found, "private names used outside their module:\n" + "\n".join(found)


def test_a_long_module_says_why_at_its_top():
    unexplained = []
    for name, (path, _) in modules().items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > LONG and "Longer than 400 lines" not in "\n".join(text.splitlines()[:40]):
            unexplained.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert not unexplained, "modules over 400 lines with no reason at their top:\n" + "\n".join(unexplained)

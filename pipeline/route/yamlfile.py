"""Safe YAML loading that remembers where every value came from.

Route files are loaded with `yaml.SafeLoader` only. One walk over the composed node tree builds
plain dicts and lists (what jsonschema and the components see) and a side table from each value's
path to its 1-based line and column, so that any later problem can be reported where an editor
would jump to. Duplicate keys and missing `${NAME}` variables are problems, not silent overrides.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.basics.errors import Problem, RouteInvalid
from pipeline.route.yamllimits import (
    MAX_FILE_BYTES,
    BoundedLoader,
    LimitExceeded,
    reader_problem,
    scalar_problem,
    too_long,
)

Path_ = tuple  # a path into the document: keys and list indexes

_VARIABLE = re.compile(r"\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Variables whose names look like credentials are masked wherever they could be shown.
_SECRET_NAME = re.compile(r"pass|secret|token|key|pwd|credential|auth", re.IGNORECASE)


@dataclass
class Document:
    """A loaded YAML file: plain data plus the position of every node in it."""

    file: str
    data: Any
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    styles: dict[Path_, str] = field(default_factory=dict)  # scalar style: "", "'", '"', "|", ">"
    secrets: set[str] = field(default_factory=set)

    def mark(self, path: Path_) -> tuple[int, int]:
        """Line and column of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), (1, 1))

    def _value(self, path: Path_):
        return value_at(self.data, path)

    def key_mark(self, path: Path_) -> tuple[int, int]:
        """Line and column of the key that introduces `path` (falls back to the value's)."""
        return self.key_marks.get(tuple(path)) or self.mark(path)

    def problem(self, path: Path_, message: str, at_key: bool = False, offset: int | None = None) -> Problem:
        """A Problem at `path`; `offset` points inside a one-line scalar (an expression)."""
        line, col = self.key_mark(path) if at_key else self.mark(path)
        style = self.styles.get(tuple(path))
        if offset is not None and style in ("", "'", '"') and "\n" not in str(self._value(path)):
            col += offset + (1 if style in ("'", '"') else 0)
        elif offset is not None:  # a block scalar: the file column is unknown, say where in the text
            message = f"at column {offset + 1} of the expression: {message}"
        return Problem(self.file, line, col, format_path(path), self.mask(message))

    def mask(self, text: str) -> str:
        """`text` with the value of every secret variable replaced by ***: a problem message may
        quote the value it refuses (`chunk_rows: expected a whole number, got '...'`)."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text


def _hint(exc: yaml.MarkedYAMLError) -> str:
    """What to do about the two PyYAML messages publishers meet most, which do not say it."""
    problem = exc.problem or ""
    if "'\\t'" in problem:
        return "; indent with spaces, not tabs"
    if "expected <block end>" in problem:
        return "; check the indentation of this line against the lines above"
    return ""


def value_at(data: Any, path: Path_) -> Any:
    """The value at `path` inside plain data, or None where the path leads nowhere."""
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def format_path(path: Path_) -> str:
    """`targets[0].deliver.socrata.mode` from ("targets", 0, "deliver", "socrata", "mode")."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def load_yaml(text: str, file: str, variables: Mapping[str, str] | None = None) -> Document:
    """Parse `text`, substitute `${NAME}` from `variables` (default: the environment).

    Raises RouteInvalid listing every problem found (syntax, duplicate keys, missing variables).
    """
    variables = os.environ if variables is None else variables
    try:
        loader = BoundedLoader(text)  # checks every character at once: NUL and the like end here
    except yaml.reader.ReaderError as exc:
        line, col, message = reader_problem(text, exc)
        raise RouteInvalid([Problem(file, line, col, "", message)]) from None
    try:
        root = loader.get_single_node()
    except LimitExceeded as exc:
        mark = exc.problem_mark
        raise RouteInvalid([Problem(file, mark.line + 1, mark.column + 1, "", exc.problem)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or "invalid YAML"
        if exc.context:
            started = exc.context_mark
            if started is not None and mark is not None and started.line != mark.line:
                reason = f"{exc.context} (opened on line {started.line + 1}, column {started.column + 1}), {reason}"
            else:
                reason = f"{exc.context}, {reason}"
        raise RouteInvalid([Problem(file, line, col, "", f"invalid YAML: {reason}{_hint(exc)}")]) from None
    except yaml.YAMLError as exc:
        raise RouteInvalid([Problem(file, 1, 1, "", f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    doc = Document(file=file, data=None)
    if root is None:
        doc.data = {}
        doc.marks[()] = (1, 1)
        return doc
    problems: list[Problem] = []
    builder = _Builder(loader, doc, variables, problems)
    try:
        doc.data = builder.build(root, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise RouteInvalid([Problem(file, line, col, "", f"invalid YAML: {exc.problem}")]) from None
    if problems:
        raise RouteInvalid(problems)
    return doc


def load_yaml_file(
    path: str | os.PathLike, variables: Mapping[str, str] | None = None, shown_as: str | None = None
) -> Document:
    """Read and load a YAML file; unreadable files are a RouteInvalid naming the file."""
    shown = shown_as or str(path)
    try:
        size = os.stat(path).st_size
        if size > MAX_FILE_BYTES:  # before reading: a scheduler's folder may hold any big file
            raise RouteInvalid(
                [
                    Problem(
                        shown,
                        1,
                        1,
                        "",
                        f"the file is {size / 2**20:.1f} MiB; a route file is at most {MAX_FILE_BYTES // 2**20} MiB",
                    )
                ]
            )
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RouteInvalid([Problem(shown, 1, 1, "", "file not found")]) from None
    except IsADirectoryError:
        raise RouteInvalid([Problem(shown, 1, 1, "", "is a folder, not a route file")]) from None
    except UnicodeDecodeError as exc:
        raise RouteInvalid(
            [Problem(shown, 1, 1, "", f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8")]
        ) from None
    except OSError as exc:
        raise RouteInvalid([Problem(shown, 1, 1, "", f"cannot read the file: {exc.strerror}")]) from None
    return load_yaml(text, shown, variables)


class _Builder:
    """One walk over the node tree: plain values, marks, duplicate keys, variables."""

    def __init__(self, loader, doc: Document, variables, problems):
        self.loader, self.doc, self.variables, self.problems = loader, doc, variables, problems

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.doc.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        value = self._construct(node, path)
        self.doc.styles[path] = node.style or ""
        if isinstance(value, str) and "$" in value:
            value = self._substitute(value, node, path)
        return value

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict:
        self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        out: dict = {}
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self._construct(key_node, path)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                self.problems.append(
                    Problem(self.doc.file, line, col, format_path(path), "a key must be a plain value")
                )
                continue
            key_line = key_node.start_mark.line + 1
            if key in seen:
                self.problems.append(
                    Problem(
                        self.doc.file,
                        key_line,
                        key_node.start_mark.column + 1,
                        format_path(path + (key,)),
                        f"duplicate key '{key}': first defined on line {seen[key]}; keep one of them",
                    )
                )
                continue
            seen[key] = key_line
            self.doc.key_marks[path + (key,)] = (key_line, key_node.start_mark.column + 1)
            out[key] = self.build(value_node, path + (key,))
        return out

    def _construct(self, node: yaml.Node, path: Path_) -> Any:
        """The Python value of a scalar (or of a complex key); a value PyYAML recognises by its
        form but cannot build (2024-13-45, a 5,000-digit number) is a problem at its line."""
        try:
            value = self.loader.construct_object(node, deep=True)
            reason = too_long(value)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # noqa: BLE001 - PyYAML's constructors fail in many ways on text
            # like `!!float` with no value (IndexError) or `!!bool maybe` (KeyError): all bad input
            reason = scalar_problem(node, exc) if isinstance(node, yaml.ScalarNode) else f"not a valid value ({exc})"
        if reason is None:
            return value
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        self.problems.append(Problem(self.doc.file, line, col, format_path(path), reason))
        return None

    def _substitute(self, value: str, node: yaml.Node, path: Path_) -> str:
        def replace(match: re.Match) -> str:
            if match.group(1):  # $${NAME} is a literal ${NAME}
                return match.group(0)[1:]
            name = match.group(2)
            if name not in self.variables:
                # Point at the variable inside the scalar when it sits on the same line.
                line, col = node.start_mark.line + 1, node.start_mark.column + 1
                if node.style in (None, "", "'", '"') and "\n" not in value:
                    col += match.start() + (1 if node.style in ("'", '"') else 0)
                self.problems.append(
                    Problem(
                        self.doc.file,
                        line,
                        col,
                        format_path(path),
                        f"variable ${{{name}}} is not set: export {name}=... or pass --set {name}=...",
                    )
                )
                return match.group(0)
            resolved = str(self.variables[name])
            if _SECRET_NAME.search(name) or any(_SECRET_NAME.search(str(p)) for p in path[-2:]):
                if resolved:
                    self.doc.secrets.add(resolved)
            return resolved

        return _VARIABLE.sub(replace, value)

"""Limits that keep a hostile or broken YAML file from hanging route or exhausting its memory.

A route file is small, but YAML can make a small file large: aliases repeat a node wherever they
appear, so nine lines of nested aliases ("billion laughs") stand for a billion values, and a file
of 100,000 `[` nests deeper than Python's stack. `route validate`, and `route schedule`, which
reads every file of its folder, must refuse such files at once, with the line to blame.

`BoundedLoader` is `yaml.SafeLoader` with a composer that counts, while the node graph is built
and before any Python value exists, how many values the document stands for once its aliases are
expanded, and how deep it nests; past a limit well above any real route it stops with a
`LimitExceeded` at the alias or the node at fault. The counting is per node, on the graph, so a
bomb costs as little as its text. The limits are also documented in docs/limits.md.
"""

from __future__ import annotations

import yaml

# PyYAML's pure-Python parser (the one that keeps positions) reads about 400 KB, or 20,000 values,
# a second: these keep the worst file a few seconds away, and are far above any real route.
MAX_FILE_BYTES = 1024 * 1024  # a real route is a few kilobytes; a big lookup table inline, 100 KB
MAX_VALUES = 50_000  # values (scalars, lists, mappings) once aliases are expanded
MAX_DEPTH = 64  # lists and mappings inside each other; a route nests about 8 deep
MAX_INT_DIGITS = 300  # longer whole numbers are data or a mistake, never an option


class LimitExceeded(yaml.MarkedYAMLError):
    """A file goes past one of the limits above; `problem_mark` is where."""


class BoundedLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses alias bombs, recursive aliases and too deep nesting."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._values = 0  # values the document stands for so far, aliases expanded
        self._sizes: dict[int, int] = {}  # id(node) -> values it stands for, once it is complete

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:  # the anchor is still open: the alias is inside the node it names
                raise LimitExceeded(
                    problem=f"the alias *{event.anchor} is inside the node it refers to, "
                    f"which would make it endless; refer to it from outside",
                    problem_mark=event.start_mark,
                )
            self._count(size, event, alias=True)
            return node
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)) and self._depth >= MAX_DEPTH:
            raise LimitExceeded(
                problem=f"lists and mappings are nested more than {MAX_DEPTH} levels deep "
                f"here; a route file needs far fewer",
                problem_mark=event.start_mark,
            )
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._count(1, event, alias=False)
        self._sizes[id(node)] = 1 + sum(self._size_of(child) for child in _children(node))
        return node

    def _size_of(self, node) -> int:
        return self._sizes.get(id(node), 1)

    def _count(self, size: int, event, alias: bool) -> None:
        self._values += size
        if self._values <= MAX_VALUES:
            return
        if alias:
            problem = (
                f"the alias *{event.anchor} takes the file past {MAX_VALUES:,} values once aliases are "
                f"expanded (each alias repeats everything its anchor holds); a route file needs far fewer"
            )
        else:
            problem = f"the file holds more than {MAX_VALUES:,} values; a route file needs far fewer"
        raise LimitExceeded(problem=problem, problem_mark=event.start_mark)


def _children(node):
    """The nodes directly inside `node` (keys and values of a mapping)."""
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return ()


def reader_problem(text: str, exc: yaml.reader.ReaderError) -> tuple[int, int, str]:
    """(line, column, message) for a character YAML refuses (NUL and other control characters)."""
    position = max(0, min(exc.position, len(text)))
    line = text.count("\n", 0, position) + 1
    col = position - (text.rfind("\n", 0, position) + 1) + 1
    code = exc.character
    name = {0: " (NUL)", 0x1B: " (ESC)", 0x7F: " (DEL)"}.get(code, "")
    return (
        line,
        col,
        (
            f"the control character U+{code:04X}{name} is not allowed in a YAML file; "
            f"remove it (a NUL often means the file is binary, or saved as UTF-16)"
        ),
    )


def scalar_problem(node: yaml.ScalarNode, exc: Exception) -> str:
    """What is wrong with a scalar PyYAML recognises by its form but cannot turn into a value:
    a whole number too long to convert, a date like 2024-13-45, a value tagged !!int or !!bool."""
    text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
    if node.tag == "tag:yaml.org,2002:int":
        digits = sum(c.isdigit() for c in node.value)
        if digits > MAX_INT_DIGITS:
            return f"a whole number of {digits:,} digits is too long; quote it if it is text"
    kind = _KINDS.get(node.tag.rsplit(":", 1)[-1], "value")
    reason = f" ({exc.args[0]})" if isinstance(exc, (ValueError, OverflowError)) and exc.args else ""
    return f"'{text}' reads as {kind} but is not a valid one{reason}; quote it to keep it as text"


_KINDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true/false",
    "timestamp": "a date",
    "null": "null",
    "binary": "base64 data",
}


def too_long(value) -> str | None:
    """Why `value` is refused although it constructed (a hexadecimal or octal whole number can be
    longer than Python will print in decimal), or None."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_DIGITS * 3.33:
        return f"this whole number has more than {MAX_INT_DIGITS} digits; quote it if it is text"
    return None

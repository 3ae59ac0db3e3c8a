"""YAML text for the route `route init` writes: scalars that read back as written, trailing comments."""

from __future__ import annotations

import json
import re

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}
COMMENT_AT = 44  # column of trailing comments


def commented(line: str, note: str, width: int = COMMENT_AT) -> str:
    return f"{line.ljust(width - 1)} # {note}" if note else line


def scalar(value) -> str:
    """A YAML scalar that reads back as the same value (JSON quoting where plain would not)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def flow(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value)

"""JSON Schema validation that speaks in route lines: every error at once, with suggestions.

jsonschema's messages are rewritten where a publisher would not understand them (additional
properties become "unknown key 'x'; did you mean 'y'?", oneOf failures name what was expected),
and each error is placed at the line of the value (or of the key, for unknown keys).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from pipeline.basics.errors import Problem, suggest
from pipeline.route.yamlfile import Document

# The structure of a route file, checked before anything runs. Sources, rules and deliveries are
# open in it, so that a plugin's are accepted as the built-ins are; each is then checked against
# the options schema it declares. schemas/route.schema.json, the complete schema for editors, is
# generated from this one and those (pipeline/route/editorschema.py).
STRUCTURE_FILE = "route-structure.schema.json"


@cache
def route_schema() -> dict:
    """The structural route file schema shipped in the `schemas` package."""
    return json.loads(resources.files("schemas").joinpath(STRUCTURE_FILE).read_text(encoding="utf-8"))


_VALIDATORS: dict[int, Any] = {}


def _validator(schema: dict):
    key = id(schema)
    if key not in _VALIDATORS:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        _VALIDATORS[key] = (schema, cls(schema, format_checker=cls.FORMAT_CHECKER))
    return _VALIDATORS[key][1]


def check(
    doc: Document, data: Any, schema: dict, base: Sequence[Any] = (), implied: str | None = None
) -> list[Problem]:
    """Validate `data` (found at `base` in `doc`) against `schema`; one Problem per error.

    `implied` names a key the user did not write (a shorthand `trim: [a]` checked as
    `{columns: [a]}`): it is left out of the paths reported.
    """
    problems = []
    for error in _validator(schema).iter_errors(data):
        problems.extend(to_problems(doc, error, tuple(base), implied))
    return problems


def to_problems(doc: Document, error: ValidationError, base: tuple, implied: str | None = None) -> list[Problem]:
    rel = tuple(error.absolute_path)
    if implied is not None and rel[:1] == (implied,):
        rel = rel[1:]
    path = base + rel
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        extras = [
            k
            for k in error.instance
            if k not in allowed and not any(re.search(p, str(k)) for p in error.schema.get("patternProperties", {}))
        ]
        known = ", ".join(allowed) if allowed else "none"
        return [
            doc.problem(
                path + (k,), f"unknown key '{k}'{suggest(k, allowed) or f' (known keys: {known})'}", at_key=True
            )
            for k in extras
        ]
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [doc.problem(path, f"missing required key '{missing}'")]
    if error.validator in ("oneOf", "anyOf") and error.context:
        # Report the branch that got furthest, which is usually what the user meant.
        best = max(error.context, key=lambda e: (len(e.absolute_path), -len(e.message)))
        if len(best.absolute_path) > len(error.absolute_path):  # the branch got into the value
            return to_problems(doc, best, base, implied)
        expected = " or ".join(_describe(s) for s in error.validator_value)
        return [doc.problem(path, f"expected {expected}, got {shown(error.instance)}")]
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return [doc.problem(path, f"expected {_article(expected)}, got {shown(error.instance)}")]
    if error.validator == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        hint = (
            suggest(error.instance, [str(c) for c in error.validator_value]) if isinstance(error.instance, str) else ""
        )
        return [doc.problem(path, f"{shown(error.instance)} is not one of: {choices}{hint}")]
    if error.validator == "pattern":
        return [doc.problem(path, f"{shown(error.instance)} does not have the expected form ({error.validator_value})")]
    return [doc.problem(path, error.message)]


def _article(type_name: str) -> str:
    words = {
        "object": "a mapping",
        "array": "a list",
        "string": "a text",
        "integer": "a whole number",
        "number": "a number",
        "boolean": "true or false",
        "null": "nothing",
    }
    return " or ".join(words.get(t.strip(), t) for t in type_name.split(" or "))


def _describe(schema: dict) -> str:
    if schema.get("type") == "string" and schema.get("examples"):
        return f'a text such as "{schema["examples"][0]}"'
    if "type" in schema:
        t = schema["type"]
        return _article(" or ".join(t) if isinstance(t, list) else t)
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    return "a value of another form"


def shown(value: Any) -> str:
    """A value as a message quotes it: 'text', a mapping, a list, nothing (null)..."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"'{value}'" if len(value) < 60 else f"'{value[:57]}...'"
    return repr(value)

"""Example rule: make town names match the official list, so one town is one value on the portal."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.api import StepContext, arrow, rule, series, uses

# Spellings seen in agency files, mapped to the official name.
ALIASES = {
    "W HARTFORD": "West Hartford",
    "WEST HTFD": "West Hartford",
    "E HARTFORD": "East Hartford",
    "N HAVEN": "North Haven",
    "NEW HAVEN CITY": "New Haven",
}


@rule(
    {
        "type": "object",
        "required": ["column"],
        "additionalProperties": False,
        "properties": {
            "column": {"type": "string", "description": "The column holding town names."},
            "unknown": {
                "enum": ["keep", "reject"],
                "default": "keep",
                "description": "What to do with a town that is not on the official list.",
            },
            "towns": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The official list; rows with other towns are rejected when unknown: reject.",
            },
        },
    },
    shorthand="column",
    columns=uses(reads=["column"]),  # route validate then catches a misspelt column
)
def fix_town(chunk: pd.DataFrame, options: dict, ctx: StepContext) -> pd.DataFrame:
    """Normalise town names: trim, fix known abbreviations, Title Case.

    Example:

        source_transforms:
          - fix_town: {column: town, unknown: reject, towns: [Hartford, West Hartford, New Haven]}
    """
    column = options["column"]
    values = pc.utf8_trim_whitespace(arrow(chunk[column]).cast(pa.string()))
    upper = pc.utf8_upper(values)
    fixed = pc.utf8_title(values)
    for alias, name in ALIASES.items():
        fixed = pc.if_else(pc.equal(upper, alias), name, fixed)
    out = chunk.assign(**{column: series(fixed, chunk[column])})
    towns = options.get("towns")
    if options.get("unknown") == "reject" and towns:
        bad = ~out[column].isin(towns) & out[column].notna()
        ctx.reject(out[bad], reason="not an official town name", column=column)
        out = out[~bad]
    return out

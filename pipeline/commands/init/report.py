"""What `route init` tells a newcomer about the sample: in the route's opening comment and on screen.

The route's types come from the first rows only, so the publisher must know what those rows held
that the route cannot show by itself: rows the source left out (a run rejects them too), the
placeholders for a missing value that were found, and the types declined or that would reject some
values, each with a value and its line to go and look at.
"""

from __future__ import annotations

import datetime as dt
import json

from pipeline.commands.init.markers import describe
from pipeline.commands.init.sample import Sample
from pipeline.commands.init.suggestions import Suggestion


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def header_lines(sample: Sample, origin: str, shown: str, today: dt.date) -> list[str]:
    """The route file's opening comment: where it came from, what to run, and the rows left out."""
    left = sample.left_out
    first = f"# Route written by `route init --from {origin}` on {today.isoformat()}, from the first"
    review = "Read it through and fix what the REVIEW notes point at, then:"
    if left.count:
        out = [first, f"# {_rows(sample.rows)} of the file ({left.count} of them left out, see below).", f"# {review}"]
    else:
        out = [first, f"# {_rows(sample.rows)} of the file. {review}"]
    out.append(f"#   route validate {shown}    route preview {shown}    route execute {shown}")
    if left.count:
        out.append(
            f"# REVIEW: {_rows(left.count)} of the sample left out by the {sample.kind} source, "
            "as a run will reject them (into the rejects file):"
        )
        out += [f"#   {why}" for _, why in left.shown]
        if left.count > len(left.shown):
            out.append(f"#   ... and {left.count - len(left.shown)} more")
    return out


def report_lines(sample: Sample, suggestions: list[Suggestion], origin: str) -> list[str]:
    """What is printed before `wrote NAME.yaml`: what the sample showed that needs a look."""
    out = [f"read the first {_rows(sample.rows)} of {origin}"]
    left = sample.left_out
    if left.count:
        out.append(f"  {_rows(left.count)} left out, as a run will reject them (into the rejects file):")
        out += [f"    {why}" for _, why in left.shown]
        if left.count > len(left.shown):
            out.append(f"    ... and {left.count - len(left.shown)} more")
    if sample.markers:
        out.append(f"  placeholders for a missing value: {describe(sample.markers)}")
        if sample.kind == "csv":
            values = json.dumps([m.value for m in sample.markers], ensure_ascii=False)
            out.append(f"    written as `null_values: {values}` in the source (read as empty): REVIEW it")
        else:
            out.append("    written as a `replace` to null before the cast (the excel source has no null_values)")
    for s in suggestions:
        if s.declined or s.rejected:
            out.append(f"  {s.column}: {s.note}")
    return out

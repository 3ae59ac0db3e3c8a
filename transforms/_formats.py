"""The strptime formats of the cast rule, checked when the route is planned (no Arrow needed).

Only the directives whose reading we can verify are accepted; each format is compiled to a regex
that finds the day as written, so that _temporal can catch a day that does not exist (see there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUM = r"\s*\d{1,2}"
_WORD = r"\s*\pL+"
_DIRECTIVES = {
    "Y": r"\s*[+-]?\d{1,4}",
    "y": _NUM,
    "m": _NUM,
    "d": _NUM,
    "e": _NUM,
    "H": _NUM,
    "I": _NUM,
    "M": _NUM,
    "S": _NUM,
    "p": r"\s*[AaPp][Mm]",
    "b": _WORD,
    "B": _WORD,
    "h": _WORD,
    "a": _WORD,
    "A": _WORD,
    "z": r"\s*(?:Z|[+-]\d{2}:?\d{2})",
    "n": r"\s*",
    "t": r"\s*",
    "%": "%",
}
_EXPAND = {"D": "%m/%d/%y", "T": "%H:%M:%S", "R": "%H:%M", "F": "%Y-%m-%d"}
SUPPORTED = " ".join("%" + d for d in list(_DIRECTIVES)[:-3] + list(_EXPAND))


# ISO 8601 as Arrow's cast reads it: date, optional time (hour, minutes, seconds, fraction) and
# optional offset. Ranges are checked here; only impossible days (Feb 30) are left to the cast.
@dataclass(frozen=True)
class Format:
    """A strptime format checked at plan time, with the regex that finds the day it reads."""

    text: str
    day_regex: str | None
    has_year4: bool
    has_offset: bool

    @classmethod
    def parse(cls, original: str) -> Format:
        text, pattern, day_seen, i, directives = original, "", False, 0, []
        while i < len(text):
            ch = text[i]
            if ch == "%":
                code = text[i + 1] if i + 1 < len(text) else ""
                if code in _EXPAND:  # %D, %T, %R, %F: read as what they stand for
                    text = text[:i] + _EXPAND[code] + text[i + 2 :]
                    continue
                if code not in _DIRECTIVES:
                    shown = f"%{code}" if code else "a lone %"
                    raise ValueError(f"format '{original}': {shown} is not supported (supported: {SUPPORTED}, %%)")
                if code in "de" and not day_seen:
                    pattern += r"\s*(?P<day>\d{1,2})"
                    day_seen = True
                else:
                    pattern += _DIRECTIVES[code]
                directives.append(code)
                i += 2
            elif ch.isspace():
                pattern += r"\s*"
                i += 1
            else:
                pattern += re.escape(ch) if ch.isascii() else ch
                i += 1
        if not any(d not in "nt%" for d in directives):
            raise ValueError(f"format '{original}' has no date or time directives such as %Y, %m, %d")
        return cls(original, "^" + pattern + "$" if day_seen else None, "Y" in directives, "z" in directives)


def tried(spec) -> str:
    return ", ".join([f.text for f in spec.formats] + ["ISO 8601"])


def default_reason(spec) -> str:
    if spec.formats:
        return f"matches none of the formats {tried(spec)}"
    return (
        "is not an ISO 8601 date (YYYY-MM-DD); give formats for other forms"
        if spec.type == "date"
        else "is not an ISO 8601 datetime (YYYY-MM-DDTHH:MM:SS); give formats for other forms"
    )

"""The language reference as Markdown, built from the function table so that it cannot drift.

`python -m pipeline.expressions.reference > docs/expressions.md` writes it.
"""

from __future__ import annotations

from pipeline.expressions.functions import FUNCTIONS

GROUPS = [
    ("Text", ["upper", "lower", "title", "trim", "ltrim", "rtrim", "length", "concat", "substr", "replace"]),
    ("Tests on text", ["contains", "startswith", "endswith", "matches"]),
    ("Choices and nulls", ["if", "coalesce", "nullif"]),
    ("Dates and times", ["year", "quarter", "month", "day", "weekday", "hour", "minute", "today"]),
    ("Numbers", ["round", "abs", "floor", "ceil"]),
    ("Conversions", ["to_number", "to_text", "to_date", "to_datetime"]),
]

INTRO = """\
# Expressions

`filter`, `derive` and a target's `when` share one small language, evaluated over whole columns
of a chunk at once (pyarrow.compute; nothing runs per row in Python).

```yaml
- filter: "gross >= 0 and `Pay Date` is not null"
- derive:
    fiscal_year: "if(month(pay_date) >= 7, year(pay_date) + 1, year(pay_date))"
    source: "'portal'"
targets:
  - name: recent
    when: "pay_date >= today() - 30"
```

## Syntax

| | |
|---|---|
| columns | `amount`, or in backticks when the name has spaces, starts with a digit or is a keyword: `` `Pay Date` `` (a backtick inside is doubled) |
| literals | `12`, `-3.5`, `1e6`, `'text'` or `"text"` (a quote inside is doubled, or escaped with `\\`), `true`, `false`, `null` |
| arithmetic | `+ - * /` and `%` (remainder, with the sign of the left side); `/` always gives a decimal; dividing by zero gives null |
| comparison | `== != < <= > >=` |
| logic | `and`, `or`, `not` (keywords may be written in capitals) |
| lists | `town in ['Hartford', 'New Haven']`, `code not in [1, 2, 3]` (items are literals) |
| nulls | `x is null`, `x is not null` |
| dates | `date + 30`, `date - 7` (days), `date - date` (days between); `datetime - datetime` gives days as a decimal |

Precedence, loosest first: `or`, `and`, `not`, comparisons, `+ -`, `* / %`, unary `-`.
Comparisons do not chain: write `0 < x and x < 10`.

## Nulls

As in SQL: arithmetic with null gives null, and a comparison with null is null, which is not
true, so `filter` drops the row and `when` does not route it. `and`/`or` use three-valued logic
(`null and false` is false, `null or true` is true). `if(null, a, b)` gives `b`. Use
`coalesce(x, 0)` or `x is null` to handle nulls explicitly. `concat` writes null as ''.

## Types

- Text meeting a number (`amount >= 0` on a text column, `amount * 2`) is read as a decimal
  number, spaces ignored and blank as null. A value that is not a number stops the run with the
  column, the value and its line: `cast` the column first, and its rejects keep such rows.
- Text meeting a date or a date and time is read as ISO 8601 (`pay_date >= '2024-07-01'`).
  `year()`, `month()` and `day()` also take ISO text directly.
- Text functions (`upper`, `concat`, ...) write numbers, dates and true/false as text.
- `if()` and `coalesce()` need values of one kind: integers widen to decimals, text meeting a
  date is read as a date; otherwise convert with `to_text()` or `to_number()`.

## Functions
"""

OUTRO = """
Nothing else can be called: there is no attribute access (`a.b`), no names starting with `__`, no
imports and no file or network access. Such expressions, like unknown functions and syntax errors,
are refused when the route is validated, at the line and column of the problem.
"""


def markdown() -> str:
    lines = [INTRO]
    listed = set()
    for title, names in GROUPS:
        lines += [f"### {title}", "", "| function | gives |", "|---|---|"]
        for name in names:
            fn = FUNCTIONS[name]
            listed.add(name)
            lines.append(f"| `{fn.signature}` | {fn.doc} |")
        lines.append("")
    missing = sorted(set(FUNCTIONS) - listed)
    if missing:
        raise AssertionError(f"functions missing from the reference groups: {missing}")
    lines.append(OUTRO)
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())

"""Bulk inserts: many rows given by column, in few multi-row statements, with few values bound.

Python's sqlite3 binds every parameter on its own (about 0.1 us each, with the GIL held), so an
upsert of 10,000 rows of 13 columns spends more time binding than SQLite spends writing. What is
the same for every row (the request's timestamp) is a parameter bound once per statement, a column
that is all null is a literal NULL, and the statement text stays the same from one request to the
next so that sqlite3 compiles it once per connection.
"""

from __future__ import annotations

import re

_PLAIN_PARAM = re.compile(r"\?(?![0-9])")


def insert_many(conn, head: str, row: list, tail: str, columns: list, lead: tuple = (), per: int = 64) -> None:
    """Insert rows given by column, `per` rows to a statement.

    `row` is one row's VALUES: None where the next column's value goes, otherwise SQL (`?1`, `?2`...
    for the `lead` parameters that every row shares, such as the request's timestamp). Shared values
    are parameters rather than literals so that the statement text repeats from one request to the
    next, and sqlite3 compiles it once per connection instead of once per request. A column that is
    all null in this batch is written as NULL rather than bound row by row.

    The parameters are laid out once in one flat list (slice assignment, no tuple per row), which
    costs a fraction of executemany's row-by-row binding. 64 rows a statement measured cheapest:
    larger statements cost more CPU in SQLite, smaller ones more statements."""
    count = len(columns[0]) if columns else 0
    if not count:
        return
    items, values = [], iter(columns)
    bound = []
    for item in row:
        if item is None:
            column = next(values)
            if type(column) is list and column[0] is None and column.count(None) == count:
                item = "NULL"
            else:
                bound.append(column)
                item = "?"
        items.append(item)
    width = len(bound)
    flat = [None] * (width * count)
    for i, column in enumerate(bound):
        flat[i::width] = column
    one = "(" + ", ".join(items) + ")"
    # a plain ? after ?N takes the number after the largest so far: only the first needs its number
    first = _PLAIN_PARAM.sub(f"?{len(lead) + 1}", one, count=1) if lead else one
    lead = list(lead)

    def sql(rows: int) -> str:
        return head + ", ".join([first] + [one] * (rows - 1)) + tail

    step = per * width
    full = count // per
    if full and width:
        conn.executemany(sql(per), (lead + flat[j : j + step] for j in range(0, full * step, step)))
    elif full:
        conn.executemany(sql(per), (lead for _ in range(full)))
    if count - full * per:
        conn.execute(sql(count - full * per), lead + flat[full * step :])

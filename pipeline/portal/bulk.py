"""Bulk inserts: many rows in few multi-row statements, with as few values bound as possible.

Python's sqlite3 binds every parameter on its own (about 0.1 us each, with the GIL held), so an
upsert of 10,000 rows of 13 columns spends more time binding than SQLite spends writing, and the
GIL it holds meanwhile is what keeps one request's parsing from overlapping another's writing.
What is the same for every row (the request's timestamp) is a parameter bound once per statement, a
row's new id is that statement's first id plus the row's place in it (computed by SQLite, not
bound), a column that is all null is a literal NULL, and the statement text stays the same from one
request to the next so that sqlite3 compiles it once per connection.
"""

from __future__ import annotations

import re

_PLAIN_PARAM = re.compile(r"\?(?![0-9])")
SERIAL = "\x00serial"  # in a row template: the row's id, counted up from `serial` (see insert_rows)


def insert_many(
    conn, head: str, row: list, tail: str, columns: list, lead: tuple = (), serial=None, per: int = 64
) -> None:
    """Insert rows given by column, `per` rows to a statement.

    `row` is one row's VALUES: None where the next column's value goes, otherwise SQL (`?1`, `?2`...
    for the `lead` parameters that every row shares, such as the request's timestamp). Shared values
    are parameters rather than literals so that the statement text repeats from one request to the
    next, and sqlite3 compiles it once per connection instead of once per request. A column that is
    all null in this batch is written as NULL rather than bound row by row. SERIAL and `serial` are
    as for insert_rows.

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
        items.append(item)
    width = len(bound)
    flat = [None] * (width * count)
    for i, column in enumerate(bound):
        flat[i::width] = column
    insert_rows(conn, head, items, tail, flat, count, lead, serial, per)


def drop_columns(flat: list, width: int, places: list[int]) -> int:
    """Take the columns at `places` out of `flat` (row-major, `width` values a row), in place;
    returns the width left."""
    for place in sorted(places, reverse=True):
        del flat[place::width]
        width -= 1
    return width


def insert_rows(
    conn, head: str, row: list, tail: str, flat: list, count: int, lead: tuple = (), serial=None, per: int = 64
) -> None:
    """Insert `count` rows whose bound values are laid out row by row in `flat`, `per` to a statement.

    `row` is as for insert_many (None for a bound value), and may hold SERIAL once: the row's id,
    `serial` for the first row and one more for each next row. Each statement binds its first id
    once (after `lead`) and its rows add their place to it in SQL, so ids cost no binding."""
    if not count:
        return
    width = row.count(None)
    lead = list(lead)
    base = len(lead) + 1  # the statement's first id, when there is a serial column
    plain = base + 1 if serial is not None else base  # the number of the first plain ?
    one = "(" + ", ".join("?" if item is None else item for item in row) + ")"
    # a plain ? after ?N takes the number after the largest so far: only the first needs its number
    first = _PLAIN_PARAM.sub(f"?{plain}", one, count=1) if lead or serial is not None else one

    def sql(rows: int) -> str:
        texts = [first] + [one] * (rows - 1)
        if serial is not None:
            texts = [t.replace(SERIAL, f"?{base}+{k}" if k else f"?{base}", 1) for k, t in enumerate(texts)]
        return head + ", ".join(texts) + tail

    step = per * width
    full = count // per
    if full:
        text = sql(per)
        if serial is None:
            params = (lead + flat[s * step : (s + 1) * step] for s in range(full))
        else:
            params = (lead + [serial + s * per] + flat[s * step : (s + 1) * step] for s in range(full))
        conn.executemany(text, params)
    if count - full * per:
        rest = lead + ([serial + full * per] if serial is not None else []) + flat[full * step :]
        conn.execute(sql(count - full * per), rest)

"""Which routes may run in a thread of the scheduler, and which must have a process of their own.

`route schedule --isolation thread` runs routes in threads of the scheduler's own process: quick
to start, but a route that kills the interpreter kills the scheduler and every route running
beside it, mid-write. A Python exception cannot do that; a native reader can: calamine, which
reads workbooks, aborts the process when a hostile sheet asks it for more memory than there is
(the excel source checks .xlsx/.xlsm sheets before calamine sees them, but not .xls, .xlsb or
.ods). So a route whose source is read by such a reader runs in a child process whatever the
isolation, and the scheduler says so once per route.
"""

from __future__ import annotations

from pipeline.ops.scheduling.catalog import RouteEntry

# source kind -> why a route reading it gets a process of its own
NATIVE_SOURCES = {
    "excel": "its excel source is read by calamine, a native reader that can abort the whole process "
    "on a broken or hostile workbook",
}


def own_process_reason(entry: RouteEntry) -> str | None:
    """Why this route must not run in the scheduler's process (None: a thread is safe)."""
    source = entry.data.get("source") if isinstance(entry.data, dict) else None
    if not isinstance(source, dict):
        return None
    for kind in source:
        if kind in NATIVE_SOURCES:
            return NATIVE_SOURCES[kind]
    return None

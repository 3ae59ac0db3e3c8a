"""The tables of a database state, all named `route_*` so they can share a database with others.

Times are seconds since the epoch (floats) where route compares them (leases), ISO text where
people read them (history), as in the folder state.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

migrations = Table(
    "route_migrations",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("applied", Text, nullable=False),
    Column("host", Text),
)

runs = Table(
    "route_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("route", Text, nullable=False),
    Column("route_file", Text),
    Column("started", Text, nullable=False),
    Column("ended", Text),
    Column("status", String(32), nullable=False),
    Column("rows_read", Integer, server_default="0"),
    Column("rows_rejected", Integer, server_default="0"),
    Column("rows_delivered", Integer, server_default="0"),
    Column("error", Text),
    Column("rejects_file", Text),
    Column("report", Text),
    Column("pid", Integer),
    Column("host", Text),
    Column("slot", Text),  # the schedule slot a scheduled run answers (the scheduler's clock)
    Column("attempt", Integer, server_default="1"),
    Index("route_runs_route_started", "route", "started"),
)

marks = Table(
    "route_marks",
    metadata,
    Column("route", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("type", String(16), nullable=False),
    Column("value", Text, nullable=False),
    Column("run_id", String(64)),
    Column("updated_at", Text),
)

journals = Table(
    "route_journals",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("route", String(200), nullable=False),
    Column("created", Float, nullable=False),
    Index("route_journals_route", "route", "created"),
)

journal_lines = Table(
    "route_journal_lines",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("line", Text, nullable=False),
)

datasets = Table(
    "route_datasets",
    metadata,
    Column("portal", String(300), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("id", String(64), nullable=False),
    Column("name", Text),
)

notices = Table(
    "route_notices",
    metadata,
    Column("route", String(200), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("said", Text, nullable=False),
)

leases = Table(
    "route_leases",
    metadata,
    Column("name", String(300), primary_key=True),
    Column("owner", String(100), nullable=False),
    Column("holder", Text),  # host and process, for messages
    Column("acquired", Float, nullable=False),
    Column("expires", Float, nullable=False),
)

blobs = Table(
    "route_blobs",
    metadata,
    Column("name", String(400), primary_key=True),  # e.g. sync/<route>/<target>
    Column("data", LargeBinary, nullable=False),
    Column("updated", Float, nullable=False),
)

"""Where route keeps what outlives a run: a folder (one machine) or a database (many machines).

`place.state_place` reads the `state:` setting. A folder is today's layout (history.sqlite,
state.sqlite, journals/, ...), handled where each thing is kept. A database URL gives a SharedState,
and each kind of record goes to a table of its own (tables.py), created and migrated by route
(migrations.py), with leases (leases.py) in place of the folder's file locks.
"""

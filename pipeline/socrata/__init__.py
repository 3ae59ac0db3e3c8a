"""A client for Socrata portals: the socrata delivery and source are built on it.

http.py      one keep-alive session per portal; retries, back-off, Retry-After; errors explained
errors.py    SocrataError / OutcomeUnknown and the sentences that say what to do
views.py     dataset metadata (/api/views): columns, row identifier; creating a dataset
wire.py      canonical columns -> Socrata wire values (geo.py: geometry, location, url)
columns.py   route columns matched to dataset columns, every mismatch collected
convert.py   a chunk -> a wire table, rejecting values that do not convert
soda.py      SODA upsert/append/delete batches, several in flight (batching.py re-batches)
dsmapi.py    revisions of the Dataset Management API (replace.py drives a replace)
reader.py    paged, typed reads (the source, dry runs, counts)
dryrun.py    what a delivery would do, counted
local.py     the embedded local portal for `domain: local`
state.py     datasets route created, remembered in the state folder
"""

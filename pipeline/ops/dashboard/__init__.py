"""`route dashboard`: a small web dashboard over the state the scheduler keeps.

It reads what `route status` and `route history` read (the routes under some folders, each route's
`history.sqlite`, its run logs, JSON reports, rejects files and delivery journals) and writes
nothing of its own: a run started from it is `python -m pipeline.ops.scheduling.worker` (or
`route execute --dry-run`) in a child process, exactly as the scheduler starts one.

- state.py: what the pages show (routes and their status, runs, reports, logs, rejects, progress)
- launch.py: run now and dry run, in a child process
- pages.py, runpages.py: the HTML pages; static/: CSS, the page script and uPlot (MIT)
- app.py: the HTTP server (stdlib), Basic auth, CSRF tokens and the JSON endpoints
"""

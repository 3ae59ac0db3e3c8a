"""Running routes unattended: cron schedules, the scheduler service, run locks, status.

`route schedule` and `route status` live here (commands.py); croniter is imported only when a
schedule is read, so the rest of route works without it.
"""

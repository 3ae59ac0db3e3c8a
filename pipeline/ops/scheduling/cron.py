"""Cron schedules with an optional IANA time zone: when a route last fell due and falls due next.

Five fields (minute hour day-of-month month day-of-week, names allowed: `0 6 * * MON-FRI`) or one
of @hourly, @daily, @weekly, @monthly, @yearly. Times go in and out as aware datetimes; the
schedule is read in its zone, so `0 6 * * *` with America/New_York stays at 6 am across DST.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
UTC = dt.UTC


class ScheduleError(ValueError):
    """A schedule or time zone that cannot be used; the message says what to write."""


def _croniter():
    try:
        from croniter import croniter
    except ImportError:  # pragma: no cover - croniter is the `schedule` extra
        raise ScheduleError("schedules need croniter: pip install 'route-etl[schedule]'") from None
    return croniter


class Schedule:
    """A route's cron schedule in its time zone; ScheduleError when it cannot be read."""

    def __init__(self, text: str, timezone: str | None = None):
        self.text = str(text).strip()
        self.cron = ALIASES.get(self.text.lower(), self.text)
        self.timezone = timezone
        if len(self.cron.split()) != 5:
            raise ScheduleError(
                f"'{self.text}' is not a cron schedule: give five fields, minute hour day-of-month "
                f'month day-of-week, such as "0 6 * * MON" (or @hourly, @daily, @weekly)'
            )
        if not _croniter().is_valid(self.cron):
            raise ScheduleError(
                f"'{self.text}' is not a valid cron schedule: each field is *, a number, a range "
                f'(1-5), a list (1,15) or a step (*/10), as in "*/15 6-18 * * MON-FRI"'
            )
        try:
            self.zone = ZoneInfo(timezone) if timezone else UTC
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(f"unknown time zone '{timezone}': use an IANA name such as America/New_York") from None

    def __repr__(self) -> str:
        return f"Schedule({self.text!r}, {self.timezone!r})"

    def describe(self) -> str:
        return f"{self.text} ({self.timezone})" if self.timezone else self.text

    def previous(self, at: dt.datetime) -> dt.datetime:
        """The latest time the schedule fired at or before `at` (UTC)."""
        # croniter's get_prev is strictly before its start: start just after `at`'s whole second
        start = at.astimezone(self.zone).replace(microsecond=0) + dt.timedelta(seconds=1)
        return _croniter()(self.cron, start).get_prev(dt.datetime).astimezone(UTC)

    def next(self, after: dt.datetime) -> dt.datetime:
        """The first time the schedule fires strictly after `after` (UTC)."""
        return _croniter()(self.cron, after.astimezone(self.zone)).get_next(dt.datetime).astimezone(UTC)

    def interval_at(self, at: dt.datetime) -> dt.timedelta:
        """The gap between the fire times around `at` (a measure of how often the route runs)."""
        prev = self.previous(at)
        return self.next(prev) - prev

    def expanded(self) -> list[list]:
        """Each field's values (['*'] for every value), as croniter reads them."""
        return _croniter().expand(self.cron)[0]


def utc(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, UTC)


def parse_iso(text: str | None) -> dt.datetime | None:
    """A history timestamp (ISO 8601 with offset) as an aware datetime."""
    if not text:
        return None
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)

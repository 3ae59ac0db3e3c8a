"""`route schedule --print cron|systemd|windows`: the same schedules for the machine's own scheduler.

For sites that keep cron, systemd timers or Windows Task Scheduler: each route becomes a crontab
line, a .service/.timer pair, or a `schtasks` command running `route execute`. Where the target
cannot express a schedule (Task Scheduler and most cron fields, or any time zone), the task runs
`route schedule --once ROUTE` every minute instead, which applies the cron schedule itself.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.ops.scheduling.catalog import RouteEntry

DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def route_program() -> list[str]:
    """How the system's scheduler should call route: the installed script, else this Python."""
    found = shutil.which("route")
    return [str(Path(found).resolve())] if found else [sys.executable, "-m", "pipeline.cli"]


def command(entry: RouteEntry, profile: str | None, state, once: bool = False) -> list[str]:
    """The command that runs one route (or checks its schedule, with `once`)."""
    args = route_program() + (["schedule", "--once"] if once else ["execute", "--quiet"])
    if profile:
        args += ["--profile", profile]
    if state:
        args += ["--state", str(Path(state).resolve())]
    return args + [str(entry.file.resolve())]


def _skipped(entry: RouteEntry, comment: str) -> str | None:
    if entry.problem:
        return f"{comment} {entry.name}: cannot be scheduled: {entry.problem.splitlines()[0]}"
    if entry.schedule is None:
        return f"{comment} {entry.name}: no schedule in {entry.file}"
    return None


def cron(entries: list[RouteEntry], profile: str | None = None, state=None) -> str:
    """Crontab lines; routes with a time zone come last, each after its CRON_TZ (cronie) line."""
    lines = [
        "# route schedules: install with `crontab -e`. Each run also writes <state>/logs/<route>-<run>.log;",
        "# cron mails what a failing run prints on stderr when MAILTO is set.",
    ]
    for entry in sorted(entries, key=lambda e: (bool(e.schedule and e.schedule.timezone), e.name)):
        skipped = _skipped(entry, "#")
        if skipped:
            lines.append(skipped)
            continue
        run = shlex.join(command(entry, profile, state)).replace("%", r"\%")
        lines.append(f"# {entry.name} ({entry.file})")
        if entry.schedule.timezone:
            lines.append(f"CRON_TZ={entry.schedule.timezone}")
        lines.append(f"{entry.schedule.cron} {run} > /dev/null")
    return "\n".join(lines) + "\n"


def on_calendar(entry: RouteEntry) -> list[str]:
    """systemd OnCalendar= values for the cron schedule (two when cron would OR day fields)."""
    minute, hour, dom, month, dow = entry.schedule.expanded()

    def part(values, width=2):
        return "*" if values == ["*"] else ",".join(f"{int(v):0{width}d}" for v in values)

    days = "" if dow == ["*"] else ",".join(dict.fromkeys(DAYS[int(d)] for d in dow))
    zone = f" {entry.schedule.timezone}" if entry.schedule.timezone else ""
    time = f"{part(hour)}:{part(minute)}:00"
    if dom != ["*"] and days:  # cron runs when either day field matches
        return [f"*-{part(month)}-{part(dom)} {time}{zone}", f"{days} *-{part(month)}-* {time}{zone}"]
    return [f"{days + ' ' if days else ''}*-{part(month)}-{part(dom)} {time}{zone}"]


def _specifiers(text: str) -> str:
    """Text for a unit file, where % starts a specifier (%h, %n...): a literal % is %%. (ExecStart
    also expands $VAR, so a literal $ there is $$.)"""
    return text.replace("%", "%%")


def systemd(entries: list[RouteEntry], profile: str | None = None, state=None) -> str:
    """A .service and a .timer unit per route."""
    out = [
        "# route schedules as systemd timers: save each unit under /etc/systemd/system/ (or",
        "# ~/.config/systemd/user/), then `systemctl daemon-reload` and `systemctl enable --now <name>.timer`.",
        "# Persistent=true runs a missed run once after the machine was off, as `route schedule` does.",
        "",
    ]
    for entry in sorted(entries, key=lambda e: e.name):
        skipped = _skipped(entry, "#")
        if skipped:
            out += [skipped, ""]
            continue
        unit = f"route-{entry.name}"
        try:
            calendar, once = on_calendar(entry), False
        except (ValueError, TypeError, IndexError):  # cron forms systemd has no words for (L, #)
            calendar, once = ["minutely"], True
        out += [
            f"# ---- {unit}.service",
            "[Unit]",
            f"Description=route {entry.name}",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
            f"WorkingDirectory={_specifiers(str(entry.file.resolve().parent))}",
            "# EnvironmentFile=/etc/route/route.env   # the ${VAR}s the route needs (credentials)",
            f"ExecStart={_specifiers(shlex.join(command(entry, profile, state, once=once))).replace('$', '$$')}",
            "",
            f"# ---- {unit}.timer",
            "[Unit]",
            f"Description=route {entry.name}: {entry.schedule.describe()}",
            "",
            "[Timer]",
        ]
        out += [f"OnCalendar={value}" for value in calendar]
        out += ["Persistent=true", "", "[Install]", "WantedBy=timers.target", ""]
    return "\n".join(out)


def schtasks_schedule(entry: RouteEntry) -> list[str] | None:
    """schtasks /SC ... arguments for simple schedules in local time; None when it cannot say it."""
    if entry.schedule.timezone:
        return None
    minute, hour, dom, month, dow = entry.schedule.expanded()
    if month != ["*"]:
        return None
    if hour == ["*"] and dom == ["*"] and dow == ["*"]:
        if minute == ["*"]:
            return ["/SC", "MINUTE", "/MO", "1"]
        if len(minute) == 1:
            return ["/SC", "HOURLY", "/ST", f"00:{int(minute[0]):02d}"]
        step = minute[1] - minute[0]
        if minute[0] == 0 and 60 % step == 0 and minute == list(range(0, 60, step)):
            return ["/SC", "MINUTE", "/MO", str(step)]
        return None
    if len(minute) != 1 or len(hour) != 1 or minute == ["*"] or hour == ["*"]:
        return None
    at = ["/ST", f"{int(hour[0]):02d}:{int(minute[0]):02d}"]
    if dom == ["*"] and dow == ["*"]:
        return ["/SC", "DAILY"] + at
    if dom == ["*"]:
        return ["/SC", "WEEKLY", "/D", ",".join(dict.fromkeys(DAYS[int(d)].upper() for d in dow))] + at
    if dow == ["*"]:
        return ["/SC", "MONTHLY", "/D", ",".join(str(d) for d in dom)] + at
    return None


def windows(entries: list[RouteEntry], profile: str | None = None, state=None) -> str:
    """One `schtasks /Create` command per route."""
    out = [
        "REM route schedules for Windows Task Scheduler: run these in a command prompt (as the user",
        "REM that should run the routes). Task Scheduler uses the machine's local time.",
    ]
    for entry in sorted(entries, key=lambda e: e.name):
        skipped = _skipped(entry, "REM")
        if skipped:
            out.append(skipped)
            continue
        try:
            when = schtasks_schedule(entry)
        except (ValueError, TypeError, IndexError):
            when = None
        once = when is None
        if once:
            out.append(
                f"REM {entry.name}: '{entry.schedule.describe()}' is more than Task Scheduler can say; "
                f"`route schedule --once` runs every minute and applies it"
            )
            when = ["/SC", "MINUTE", "/MO", "1"]
        task = subprocess.list2cmdline(command(entry, profile, state, once=once))
        out.append(
            subprocess.list2cmdline(["schtasks", "/Create", "/F", "/TN", f"route\\{entry.name}"] + when + ["/TR", task])
        )
    return "\n".join(out) + "\n"


PRINTERS = {"cron": cron, "systemd": systemd, "windows": windows}

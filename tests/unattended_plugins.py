"""Rules for the scheduler tests (referenced by dotted path from test routes): they record when
they run, wait on files the test creates, crash the process, or wait to be stopped."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pipeline.basics.errors import RunFailed
from pipeline.basics.plugins import rule

OPTIONS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "log": {"type": "string"},
        "wait_for": {"type": "string"},
        "started": {"type": "string"},
        "exit": {"type": "integer"},
        "fail": {"type": "string"},
        "until_stopped": {"type": "boolean"},
        "say": {"type": "string"},
    },
}


@rule(OPTIONS)
def record(chunk, options, ctx):
    """Appends `start <route>` / `end <route>` lines to `log`; may wait for a file, crash, fail, or
    block until the run is stopped."""
    if options.get("say"):
        ctx.log.info(options["say"])
        ctx.log.warning("something odd", exc_info=ValueError(options["say"]))
    log = Path(options["log"]) if options.get("log") else None
    if log:
        with open(log, "a") as f:
            f.write(f"start {ctx.run.route_name} {time.time()}\n")
    if options.get("started"):
        Path(options["started"]).write_text("started")
    if options.get("exit") is not None:
        os._exit(options["exit"])
    if options.get("fail"):
        raise RunFailed(options["fail"])
    deadline = time.monotonic() + 20
    if options.get("wait_for"):
        while not Path(options["wait_for"]).exists() and time.monotonic() < deadline:
            if ctx.run.cancelled.wait(0.02):
                break
    if options.get("until_stopped"):
        while not ctx.run.cancelled.wait(0.02) and time.monotonic() < deadline:
            pass
    if log:
        with open(log, "a") as f:
            f.write(f"end {ctx.run.route_name} {time.time()}\n")
    return chunk

"""Bounded hand-over between the executor's threads, with cancellation.

A Channel holds at most a few chunks, so a fast stage waits for a slow one instead of filling
memory; every wait wakes up regularly to notice that the run was cancelled elsewhere.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

_END = object()
_POLL = 0.05


class Cancelled(Exception):
    """The run was cancelled by another thread's failure; the real error is reported there."""


class Channel:
    def __init__(self, cancel: threading.Event, maxsize: int = 2):
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._cancel = cancel

    def put(self, item: Any) -> None:
        while True:
            if self._cancel.is_set():
                raise Cancelled()
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Tell the consumer there is nothing more (ignored if the run is cancelled)."""
        try:
            self.put(_END)
        except Cancelled:
            pass

    def __iter__(self) -> Iterator[Any]:
        while True:
            if self._cancel.is_set():
                raise Cancelled()
            try:
                item = self._queue.get(timeout=_POLL)
            except queue.Empty:
                continue
            if item is _END:
                return
            yield item
            del item  # not held while waiting for the next one


def produce_in_thread(iterator_factory, cancel: threading.Event, errors: list, name: str, maxsize: int = 1) -> Channel:
    """Run `iterator_factory()` in a daemon thread, feeding its items into a Channel."""
    channel = Channel(cancel, maxsize)

    def work():
        try:
            for item in iterator_factory():
                channel.put(item)
                del item  # the consumer's now: not held while the next one is made
            channel.close()
        except Cancelled:
            pass
        except BaseException as exc:  # handed to the main thread, which reports it
            errors.append(exc)
            cancel.set()

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    channel.thread = thread
    return channel

"""Bounded hand-over between the executor's threads, with cancellation.

A Channel holds at most a few chunks, so a fast stage waits for a slow one instead of filling
memory; every wait wakes up regularly to notice that the run was cancelled elsewhere.

A producer that goes on to make its next chunk only once the consumer has taken the last one
(`wait_taken`) holds no finished chunk while it waits: with a plain bounded queue the producer
would sit in `put` holding one more chunk than the queue, a chunk per stage more at the peak (about
10 MB each for 50,000 typical rows). The stages still overlap: the producer makes chunk k+1 while
the consumer works on chunk k.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

_END = object()
_POLL = 0.05


class Cancelled(Exception):
    """The run was cancelled by another thread's failure; the real error is reported there."""


class Channel:
    def __init__(self, cancel: threading.Event, maxsize: int = 2):
        self._items: deque = deque()
        self._maxsize = max(1, maxsize)
        self._cancel = cancel
        self._changed = threading.Condition()

    def put(self, item: Any) -> None:
        """Queue `item`, waiting while the channel is full."""
        if self._cancel.is_set():
            raise Cancelled()
        with self._changed:
            while len(self._items) >= self._maxsize:
                self._wait()
            self._items.append(item)
            self._changed.notify_all()

    def wait_taken(self) -> None:
        """Wait until the consumer has taken everything put so far (or the run is cancelled)."""
        with self._changed:
            while self._items:
                self._wait()

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
            with self._changed:
                while not self._items:
                    self._wait()
                item = self._items.popleft()
                self._changed.notify_all()
            if item is _END:
                return
            # Yielded out of a one-item list, so that this generator keeps no reference to the
            # chunk while it is suspended: the consumer alone decides when it is freed.
            box = [item]
            del item
            yield box.pop()

    def _wait(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()
        self._changed.wait(_POLL)
        if self._cancel.is_set():
            raise Cancelled()


def produce_in_thread(iterator_factory, cancel: threading.Event, errors: list, name: str, maxsize: int = 1) -> Channel:
    """Run `iterator_factory()` in a daemon thread, feeding its items into a Channel; the next item
    is made only once the consumer has taken the last (see the module docstring)."""
    channel = Channel(cancel, maxsize)

    def work():
        try:
            for item in iterator_factory():
                channel.put(item)
                del item  # the consumer's now: not held while the next one is made
                channel.wait_taken()
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

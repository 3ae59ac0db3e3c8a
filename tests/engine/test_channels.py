"""The hand-over between the executor's threads: a producer makes its next chunk only once the
consumer took the last, so no finished chunk waits in a blocked producer (issue 19, memory), and
a cancelled run stops every side."""

from __future__ import annotations

import threading

import pytest

from pipeline.engine.channels import Cancelled, produce_in_thread
from tests.polling import wait_until


def test_the_producer_makes_the_next_item_only_once_the_last_is_taken():
    cancel = threading.Event()
    made: list[int] = []

    def items():
        for i in range(5):
            made.append(i)
            yield i

    channel = produce_in_thread(items, cancel, [], "test-producer")
    taken = []
    for item in channel:
        # the one taken is the last one made: nothing more is made until it is taken
        wait_until(lambda: len(made) >= min(len(taken) + 2, 5), what="the next item to be made")
        assert len(made) <= len(taken) + 2
        taken.append(item)
    assert taken == [0, 1, 2, 3, 4]
    channel.thread.join(5)
    assert not channel.thread.is_alive()


def test_a_producer_waiting_for_its_item_to_be_taken_stops_when_the_run_is_cancelled():
    cancel = threading.Event()
    made: list[int] = []

    def items():
        for i in range(100):
            made.append(i)
            yield i

    channel = produce_in_thread(items, cancel, [], "test-producer")
    wait_until(lambda: made, what="the first item")
    cancel.set()
    channel.thread.join(5)
    assert not channel.thread.is_alive()
    with pytest.raises(Cancelled):
        next(iter(channel))


def test_an_error_in_the_producer_reaches_the_consumer_as_a_cancelled_run():
    cancel = threading.Event()
    errors: list[BaseException] = []

    def items():
        yield 1
        raise ValueError("the source broke")

    channel = produce_in_thread(items, cancel, errors, "test-producer")
    with pytest.raises(Cancelled):
        for _ in channel:
            pass
    assert [str(e) for e in errors] == ["the source broke"]

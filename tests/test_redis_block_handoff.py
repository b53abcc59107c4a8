"""The bounded hand-off of JSON blocks between the RDB walk and the JSON export's store,
and the tee's walk ending it."""

import threading

import pytest

from engines.redis import rdb_format
from engines.redis.block_handoff import BlockHandoff, HandoffStopped
from engines.redis.rdb_format import RdbFormatError
from engines.redis.rdb_tee import SummarisingTee, WalkStopped
from tests.support.rdb_crafted import crafted


def _produce(handoff: BlockHandoff, blocks: list[bytes], outcome: list) -> threading.Thread:
    def run() -> None:
        try:
            for block in blocks:
                handoff.put(block)
            handoff.close()
            outcome.append("closed")
        except HandoffStopped as stopped:
            outcome.append(stopped)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_blocks_arrive_in_order_and_the_loop_ends_at_close():
    handoff = BlockHandoff(max_bytes=10)
    blocks = [bytes([i]) * (i % 7 + 1) for i in range(200)]
    outcome: list = []
    producer = _produce(handoff, blocks, outcome)
    assert list(handoff) == blocks
    producer.join()
    assert outcome == ["closed"]


def test_the_producer_waits_while_the_bound_is_reached():
    handoff = BlockHandoff(max_bytes=8)
    outcome: list = []
    producer = _produce(handoff, [b"abcd", b"efgh", b"ijkl"], outcome)
    producer.join(timeout=0.5)
    assert producer.is_alive()  # 8 bytes wait; the third block has no room
    taken = iter(handoff)
    assert next(taken) == b"abcd"
    producer.join(timeout=10)
    assert not producer.is_alive()
    assert list(taken) == [b"efgh", b"ijkl"]


def test_a_block_bigger_than_the_bound_passes_alone():
    handoff = BlockHandoff(max_bytes=4)
    outcome: list = []
    producer = _produce(handoff, [b"x" * 100, b"y"], outcome)
    assert list(handoff) == [b"x" * 100, b"y"]
    producer.join()


def test_the_producers_failure_is_raised_in_the_consumer_and_queued_blocks_dropped():
    handoff = BlockHandoff(max_bytes=100)
    handoff.put(b"line\n")
    handoff.fail(ValueError("the walk stopped"))
    with pytest.raises(ValueError, match="the walk stopped"):
        list(handoff)
    handoff.close()  # the first end counts
    with pytest.raises(ValueError):
        list(handoff)


def test_a_consumer_that_stops_wakes_the_waiting_producer():
    handoff = BlockHandoff(max_bytes=4)
    outcome: list = []
    producer = _produce(handoff, [b"abcd", b"efgh"], outcome)
    producer.join(timeout=0.5)
    assert producer.is_alive()
    handoff.stop()
    producer.join(timeout=10)
    assert not producer.is_alive()
    assert isinstance(outcome[0], HandoffStopped)
    with pytest.raises(HandoffStopped):
        handoff.put(b"more")


def _pieces(data: bytes, size: int = 1 << 16) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("walk", ["c", "python"])
def test_a_json_side_that_stops_ends_the_walk_and_the_rdb_still_passes(walk, monkeypatch):
    if walk == "python":
        monkeypatch.setattr(rdb_format, "rdb_walk", None)
    elif rdb_format.rdb_walk is None:
        pytest.skip("the C walk is not built")
    rdb = crafted("big_keys").data
    handoff = BlockHandoff(max_bytes=1 << 20)
    tee = SummarisingTee(_pieces(rdb), now_ms=0, json=handoff)
    taken: list[bytes] = []

    def take_one_then_stop() -> None:
        for block in handoff:
            taken.append(block)
            break
        handoff.stop()

    consumer = threading.Thread(target=take_one_then_stop)
    consumer.start()
    assert b"".join(tee) == rdb  # every byte passed on, the walk stopped early
    consumer.join()
    assert len(taken) == 1
    assert tee.summary() is None and isinstance(tee.error, HandoffStopped)


def test_the_walk_ends_the_handoff_with_the_reason_it_stopped():
    rdb = crafted("big_keys").data
    handoff = BlockHandoff(max_bytes=64 << 20)
    tee = SummarisingTee(_pieces(rdb[: len(rdb) // 2]), now_ms=0, json=handoff)
    assert b"".join(tee) == rdb[: len(rdb) // 2]
    with pytest.raises(WalkStopped, match="could not be read: the RDB ends early"):
        list(handoff)
    assert tee.summary() is None and isinstance(tee.error, RdbFormatError)

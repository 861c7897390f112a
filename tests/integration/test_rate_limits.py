"""The rate-limit slots store against moto: one write a batch, whatever the clocks and the backlog."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hookrelay.aws import table
from hookrelay.rate_limit import BACKLOG_LIMIT, BacklogFull, slot_spacing_us, to_slot_us
from hookrelay.settings import get_settings
from hookrelay.store.rate_limits import DynamoRateLimiter
from hookrelay_cli.local.stack import LocalStack

NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
SUBSCRIPTION = "00000000-0000-4000-8000-00000000000a"


class Writes:
    """The UpdateItem calls made on the deliveries table's client while open."""

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> "Writes":
        table(get_settings().deliveries_table).client.meta.events.register("before-call.dynamodb.UpdateItem", self)
        return self

    def __exit__(self, *_: object) -> None:
        table(get_settings().deliveries_table).client.meta.events.unregister("before-call.dynamodb.UpdateItem", self)

    def __call__(self, **_: Any) -> None:
        self.count += 1


def limiter(**options: Any) -> DynamoRateLimiter:
    return DynamoRateLimiter(table(get_settings().deliveries_table), **{"spacing_seconds": 0, **options})


def seconds_after(slots: list[datetime], start: datetime = NOW) -> list[float]:
    """Each slot's time after `start`, in spacings of a rate of 1 (1.05 s: slot_spacing_us)."""
    return [round((slot - start) / timedelta(microseconds=slot_spacing_us(1)), 6) for slot in slots]


def test_a_batch_takes_its_slots_in_one_write_and_the_next_batch_follows_them(stack: LocalStack) -> None:
    one, other = limiter(), limiter()
    with Writes() as writes:
        assert seconds_after(one.reserve(SUBSCRIPTION, 2, 3, NOW)) == [0, 0.5, 1.0]
        assert seconds_after(one.reserve(SUBSCRIPTION, 2, 2, NOW)) == [1.5, 2.0]
    assert writes.count == 2
    # Another container, new to the item, reads it first: one write all the same.
    with Writes() as writes:
        assert seconds_after(other.reserve(SUBSCRIPTION, 2, 1, NOW)) == [2.5]
    assert writes.count == 1


def test_after_an_idle_spell_slots_start_from_now(stack: LocalStack) -> None:
    container = limiter()
    container.reserve(SUBSCRIPTION, 1, 3, NOW)
    later = NOW + timedelta(minutes=5)
    with Writes() as writes:
        assert seconds_after(container.reserve(SUBSCRIPTION, 1, 2, later), later) == [0, 1]
    assert writes.count == 1  # the backlog it saw is past: it takes slots from now


def test_clocks_that_disagree_never_take_slots_closer_than_the_spacing(stack: LocalStack) -> None:
    right, behind, ahead = limiter(), limiter(), limiter()
    right.reserve(SUBSCRIPTION, 1, 3, NOW)  # now, +1 s, +2 s
    assert seconds_after(behind.reserve(SUBSCRIPTION, 1, 1, NOW - timedelta(seconds=30))) == [3]
    assert seconds_after(ahead.reserve(SUBSCRIPTION, 1, 1, NOW + timedelta(seconds=31.5))) == [30]
    assert seconds_after(right.reserve(SUBSCRIPTION, 1, 1, NOW)) == [31]


def test_a_rate_change_spaces_the_slots_taken_after_it(stack: LocalStack) -> None:
    container = limiter()
    container.reserve(SUBSCRIPTION, 1, 3, NOW)  # then PATCH rate_limit 4
    assert seconds_after(container.reserve(SUBSCRIPTION, 4, 3, NOW)) == [3, 3.25, 3.5]


def test_slots_are_not_taken_past_the_backlog_limit(stack: LocalStack) -> None:
    container = limiter()
    limit = BACKLOG_LIMIT // timedelta(microseconds=slot_spacing_us(1))  # slots within the limit
    container.reserve(SUBSCRIPTION, 1, limit - 2, NOW)
    assert seconds_after(container.reserve(SUBSCRIPTION, 1, 2, NOW)) == [limit - 2, limit - 1]
    with pytest.raises(BacklogFull):
        container.reserve(SUBSCRIPTION, 1, 1, NOW)
    with Writes() as writes, pytest.raises(BacklogFull):  # a container new to it reads it: no write
        limiter().reserve(SUBSCRIPTION, 1, 1, NOW)
    assert writes.count == 0
    item = table(get_settings().deliveries_table).get_item(Key={"delivery_id": f"rate#{SUBSCRIPTION}"})["Item"]
    assert item["next_send_at"] == to_slot_us(NOW) + limit * slot_spacing_us(1)


def test_containers_racing_never_share_a_slot(stack: LocalStack) -> None:
    containers = [limiter() for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        taken = list(pool.map(lambda container: container.reserve(SUBSCRIPTION, 10, 5, NOW), containers))
    slots = sorted(slot for batch in taken for slot in batch)
    assert [(slot - NOW) // timedelta(microseconds=1) for slot in slots] == [n * 105_000 for n in range(40)]


def test_a_container_writes_one_subscriptions_item_at_most_every_spacing(stack: LocalStack) -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    # Its first write to an item comes at a random point of its first 2 s (here 1.5 s in), and its slot
    # is taken from then, not from the `now` it was asked at.
    container = limiter(spacing_seconds=2.0, monotonic=lambda: clock[0], sleep=sleep, random=lambda: 0.25)
    assert [(slot - NOW).total_seconds() for slot in container.reserve(SUBSCRIPTION, 1, 1, NOW)] == [1.5]
    clock[0] += 0.5
    assert [(slot - NOW).total_seconds() for slot in container.reserve(SUBSCRIPTION, 1, 1, NOW)] == [2.55]
    container.reserve("00000000-0000-4000-8000-00000000000b", 1, 1, NOW)  # another item: its own turns
    assert slept == [1.5, 1.5, 1.5]

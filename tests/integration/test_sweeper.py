"""The sweeper handler against moto: due retries go back on the delivery queue once, never twice."""

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import records

import hookrelay.sweeper
from hookrelay import clock, wiring
from hookrelay.aws import table
from hookrelay.ingest import new_delivery
from hookrelay.records import Event
from hookrelay.settings import get_settings
from hookrelay.slow_answers import SLOW_ANSWER_MS
from hookrelay.store.due_retries import DueSlice, DynamoDueRetries, due_shard, due_shard_name
from hookrelay.sweeper import Sweeper
from hookrelay.time_budget import UNLIMITED
from hookrelay_cli.local.stack import LocalStack
from integration.test_ingest import drain

EVENT = Event(
    event_id="0f29a0a2-3a6f-44a4-b2a2-5d7b3f1b1f9b",
    event_name="signer.done",
    event_time="2026-03-02T10:15:30.000Z",
    team_id="acme",
    data={},
)


def scheduled_delivery(index: int, due_in: timedelta, last_latency_ms: int = 120) -> str:
    """A delivery with two attempts made, the last answered after `last_latency_ms`, its retry due in `due_in`."""
    delivery = new_delivery(EVENT, records.subscription(index))
    records.store_pending(table(get_settings().deliveries_table), [delivery])
    due = clock.iso(clock.utc_now() + due_in)
    attempts = [
        {"at": clock.iso(clock.utc_now() - timedelta(hours=hours)), "latency_ms": latency_ms, "status_code": 503}
        for hours, latency_ms in ((3, 120), (1, last_latency_ms))
    ]
    table(get_settings().deliveries_table).update_item(
        Key={"delivery_id": delivery.id},
        UpdateExpression=(
            "SET #s = :s, attempt_count = :n, attempts = :attempts, next_attempt_at = :due, due_at = :due,"
            " due_shard = :shard"
        ),
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":s": "scheduled",
            ":n": 2,
            ":attempts": attempts,
            ":due": due,
            ":shard": due_shard(delivery.id, get_settings().due_shards),
        },
    )
    return delivery.id


def messages(queue_url: str | None = None) -> list[dict[str, Any]]:
    """The messages on the delivery queue (or the queue at `queue_url`)."""
    return [json.loads(message["Body"]) for message in drain(queue_url or get_settings().delivery_queue_url)]


@pytest.fixture
def sweep(stack: LocalStack) -> Callable[[], Any]:
    return lambda: stack.invoke("SweeperFunction", {"source": "aws.events", "detail-type": "Scheduled Event"})


def test_due_retries_are_enqueued_with_their_next_attempt(sweep: Callable[[], Any]) -> None:
    due = {scheduled_delivery(index, timedelta(minutes=-1)) for index in range(25)}
    later = scheduled_delivery(99, timedelta(hours=1))
    assert sweep() == {"enqueued": 25}
    sent = messages()
    assert sorted(m["delivery_id"] for m in sent) == sorted(due)
    assert {m["attempt"] for m in sent} == {3}
    assert later not in {m["delivery_id"] for m in sent}
    assert sweep() == {"enqueued": 0}  # claimed: nothing is due again until its lease ends


def test_the_retries_of_endpoints_that_answered_slowly_go_to_the_slow_lane(sweep: Callable[[], Any]) -> None:
    # Through the template's policies: the sweeper may send to both queues.
    fast = {scheduled_delivery(index, timedelta(minutes=-1)) for index in range(5)}
    slow = {scheduled_delivery(index, timedelta(minutes=-1), SLOW_ANSWER_MS) for index in range(5, 12)}
    assert sweep() == {"enqueued": 12}
    assert sorted(m["delivery_id"] for m in messages()) == sorted(fast)
    to_slow_lane = messages(get_settings().slow_lane_url)
    assert sorted(m["delivery_id"] for m in to_slow_lane) == sorted(slow)
    assert {m["attempt"] for m in to_slow_lane} == {3}


def test_a_shard_with_more_than_a_page_of_due_retries_is_read_to_its_end(
    sweep: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 25 retries in 8 shards: some shard holds at least 4, two pages of 2 or more.
    monkeypatch.setattr(hookrelay.sweeper, "PAGE", 2)
    due = {scheduled_delivery(index, timedelta(minutes=-1)) for index in range(25)}
    assert sweep() == {"enqueued": 25}
    assert sorted(m["delivery_id"] for m in messages()) == sorted(due)


def test_two_sweepers_at_once_never_enqueue_a_retry_twice(stack: LocalStack) -> None:
    """Sweeper B runs whole between sweeper A's read of the index and A's claims.

    moto's conditional writes are not atomic across threads (DynamoDB's are), so rather than race
    two threads this stages the worst interleaving: A holds a stale view of every due retry.
    """
    due = {scheduled_delivery(index, timedelta(seconds=-5)) for index in range(40)}
    settings = get_settings()
    now = clock.utc_now()

    def new_sweeper(due_retries: DynamoDueRetries) -> Sweeper:
        return wiring.sweeper(settings, due_retries=due_retries)

    sweeper_b = new_sweeper(DynamoDueRetries(table(settings.deliveries_table)))
    swept_by_b: list[int] = []
    snapshot: dict[str, DueSlice] = {}
    lock = threading.Lock()

    class StaleView(DynamoDueRetries):
        """A's reads of the index all happen before B sweeps; A's claims all after."""

        def due(self, shard: str, now: str, limit: int, after: dict[str, Any] | None = None) -> DueSlice:
            with lock:
                if not swept_by_b:
                    for index in range(settings.due_shards):
                        name = due_shard_name(index)
                        snapshot[name] = super().due(name, now, limit, after)
                    swept_by_b.append(sweeper_b.sweep(clock.parse_moment(now), UNLIMITED))
            return snapshot.pop(shard, DueSlice([], None))

    swept_by_a = new_sweeper(StaleView(table(settings.deliveries_table))).sweep(now, UNLIMITED)
    assert swept_by_b == [40] and swept_by_a == 0
    sent = [m["delivery_id"] for m in messages()]
    assert sorted(sent) == sorted(due)

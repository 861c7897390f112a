"""The slow lane (hookrelay.slow_lane) against moto and real receivers on 127.0.0.1: an endpoint that answered
slowly no longer holds the delivery queue's invocations; its messages wait on the slow lane and are sent
from there, nothing lost and nothing sent twice."""

import io
import json
import threading
import time
from collections.abc import Sequence
from datetime import timedelta

import pytest
from receivers import Answer, receiver
from records import subscription_id

from hookrelay import clock, wiring
from hookrelay.aws import client, table
from hookrelay.errors import Unavailable
from hookrelay.observability import logger
from hookrelay.queues import Message, Queue
from hookrelay.records import delivery_id
from hookrelay.settings import get_settings
from hookrelay.slow_answers import SLOW_ANSWER_MS
from hookrelay.slow_lane import REMEMBERED_FOR_SECONDS, REMEMBERED_SPREAD, SlowLane
from hookrelay.store.subscriptions import DynamoSubscriptionStore
from hookrelay.time_budget import UNLIMITED
from hookrelay.transport import Transport
from hookrelay_cli.local.stack import LocalStack
from integration.test_crash_safety import queue_depth
from integration.test_delivery import World, event_of, queued_jobs, slots_taken_until
from integration.test_ingest import ingest_batch

SLOW_SECONDS = SLOW_ANSWER_MS / 1000 + 0.3


@pytest.fixture
def world(stack: LocalStack) -> World:
    return World(transport=Transport(allow_private=True, total_timeout=5.0))


def webhook_ids(requests: Sequence[object]) -> list[str]:
    return [request.headers["webhook-id"] for request in requests]  # type: ignore[attr-defined]


def test_a_slow_endpoints_next_messages_wait_on_the_slow_lane_and_are_sent_from_there(world: World) -> None:
    settings = get_settings()
    with receiver(lambda _: Answer(delay_seconds=SLOW_SECONDS)) as slow, receiver() as fast:
        slow_subscription = world.subscribe(slow.port)
        fast_subscription = world.subscribe(fast.port, id=subscription_id(1), team_id="other-team")
        first, second, third = (world.pending(slow_subscription, event_of(slow_subscription, n)) for n in range(3))
        other = world.pending(fast_subscription, event_of(fast_subscription, 0))
        (report,) = world.deliverer.deliver_batch([("m1", world.message(first, 1))], UNLIMITED)
        assert report.outcome == "delivered"

        started = time.monotonic()
        batch = [("m2", world.message(second, 1)), ("m3", world.message(other, 1)), ("m4", world.message(third, 1))]
        reports = world.deliverer.deliver_batch(batch, UNLIMITED)
        # The batch did not wait for the slow endpoint: the other team's delivery went out at once.
        assert time.monotonic() - started < SLOW_SECONDS
        assert [report.outcome for report in reports] == [
            "moved to the slow lane",
            "delivered",
            "moved to the slow lane",
        ]
        assert not any(report.comes_back for report in reports)
        assert webhook_ids(slow.received) == [first] and webhook_ids(fast.received) == [other]
        assert world.delivery_log.get(second) is None  # nothing recorded: no attempt was made

        moved = [body for _, body in queued_jobs(2, settings.slow_lane_url).values()]
        # As they were: a first attempt keeps the origin its record is made from.
        assert sorted(moved) == sorted([world.message(second, 1), world.message(third, 1)])
        reports = world.deliverer.deliver_batch(
            [(f"s{n}", body) for n, body in enumerate(moved)], UNLIMITED, from_slow_lane=True
        )
        assert [report.outcome for report in reports] == ["delivered", "delivered"]
    assert sorted(webhook_ids(slow.received)) == sorted([first, second, third])
    for delivery in (second, third):
        record = world.delivery_log.get(delivery)
        assert record and record.status == "delivered" and record.attempt_count == 1
    assert queue_depth(settings.delivery_queue_url) == 0


def test_a_batch_moves_a_slow_endpoints_messages_once_the_others_sends_are_under_way(stack: LocalStack) -> None:
    # A busy team's burst to a slow endpoint fills the batches a quiet team's message shares (fair queues).
    quiet_sent = threading.Event()
    sent_before_the_move: list[bool] = []

    class MoveAfterQuietSend(Queue):
        def send(self, messages: Sequence[Message]) -> None:
            sent_before_the_move.append(quiet_sent.wait(timeout=SLOW_SECONDS))
            super().send(messages)

    slow_lane = SlowLane(MoveAfterQuietSend(client("sqs"), get_settings().slow_lane_url))
    world = World(transport=Transport(allow_private=True, total_timeout=5.0), slow_lane=slow_lane)

    def quiet_answer(_: object) -> Answer:
        quiet_sent.set()
        return Answer()

    with receiver(lambda _: Answer(delay_seconds=SLOW_SECONDS)) as slow, receiver(quiet_answer) as quiet:
        busy = world.subscribe(slow.port)
        quiet_subscription = world.subscribe(quiet.port, id=subscription_id(1), team_id="other-team")
        first, *burst = (world.pending(busy, event_of(busy, n)) for n in range(5))
        world.deliverer.deliver_batch([("m1", world.message(first, 1))], UNLIMITED)
        other = world.pending(quiet_subscription, event_of(quiet_subscription, 0))
        batch = [(f"b{n}", world.message(delivery, 1)) for n, delivery in enumerate(burst)]
        reports = world.deliverer.deliver_batch([*batch, ("q", world.message(other, 1))], UNLIMITED)
    assert [report.outcome for report in reports] == ["moved to the slow lane"] * 4 + ["delivered"]
    assert sent_before_the_move == [True]
    assert sorted(body for _, body in queued_jobs(4, get_settings().slow_lane_url).values()) == sorted(
        body for _, body in batch
    )


def test_a_retry_of_an_endpoint_that_answered_slowly_waits_on_the_slow_lane(world: World) -> None:
    settings = get_settings()
    with receiver(lambda _: Answer(500, delay_seconds=SLOW_SECONDS)) as server:
        delivery = world.pending(world.subscribe(server.port))
        assert world.deliver(delivery, 1).outcome == "pending"
    ((retry, _),) = queued_jobs(1, settings.slow_lane_url).values()
    assert (retry.delivery_id, retry.attempt) == (delivery, 2)
    assert queue_depth(settings.delivery_queue_url) == 0


def test_an_endpoint_that_answers_fast_again_is_sent_from_the_delivery_queue(world: World) -> None:
    answers = iter([Answer(delay_seconds=SLOW_SECONDS), Answer(), Answer()])
    with receiver(lambda _: next(answers)) as server:
        subscription = world.subscribe(server.port)
        first, second, third = (world.pending(subscription, event_of(subscription, n)) for n in range(3))
        world.deliverer.deliver_batch([("m1", world.message(first, 1))], UNLIMITED)
        world.deliverer.deliver_batch([("s2", world.message(second, 1))], UNLIMITED, from_slow_lane=True)
        (report,) = world.deliverer.deliver_batch([("m3", world.message(third, 1))], UNLIMITED)
    assert report.outcome == "delivered"
    assert webhook_ids(server.received) == [first, second, third]


def test_a_message_of_the_slow_lane_waits_for_its_rate_limit_slot_on_the_slow_lane(world: World) -> None:
    # On the delivery queue, a container that saw the endpoint slow would move it back without its delay:
    # received after its slot by a busy slow lane, it would take a new slot and go round again.
    settings = get_settings()
    with receiver() as server:
        subscription = world.subscribe(server.port, rate_limit=1)
        delivery = world.pending(subscription)
        slots_taken_until(subscription, clock.utc_now() + timedelta(seconds=4))
        (report,) = world.deliverer.deliver_batch([("s1", world.message(delivery, 1))], UNLIMITED, from_slow_lane=True)
        assert report.outcome == "waiting"
        assert queue_depth(settings.delivery_queue_url) == 0
        ((waited, body),) = queued_jobs(1, settings.slow_lane_url).values()
        assert waited.slot_at
        (report,) = world.deliverer.deliver_batch([("s2", body)], UNLIMITED, from_slow_lane=True)
    assert report.outcome == "delivered"
    assert webhook_ids(server.received) == [delivery]


def test_messages_the_slow_lane_does_not_take_come_back_unsent(stack: LocalStack) -> None:
    # SQS refuses every send (here: no such queue; on AWS also a missing permission or an outage).
    refusing = SlowLane(Queue(client("sqs"), get_settings().slow_lane_url + "-missing"))
    world = World(transport=Transport(allow_private=True, total_timeout=5.0), slow_lane=refusing)
    with receiver(lambda _: Answer(delay_seconds=SLOW_SECONDS)) as server:
        subscription = world.subscribe(server.port)
        first, second = (world.pending(subscription, event_of(subscription, n)) for n in range(2))
        world.deliverer.deliver_batch([("m1", world.message(first, 1))], UNLIMITED)
        (report,) = world.deliverer.deliver_batch([("m2", world.message(second, 1))], UNLIMITED)
    assert report.outcome == "error" and report.comes_back
    assert webhook_ids(server.received) == [first]
    assert world.delivery_log.get(second) is None


def test_ingest_sends_an_endpoint_marked_slow_straight_to_the_slow_lane_until_the_mark_ends(
    stack: LocalStack, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    with receiver(lambda _: Answer(delay_seconds=SLOW_SECONDS)) as slow, receiver() as fast:
        slow_subscription = world.subscribe(slow.port)
        fast_subscription = world.subscribe(fast.port, id=subscription_id(1), team_id="other-team")
        version = world.subscriptions.versions([slow_subscription.team_id])
        first = world.pending(slow_subscription, event_of(slow_subscription, 0))
        world.deliverer.deliver_batch([("m1", world.message(first, 1))], UNLIMITED)
        # A health write of delivery's: no cache re-reads the team for it.
        assert world.subscriptions.versions([slow_subscription.team_id]) == version

        slow_event, fast_event = event_of(slow_subscription, 1), event_of(fast_subscription, 1)
        assert ingest_batch(stack, {"r1": slow_event, "r2": fast_event}) == set()
        on_the_slow_lane = queued_jobs(1, settings.slow_lane_url)
        assert set(on_the_slow_lane) == {delivery_id(slow_event.event_id, slow_subscription.id)}
        assert set(queued_jobs(1, settings.delivery_queue_url)) == {
            delivery_id(fast_event.event_id, fast_subscription.id)
        }
        ((job, body),) = on_the_slow_lane.values()
        (report,) = world.deliverer.deliver_batch([("s1", body)], UNLIMITED, from_slow_lane=True)
        assert report.outcome == "delivered"
    assert webhook_ids(slow.received) == [first, job.delivery_id]

    # A mark lasts REMEMBERED_FOR_SECONDS within REMEMBERED_SPREAD: then the delivery queue's consumers look
    # at the endpoint again.
    later = clock.utc_now() + timedelta(seconds=REMEMBERED_FOR_SECONDS * (1 + REMEMBERED_SPREAD) + 1)
    monkeypatch.setattr(clock, "utc_now", lambda: later)
    late_event = event_of(slow_subscription, 2)
    assert ingest_batch(stack, {"r3": late_event}) == set()
    assert set(queued_jobs(1, settings.delivery_queue_url)) == {delivery_id(late_event.event_id, slow_subscription.id)}


class CountingMarks(DynamoSubscriptionStore):
    def __init__(self, fails: bool = False) -> None:
        super().__init__(table(get_settings().subscriptions_table))
        self.marked: list[str] = []
        self.fails = fails

    def mark_slow(self, team_id: str, subscription_id: str, until: int, now: int) -> None:
        self.marked.append(subscription_id)
        if self.fails:
            raise Unavailable("ProvisionedThroughputExceededException")
        super().mark_slow(team_id, subscription_id, until, now)


def test_only_the_delivery_queue_s_batches_share_a_mark_once_per_mark(stack: LocalStack) -> None:
    # The slow lane's consumers send to every marked endpoint: if they wrote marks, each would, once a period.
    marks = CountingMarks()
    world = World(
        transport=Transport(allow_private=True, total_timeout=5.0),
        slow_lane=SlowLane(wiring.slow_lane_queue(get_settings()), marks=marks),
    )
    with receiver(lambda _: Answer(delay_seconds=SLOW_SECONDS)) as slow:
        subscription = world.subscribe(slow.port)
        deliveries = [world.pending(subscription, event_of(subscription, n)) for n in range(4)]
        world.deliverer.deliver_batch([("s0", world.message(deliveries[0], 1))], UNLIMITED, from_slow_lane=True)
        assert marks.marked == []
        world.deliverer.deliver_batch([("m1", world.message(deliveries[1], 1))], UNLIMITED)
        world.deliverer.deliver_batch([("s2", world.message(deliveries[2], 1))], UNLIMITED, from_slow_lane=True)
        (moved,) = world.deliverer.deliver_batch([("m3", world.message(deliveries[3], 1))], UNLIMITED)
    assert moved.outcome == "moved to the slow lane"
    assert marks.marked == [subscription.id]


def test_a_mark_that_cannot_be_shared_leaves_the_batch_delivered_and_is_logged(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", logged)
    marks = CountingMarks(fails=True)
    world = World(
        transport=Transport(allow_private=True, total_timeout=5.0),
        slow_lane=SlowLane(wiring.slow_lane_queue(get_settings()), marks=marks),
    )
    with receiver(lambda _: Answer(delay_seconds=SLOW_SECONDS)) as slow:
        subscription = world.subscribe(slow.port)
        delivery = world.pending(subscription)
        (report,) = world.deliverer.deliver_batch([("m1", world.message(delivery, 1))], UNLIMITED)
    assert report.outcome == "delivered" and not report.comes_back
    lines = [json.loads(line) for line in logged.getvalue().splitlines()]
    (warning,) = [line for line in lines if "slow endpoint's mark" in line["message"]]
    assert warning["level"] == "WARNING" and warning["subscription_id"] == subscription.id


def test_ended_marks_are_removed_as_others_are_written(stack: LocalStack) -> None:
    store = wiring.subscription_store(get_settings())
    store.mark_slow("acme", subscription_id(1), until=100, now=50)
    store.mark_slow("acme", subscription_id(2), until=300, now=50)
    store.mark_slow("acme", subscription_id(3), until=400, now=200)
    versions, marks = store.versions_and_slow_marks(["acme", "other-team"])
    assert marks == {"acme": {subscription_id(2): 300, subscription_id(3): 400}}
    assert versions == {}  # no version moved: the marks are not subscriptions
    assert store.all_of_team("acme") == []

"""The delivery logic against moto and real receivers on 127.0.0.1: outcomes, retries, the attempt log."""

import base64
import dataclasses
import hmac
import io
import json
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
import records
import svix
from botocore.exceptions import ReadTimeoutError
from receivers import Answer, receiver, trickling_receiver
from records import receiver_endpoint, subscription_id

from hookrelay import clock, wiring
from hookrelay.aws import client, table
from hookrelay.delivery_jobs import Job, read_job
from hookrelay.ingest import new_delivery
from hookrelay.models.subscriptions import SecretRotation, SubscriptionPatch
from hookrelay.observability import logger
from hookrelay.outcomes import Outcome, Report
from hookrelay.queues import delivery_message
from hookrelay.rate_limit import BACKLOG_LIMIT, SLOT_LEAD, RateLimiter, reserve_spacing_seconds, slot_text, to_slot_us
from hookrelay.records import Attempt, Delivery, DeliveryOrigin, Event, Subscription
from hookrelay.retry import SWEEPER_LEASE, RetryPolicy, parse_schedule
from hookrelay.senders import Senders
from hookrelay.settings import get_settings
from hookrelay.signing import generate_key_pair
from hookrelay.slow_lane import SlowLane
from hookrelay.store.deliveries import AttemptOutcome, DynamoDeliveryStore
from hookrelay.store.delivery_log import DynamoDeliveryLogStore
from hookrelay.store.events import DynamoEventStore, event_key
from hookrelay.store.rate_limits import DynamoRateLimiter
from hookrelay.store.subscriptions import DynamoSubscriptionStore
from hookrelay.subscriptions import Subscriptions
from hookrelay.sweeper import Sweeper
from hookrelay.time_budget import UNLIMITED, TimeBudget, attempt_seconds
from hookrelay.transport import Transport
from hookrelay_cli.local.stack import LocalStack
from unit.test_signing import ed25519_verifies

EVENT = Event(
    event_id="0f29a0a2-3a6f-44a4-b2a2-5d7b3f1b1f9b",
    event_name="signer.done",
    event_time="2026-03-02T10:15:30.000Z",
    team_id="acme",
    data={"signer": {"id": "s-1"}},
)


class CountingSubscriptionStore(DynamoSubscriptionStore):
    def __init__(self, table: object) -> None:
        super().__init__(table)
        self.failing_since_writes: list[str | None] = []

    def set_failing_since(self, team_id: str, subscription_id: str, since: str | None) -> Subscription | None:
        self.failing_since_writes.append(since)
        return super().set_failing_since(team_id, subscription_id, since)


class World:
    def __init__(
        self,
        schedule: str = "1s,2s,20m",
        transport: Transport | None = None,
        rate_limiter: RateLimiter | None = None,
        slow_lane: SlowLane | None = None,
    ) -> None:
        settings = get_settings()
        # How long each attempt waited in the container for its rate limit's slot (not slept here).
        self.held: list[float] = []
        self.subscriptions = CountingSubscriptionStore(table(settings.subscriptions_table))
        self.deliveries = DynamoDeliveryStore(table(settings.deliveries_table))
        self.delivery_log = DynamoDeliveryLogStore(table(settings.deliveries_table))
        self.deliverer = wiring.deliverer(
            settings,
            store=self.subscriptions,
            senders=Senders(web=transport or Transport(allow_private=True, total_timeout=1.0)),
            policy=RetryPolicy(parse_schedule(schedule), random=lambda: 0.5),
            rate_limiter=rate_limiter or DynamoRateLimiter(table(settings.deliveries_table), spacing_seconds=0),
            slow_lane=slow_lane,
            sleep=self.held.append,
        )
        self.origins: dict[str, DeliveryOrigin] = {}

    def subscribe(self, port: int, **fields: Any) -> Subscription:
        subscription = records.subscription(endpoint=receiver_endpoint(port), **fields)
        self.subscriptions.create(subscription, records.TEAM_LIMIT)
        return subscription

    def set_failing_since(self, subscription: Subscription, since: str) -> None:
        """Move the start of the endpoint's run of failures (the store's own write keeps an earlier one)."""
        table(get_settings().subscriptions_table).update_item(
            Key={"team_id": subscription.team_id, "subscription_id": subscription.id},
            UpdateExpression="SET failing_since = :since",
            ExpressionAttributeValues={":since": since},
        )

    def pending(self, subscription: Subscription, event: Event = EVENT) -> str:
        """A delivery as fan-out leaves it: its event stored, no record until its first attempt."""
        delivery = new_delivery(event, subscription)
        DynamoEventStore(table(get_settings().deliveries_table)).keep(event, delivery.expires_at)
        self.origins[delivery.id] = delivery.origin()
        return delivery.id

    def job(self, delivery_id: str, attempt: int) -> Job:
        """Attempt `attempt`'s job, as its message names it (a first attempt's with the delivery's origin)."""
        return Job(delivery_id, attempt, origin=self.origins.get(delivery_id) if attempt == 1 else None)

    def deliver(self, delivery_id: str, attempt: int) -> Report:
        return self.deliverer.deliver(self.job(delivery_id, attempt))

    def message(self, delivery_id: str, attempt: int) -> str:
        job = self.job(delivery_id, attempt)
        return delivery_message(delivery_id, attempt, team_id=EVENT.team_id, origin=job.origin).body

    def queued(self) -> dict[str, str]:
        attributes = client("sqs").get_queue_attributes(
            QueueUrl=get_settings().delivery_queue_url, AttributeNames=["All"]
        )["Attributes"]
        return {
            name: attributes[name] for name in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed")
        }


@pytest.fixture
def world(stack: LocalStack) -> World:
    return World()


def seconds_between(earlier: str, later: str) -> float:
    return (clock.parse_moment(later) - clock.parse_moment(earlier)).total_seconds()


def test_delivered_on_2xx(world: World) -> None:
    with receiver(lambda _: Answer(204, b"")) as server:
        delivery = world.pending(world.subscribe(server.port))
        assert world.deliver(delivery, 1).outcome == "delivered"
    record = world.delivery_log.get(delivery)
    assert record and record.status == "delivered" and record.attempt_count == 1
    assert [attempt.status_code for attempt in record.attempts] == [204]
    assert record.next_attempt_at is None


def test_a_second_message_for_the_same_attempt_sends_nothing(world: World) -> None:
    with receiver() as server:
        delivery = world.pending(world.subscribe(server.port))
        world.deliver(delivery, 1)
        assert world.deliver(delivery, 1).outcome == "already done"
    assert len(server.received) == 1


def test_the_first_attempt_creates_the_record_in_one_read_of_its_batch(world: World) -> None:
    reads: list[dict[str, Any]] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        reads.append(params)

    dynamodb = table(get_settings().deliveries_table).client
    with receiver() as server:
        subscription = world.subscribe(server.port)
        deliveries = [world.pending(subscription, event_of(subscription, number)) for number in range(5)]
        assert [world.delivery_log.get(delivery) for delivery in deliveries] == [None] * 5
        dynamodb.meta.events.register("before-parameter-build.dynamodb.BatchGetItem", count)
        try:
            reports = world.deliverer.deliver_batch(
                [(f"m{n}", world.message(d, 1)) for n, d in enumerate(deliveries)], UNLIMITED
            )
        finally:
            dynamodb.meta.events.unregister("before-parameter-build.dynamodb.BatchGetItem", count)
    assert {report.outcome for report in reports} == {"delivered"} and len(server.received) == 5
    # The batch's records and the event their messages name, in one consistent read.
    assert [list(params["RequestItems"]) for params in reads].count([get_settings().deliveries_table]) == 1
    listed = world.delivery_log.of_subscription(subscription.id, limit=10)
    assert sorted(summary.id for summary in listed.items) == sorted(deliveries)
    for summary in listed.items:
        assert summary.status == "delivered" and summary.attempt_count == 1
        assert summary.created_at == world.origins[summary.id].created_at


def test_two_copies_of_a_first_attempt_at_once_record_one_attempt(stack: LocalStack) -> None:
    # SQS may hand a message out twice: both copies find no record and send (same webhook-id); the
    # first attempt's conditional write lets one record the attempt, the other reports it done.
    first, second = World(), World()
    with receiver(lambda _: Answer(delay_seconds=0.5)) as server:
        delivery = first.pending(first.subscribe(server.port))
        job = first.job(delivery, 1)
        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = sorted(pool.map(lambda world: world.deliverer.deliver(job).outcome, (first, second)))
    assert outcomes == ["already done", "delivered"]
    record = first.delivery_log.get(delivery)
    assert record and record.attempt_count == 1 and len(record.attempts) == 1
    assert {request.headers["webhook-id"] for request in server.received} == {delivery}


def test_a_record_holding_its_event_from_an_earlier_release_is_delivered(world: World) -> None:
    # Deliveries queued or scheduled when this release is deployed still hold their event inline.
    with receiver() as server:
        delivery = new_delivery(EVENT, world.subscribe(server.port))
        records.store_as_before_events_were_kept_apart(table(get_settings().deliveries_table), delivery)
        (report,) = world.deliverer.deliver_batch(
            [("m", delivery_message(delivery.id, 1, team_id=delivery.team_id).body)], UNLIMITED
        )
    assert report.outcome == "delivered"
    assert [json.loads(request.body)["data"] for request in server.received] == [EVENT.data]
    record = world.delivery_log.get(delivery.id)
    assert record and record.status == "delivered" and record.event == EVENT


def test_too_many_requests_waits_at_least_retry_after(world: World) -> None:
    with receiver(lambda _: Answer(429, b"slow down", {"Retry-After": "120"})) as server:
        delivery = world.pending(world.subscribe(server.port))
        assert world.deliver(delivery, 1).outcome == "pending"
    record = world.delivery_log.get(delivery)
    assert record and record.next_attempt_at
    assert seconds_between(record.attempts[0].at, record.next_attempt_at) >= 120
    assert world.queued() == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesDelayed": "1"}


def test_a_retry_after_counts_from_the_answer_of_a_slow_send(world: World) -> None:
    # An answer 0.8 s after the request was sent: its Retry-After (61) counts from then, not from the send.
    with receiver(lambda _: Answer(429, b"slow down", {"Retry-After": "61"}, delay_seconds=0.8)) as server:
        delivery = world.pending(world.subscribe(server.port))
        assert world.deliver(delivery, 1).outcome == "pending"
    record = world.delivery_log.get(delivery)
    assert record and record.next_attempt_at
    assert seconds_between(record.attempts[0].at, record.next_attempt_at) >= 61 + 0.8


def test_a_long_delay_waits_for_the_sweeper(world: World) -> None:
    with receiver(lambda _: Answer(500)) as server:
        delivery = world.pending(world.subscribe(server.port))
        world.deliver(delivery, 1)
        world.deliver(delivery, 2)
        assert world.deliver(delivery, 3).outcome == "scheduled"
    record = world.delivery_log.get(delivery)
    assert record and record.status == "scheduled" and record.next_attempt_at
    assert 16 * 60 <= seconds_between(record.attempts[-1].at, record.next_attempt_at) <= 24 * 60
    item = table(get_settings().deliveries_table).get_item(Key={"delivery_id": delivery})["Item"]
    assert item["due_at"] == record.next_attempt_at and str(item["due_shard"]).startswith("due#")
    # Only the two short retries are on the queue (the 1 s one may be visible already on a slow machine).
    assert sum(map(int, world.queued().values())) == 2


def test_after_the_last_retry_the_delivery_fails(world: World) -> None:
    short = World(schedule="1s")
    with receiver(lambda _: Answer(500)) as server:
        delivery = short.pending(short.subscribe(server.port))
        assert short.deliver(delivery, 1).outcome == "pending"
        assert short.deliver(delivery, 2).outcome == "failed"
    record = short.delivery_log.get(delivery)
    assert record and record.status == "failed" and record.attempt_count == 2


@pytest.mark.parametrize(
    ("answer", "outcomes"),
    [(Answer(500), ["failed"]), (Answer(delay_seconds=1.5), ["pending", "failed"])],
    ids=["server error: no retry", "timeout: one retry"],
)
def test_without_auto_retry_only_a_timeout_is_retried_once(world: World, answer: Answer, outcomes: list[str]) -> None:
    with receiver(lambda _: answer) as server:
        delivery = world.pending(world.subscribe(server.port, auto_retry=False))
        got = [world.deliver(delivery, number).outcome for number in range(1, len(outcomes) + 1)]
    assert got == outcomes


def test_deleted_or_disabled_subscriptions_get_nothing(world: World) -> None:
    with receiver() as server:
        subscription = world.subscribe(server.port)
        delivery = world.pending(subscription)
        world.subscriptions.delete("acme", subscription.id)
        assert world.deliver(delivery, 1).outcome == "dropped: subscription deleted"
    assert server.received == []
    record = world.delivery_log.get(delivery)
    assert record and record.status == "failed" and record.attempts[0].error == "not sent: the subscription is deleted"


def test_an_endpoint_failing_for_five_days_is_disabled(world: World) -> None:
    with receiver(lambda _: Answer(500)) as failing:
        subscription = world.subscribe(failing.port)
        world.deliver(world.pending(subscription), 1)
        started = world.subscriptions.get("acme", subscription.id)
        assert started and started.failing_since and started.enabled
        six_days_ago = clock.iso(clock.utc_now() - timedelta(days=6))
        world.set_failing_since(subscription, six_days_ago)
        another_event = dataclasses.replace(EVENT, event_id="7e0c3b4a-95f1-4b58-8c1e-2d6f9a0b3c47")
        # A container that reads the team six days into the run: moving the run's start moves no version,
        # so the container that started it goes on deciding from the start it wrote.
        later = World()
        later.deliver(later.pending(subscription, another_event), 1)
    disabled = world.subscriptions.get("acme", subscription.id)
    assert disabled and not disabled.enabled
    assert disabled.disabled_reason == f"every delivery attempt has failed since {six_days_ago}"


def test_a_re_enabled_endpoint_gets_five_days_again_before_its_failures_disable_it(world: World) -> None:
    api = Subscriptions(world.subscriptions, allow_private=True, max_per_team=records.TEAM_LIMIT)
    events = (dataclasses.replace(EVENT, event_id=f"7e0c3b4a-95f1-4b58-8c1e-2d6f9a0b3c4{n}") for n in range(3))

    def attempt_from_a_fresh_container() -> None:  # one that reads the team now (health writes move no version)
        later = World()
        later.deliver(later.pending(subscription, next(events)), 1)

    with receiver(lambda _: Answer(500)) as failing:
        subscription = world.subscribe(failing.port)
        world.deliver(world.pending(subscription, next(events)), 1)
        world.set_failing_since(subscription, clock.iso(clock.utc_now() - timedelta(days=6)))
        attempt_from_a_fresh_container()
        assert not api.get("acme", subscription.id).enabled  # the five days are up

        # The tenant fixes the receiver and turns the endpoint back on; its first answer is still a 500.
        assert api.update("acme", subscription.id, SubscriptionPatch(enabled=True)).failing_since is None
        attempt_from_a_fresh_container()
    after = api.get("acme", subscription.id)
    assert after.enabled and after.disabled_reason is None
    assert after.failing_since  # a new run of failures, from this attempt


def test_a_success_ends_the_run_of_failures(world: World) -> None:
    answers = iter([Answer(500), Answer(200)])
    with receiver(lambda _: next(answers)) as flaky:
        subscription = world.subscribe(flaky.port)
        delivery = world.pending(subscription)
        world.deliver(delivery, 1)
        assert (world.subscriptions.get("acme", subscription.id) or subscription).failing_since
        world.deliver(delivery, 2)
    recovered = world.subscriptions.get("acme", subscription.id)
    assert recovered and recovered.failing_since is None and recovered.enabled


def test_a_run_of_failures_is_written_at_its_start_and_its_end_only(stack: LocalStack) -> None:
    world = World()
    answers = iter([Answer(500)] * 3 + [Answer(200)] * 2)
    with receiver(lambda _: next(answers)) as flaky:
        subscription = world.subscribe(flaky.port)
        events = [dataclasses.replace(EVENT, event_id=f"7e0c3b4a-95f1-4b58-8c1e-2d6f9a0b3c4{n}") for n in range(3)]
        deliveries = [world.pending(subscription, event) for event in events]
        for delivery in deliveries:
            world.deliver(delivery, 1)
        for delivery in deliveries[:2]:
            world.deliver(delivery, 2)
    writes = world.subscriptions.failing_since_writes
    assert len(writes) == 2 and writes[0] is not None and writes[1] is None
    stored = world.subscriptions.get("acme", subscription.id)
    assert stored and stored.failing_since is None and stored.enabled


def test_a_success_seen_by_another_container_keeps_the_endpoint_enabled(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached, fresh = World(), World()
    answers = iter([Answer(500), Answer(200), Answer(500)])
    with receiver(lambda _: next(answers)) as flaky:
        subscription = cached.subscribe(flaky.port)
        cached.set_failing_since(subscription, clock.iso(clock.utc_now() - timedelta(days=4)))
        events = [dataclasses.replace(EVENT, event_id=f"7e0c3b4a-95f1-4b58-8c1e-2d6f9a0b3c5{n}") for n in range(3)]
        first, second, third = (cached.pending(subscription, event) for event in events)
        cached.deliver(first, 1)
        fresh.deliverer.deliver(cached.job(second, 1))
        two_days_later = clock.utc_now() + timedelta(days=2)
        monkeypatch.setattr(clock, "utc_now", lambda: two_days_later)
        cached.deliver(third, 1)
    stored = cached.subscriptions.get("acme", subscription.id)
    assert stored and stored.enabled and stored.disabled_reason is None


def another_event(number: int) -> Event:
    return dataclasses.replace(EVENT, event_id=f"5a0c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c{number:02d}")


def event_of(subscription: Subscription, number: int) -> Event:
    return dataclasses.replace(another_event(number), team_id=subscription.team_id)


def test_changes_apply_to_the_very_next_attempt(stack: LocalStack) -> None:
    world = World()
    logic = Subscriptions(world.subscriptions, allow_private=True, max_per_team=1000)
    with receiver() as before, receiver() as after:
        moving, disabled, deleted = (world.subscribe(before.port, id=subscription_id(n)) for n in range(3))
        for subscription in (moving, disabled, deleted):
            world.deliver(world.pending(subscription), 1)  # the container now knows all three
        rotated = logic.rotate_secret("acme", moving.id, SecretRotation())
        logic.update("acme", moving.id, SubscriptionPatch(endpoint=receiver_endpoint(after.port)))
        logic.update("acme", disabled.id, SubscriptionPatch(enabled=False))
        logic.delete("acme", deleted.id)
        outcomes = [
            world.deliver(world.pending(subscription, another_event(1)), 1).outcome
            for subscription in (moving, disabled, deleted)
        ]
    assert outcomes == ["delivered", "dropped: subscription disabled", "dropped: subscription deleted"]
    assert len(before.received) == 3
    (request,) = after.received
    key = base64.b64decode(rotated.secret_key.removeprefix("whsec_"))
    assert request.headers["X-Yousign-Signature-256"] == "sha256=" + hmac.new(key, request.body, "sha256").hexdigest()


def test_a_batch_reads_its_teams_versions_once(stack: LocalStack) -> None:
    world = World()
    calls: Counter[str] = Counter()

    def count(model: Any, params: dict[str, Any], **_: Any) -> None:
        if get_settings().subscriptions_table in str(params["body"]):  # not the deliveries' batch reads
            calls[model.name] += 1

    with receiver() as target:
        subscriptions = [
            world.subscribe(target.port, id=subscription_id(n), team_id=team)
            for n, team in enumerate(("acme", "globex"))
        ]
        messages = [
            (f"m{number}", world.message(world.pending(subscription, event_of(subscription, number)), 1))
            for number in range(5)
            for subscription in subscriptions
        ]
        dynamodb = table(get_settings().subscriptions_table).client
        dynamodb.meta.events.register("before-call.dynamodb", count)
        try:
            first = world.deliverer.deliver_batch(messages[:6], UNLIMITED)
            reads_of_first = {name: calls[name] for name in ("BatchGetItem", "Query")}
            calls.clear()
            second = world.deliverer.deliver_batch(messages[6:], UNLIMITED)
        finally:
            dynamodb.meta.events.unregister("before-call.dynamodb", count)
    assert {report.outcome for report in first + second} == {"delivered"}
    assert reads_of_first == {"BatchGetItem": 1, "Query": 2}  # one read of versions, each team read once
    assert {name: calls[name] for name in ("BatchGetItem", "Query")} == {"BatchGetItem": 1, "Query": 0}


def test_receivers_that_never_finish_answering_are_recorded_as_timeouts_and_hold_up_no_one(stack: LocalStack) -> None:
    deadline_seconds = 2.0
    released = threading.Event()

    def resolve(host: str, port: int) -> list[str]:
        if host == "hangs.test":
            released.wait()
        return ["127.0.0.1"]

    world = World(transport=Transport(allow_private=True, resolver=resolve, total_timeout=deadline_seconds))
    try:
        with (
            trickling_receiver("status line") as status_line,
            trickling_receiver("headers") as headers,
            receiver(lambda _: Answer(body=b"a" * 100_000, trickle_seconds=0.25)) as body,
            receiver() as healthy,
        ):
            endpoints = {
                "status line": receiver_endpoint(status_line.port),
                "headers": receiver_endpoint(headers.port),
                "body": receiver_endpoint(body.port),
                "name lookup": f"http://hangs.test:{healthy.port}/hook",
                "healthy": receiver_endpoint(healthy.port),
            }
            deliveries = {}
            for index, (name, endpoint) in enumerate(endpoints.items()):
                subscription = records.subscription(index, endpoint=endpoint)
                world.subscriptions.create(subscription, records.TEAM_LIMIT)
                deliveries[name] = world.pending(subscription)
            messages = [(name, world.message(delivery, 1)) for name, delivery in deliveries.items()]
            started = time.monotonic()
            # In a thread of its own, so that a batch that never ends fails the test instead of hanging it.
            batch = ThreadPoolExecutor(max_workers=1).submit(world.deliverer.deliver_batch, messages, UNLIMITED)
            reports = batch.result(timeout=deadline_seconds + 10)
            elapsed = time.monotonic() - started
    finally:
        released.set()
    assert elapsed < deadline_seconds + 1, f"the batch took {elapsed:.1f} s"
    assert {report.message_id: report.outcome for report in reports} == {
        "status line": "pending",
        "headers": "pending",
        "body": "pending",
        "name lookup": "pending",
        "healthy": "delivered",
    }
    attempts = {}
    for name, delivery in deliveries.items():
        record = world.delivery_log.get(delivery)
        assert record is not None
        (attempts[name],) = record.attempts
    for name in ("status line", "headers", "body", "name lookup"):
        attempt = attempts[name]
        assert attempt.error and attempt.error.startswith("timeout: "), (name, attempt)
        assert attempt.latency_ms < (deadline_seconds + 1) * 1000, (name, attempt)
    assert attempts["healthy"].status_code == 200 and attempts["healthy"].latency_ms < 1000
    assert len(healthy.received) == 1


def test_ed25519_subscription_signs_v1a_with_its_key_pair(world: World) -> None:
    private_key, public_key = generate_key_pair()
    with receiver() as target:
        subscription = world.subscribe(
            target.port, signature_scheme="ed25519", private_key=private_key, public_key=public_key
        )
        assert world.deliver(world.pending(subscription), 1).outcome == "delivered"
    (request,) = target.received
    headers = {name.lower(): value for name, value in request.headers.items()}
    v1a, v1 = headers["webhook-signature"].split(" ")
    assert ed25519_verifies(public_key, v1a, request.body, headers)
    svix.Webhook(subscription.secret_key).verify(request.body, headers)  # the v1, entry, beside it
    assert v1.startswith("v1,")


def rate_limit_items(subscription: Subscription) -> list[dict[str, Any]]:
    return [
        item
        for item in table(get_settings().deliveries_table).scan()["Items"]
        if str(item["delivery_id"]).startswith("rate#")
    ]


class CountedWrites:
    """The DynamoDB writes made while it is open, by the key they write."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def __enter__(self) -> "CountedWrites":
        table(get_settings().deliveries_table).client.meta.events.register("provide-client-params.dynamodb.*", self)
        return self

    def __exit__(self, *_: object) -> None:
        table(get_settings().deliveries_table).client.meta.events.unregister("provide-client-params.dynamodb.*", self)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in ("UpdateItem", "PutItem", "DeleteItem"):
            self.keys.append(str(params["Key" if "Key" in params else "Item"]["delivery_id"]))


def deliver_together(world: World, deliveries: list[str]) -> list[Report]:
    return world.deliverer.deliver_batch(
        [(f"m{number}", world.message(delivery, 1)) for number, delivery in enumerate(deliveries)], UNLIMITED
    )


def queued_jobs(count: int, queue_url: str | None = None) -> dict[str, tuple[Job, str]]:
    """The next `count` messages of the delivery queue, or of `queue_url` (waiting out their delays): job
    and body by delivery."""
    found: dict[str, tuple[Job, str]] = {}
    queue_url = queue_url or get_settings().delivery_queue_url
    for _ in range(20):
        for message in (
            client("sqs")
            .receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            .get("Messages", [])
        ):
            job = read_job(message["Body"])
            found[job.delivery_id] = (job, message["Body"])
        if len(found) >= count:
            break
    return found


def test_a_batch_takes_its_slots_in_one_write_and_waits_for_them_on_the_queue(world: World) -> None:
    with receiver() as target:
        subscription = world.subscribe(target.port, rate_limit=1)
        deliveries = [world.pending(subscription, event_of(subscription, number)) for number in range(4)]
        started = clock.utc_now()
        with CountedWrites() as writes:
            reports = deliver_together(world, deliveries)
    # Slots 1.05 s apart (slot_spacing_us) from SLOT_LEAD on: the first two are waited for in the
    # container; the next two, 2.1 and 3.15 s further, on the queue, each message holding its slot. No
    # record yet: no write but the slots' and one listing both in the delivery log.
    lead = SLOT_LEAD.total_seconds()
    assert [report.outcome for report in reports] == ["delivered"] * 2 + ["waiting"] * 2
    assert sorted(world.held) == [pytest.approx(lead, abs=0.1), pytest.approx(lead + 1.05, abs=0.1)]
    assert len(target.received) == 2
    assert writes.keys[0] == f"rate#{subscription.id}"
    assert writes.keys[1].startswith(f"waits#{subscription.id}#")
    assert sorted(writes.keys[2:]) == sorted(deliveries[:2])  # the two attempts' own
    assert world.queued() == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesDelayed": "2"}
    queued = queued_jobs(2)
    slots = [seconds_between(clock.iso(started), queued[delivery][0].slot_at or "") for delivery in deliveries[2:]]
    assert 2.1 + lead <= slots[0] < 2.3 + lead
    assert slots[1] - slots[0] == pytest.approx(1.05, abs=0.002)


def test_a_message_that_comes_back_for_its_slot_takes_no_other(world: World) -> None:
    with receiver() as target:
        subscription = world.subscribe(target.port, rate_limit=1)
        deliveries = [world.pending(subscription, event_of(subscription, number)) for number in range(4)]
        deliver_together(world, deliveries)
        (_, body) = queued_jobs(2)[deliveries[3]]
        with CountedWrites() as writes:
            # SQS delivers it twice: each copy goes at the slot it holds, the second finds it done.
            reports = world.deliverer.deliver_batch([("again", body)], UNLIMITED)
            reports += world.deliverer.deliver_batch([("twice", body)], UNLIMITED)
    assert [report.outcome for report in reports] == ["delivered", "already done"]
    assert writes.keys == [deliveries[3]]  # the attempt's own write, no other slot
    assert len(target.received) == 3
    assert 0 < world.held[-1] <= 2  # the last stretch to its slot, in the container


def test_a_batch_that_waited_its_containers_turn_for_slots_far_ahead_still_puts_them_on_the_queue(
    stack: LocalStack,
) -> None:
    # The template's delivery function: a 40 s Timeout, and 400 containers, so that each writes a rate#
    # item at most every 4 s. Under a backlog a container's next batch waits most of that for its turn; its
    # slots are then far ahead, and its messages only go back on the queue for them, which takes no
    # attempt's time.
    settings = get_settings()
    timeout_seconds, spacing_seconds = 40.0, reserve_spacing_seconds(400)
    waited = [0.0]
    budget = TimeBudget(lambda: timeout_seconds - waited[0])
    world = World(
        transport=Transport(allow_private=True, total_timeout=15.0),  # the template's send deadline
        rate_limiter=DynamoRateLimiter(
            table(settings.deliveries_table),
            spacing_seconds=spacing_seconds,
            monotonic=lambda: waited[0],
            sleep=lambda seconds: waited.__setitem__(0, waited[0] + seconds),
            random=lambda: 1.0,  # its first write comes at once
        ),
    )
    with receiver() as target:
        subscription = world.subscribe(target.port, rate_limit=1)
        deliveries = [world.pending(subscription, event_of(subscription, number)) for number in range(20)]
        first = world.deliverer.deliver_batch(
            [(f"m{n}", world.message(delivery, 1)) for n, delivery in enumerate(deliveries[:10])], budget
        )
        # The next invocation, at once: its own Timeout, and the container's turn 4 s after its write.
        waited[0] = 0.0
        second = world.deliverer.deliver_batch(
            [(f"n{n}", world.message(delivery, 1)) for n, delivery in enumerate(deliveries[10:])], budget
        )
    assert waited[0] == pytest.approx(spacing_seconds, abs=0.5)  # it waited its turn
    assert [report.outcome for report in first].count(Outcome.WAITING) >= 7
    assert [report.outcome for report in second] == ["waiting"] * 10  # none left to come back in 240 s


def test_an_event_stored_with_an_infinity_before_they_were_refused_is_delivered_with_null(world: World) -> None:
    # Ingest stored bus events holding 1e400, NaN or Infinity as written (json.dumps: Infinity) until they
    # were refused; no JSON writer writes them now, and such an event must still reach its receivers.
    event = dataclasses.replace(EVENT, data={"amount": float("inf"), "rate": float("nan")})
    with receiver() as target:
        subscription = world.subscribe(target.port)
        delivery = new_delivery(event, subscription)
        stored = json.dumps(dataclasses.asdict(event), separators=(",", ":")).encode()
        table(get_settings().deliveries_table).put_item(
            Item={
                "delivery_id": event_key(event.team_id, event.event_id),
                "event": zlib.compress(stored),
                "expires_at": delivery.expires_at,
            }
        )
        world.origins[delivery.id] = delivery.origin()
        assert world.deliver(delivery.id, 1).outcome == Outcome.DELIVERED
    assert json.loads(target.received[0].body)["data"]["amount"] is None


def test_a_message_holding_a_slot_is_sent_only_with_an_attempts_time_left(stack: LocalStack) -> None:
    # Its slot was taken while the subscription had a rate limit; the limit is gone since, so nothing holds
    # it back, and an attempt needs its whole worst case (37.5 s with the template's send deadline).
    world = World(transport=Transport(allow_private=True, total_timeout=15.0))
    with receiver() as target:
        subscription = world.subscribe(target.port)
        delivery = world.pending(subscription)
        slot = slot_text(clock.utc_now() + timedelta(seconds=1))
        message = delivery_message(
            delivery, 1, team_id=EVENT.team_id, origin=world.job(delivery, 1).origin, slot_at=slot
        )
        (report,) = world.deliverer.deliver_batch([("m1", message.body)], TimeBudget(lambda: 10.0))
    assert report.outcome == Outcome.NOT_STARTED and target.received == []


def test_a_message_that_comes_too_late_for_its_slot_takes_another(world: World) -> None:
    with receiver() as target:
        subscription = world.subscribe(target.port, rate_limit=1)
        delivery = world.pending(subscription)
        late = clock.iso(clock.utc_now() - timedelta(seconds=5))
        body = delivery_message(delivery, 1, team_id=EVENT.team_id, origin=world.origins[delivery], slot_at=late).body
        with CountedWrites() as writes:
            (report,) = world.deliverer.deliver_batch([("late", body)], UNLIMITED)
    assert report.outcome == "delivered"
    assert writes.keys == [f"rate#{subscription.id}", delivery]
    assert len(target.received) == 1


def test_a_subscription_deleted_or_disabled_while_a_delivery_waits_drops_it(world: World) -> None:
    with receiver() as target:
        kept, removed = (world.subscribe(target.port, rate_limit=1, id=subscription_id(n)) for n in (1, 2))
        for subscription in (kept, removed):
            deliver_together(world, [world.pending(subscription, event_of(subscription, n)) for n in range(4)])
        waiting_kept = world.pending(kept, event_of(kept, 3))
        waiting_removed = world.pending(removed, event_of(removed, 3))
        world.subscriptions.disable(kept.team_id, kept.id, "for the test", clock.now_iso())
        world.subscriptions.delete(removed.team_id, removed.id)
        fresh = World()
        queued = queued_jobs(4)
        messages = [("kept", queued[waiting_kept][1]), ("removed", queued[waiting_removed][1])]
        reports = fresh.deliverer.deliver_batch(messages, UNLIMITED)
        assert [report.outcome for report in reports] == [
            "dropped: subscription disabled",
            "dropped: subscription deleted",
        ]
    assert len(target.received) == 4
    for delivery in (waiting_kept, waiting_removed):
        record = fresh.delivery_log.get(delivery)
        assert record and record.status == "failed" and (record.attempts[0].error or "").startswith("not sent: ")


def test_a_rate_limit_removed_by_patch_lets_a_waiting_delivery_go_at_once(world: World) -> None:
    with receiver() as target:
        subscription = world.subscribe(target.port, rate_limit=1)
        deliveries = [world.pending(subscription, event_of(subscription, number)) for number in range(5)]
        deliver_together(world, deliveries)
        stored = world.subscriptions.get(subscription.team_id, subscription.id)
        assert stored and world.subscriptions.replace(dataclasses.replace(stored, rate_limit=None))
        fresh = World()
        (_, body) = queued_jobs(3)[deliveries[4]]
        (report,) = fresh.deliverer.deliver_batch([("m", body)], UNLIMITED)
        assert report.outcome == "delivered"
    assert fresh.held == []  # not held for its slot
    assert len(target.received) == 3


def slots_taken_until(subscription: Subscription, moment: datetime) -> None:
    """The subscription's rate-limit slots as taken up to `moment` (its rate# item, as the slot store keeps it)."""
    table(get_settings().deliveries_table).put_item(
        Item={"delivery_id": f"rate#{subscription.id}", "next_send_at": to_slot_us(moment)}
    )


def local_sweeper() -> Sweeper:
    return wiring.sweeper(get_settings())


def test_a_slot_further_than_a_queue_delay_waits_for_the_sweeper_which_hands_it_over_once(world: World) -> None:
    with receiver() as target:
        subscription = world.subscribe(target.port, rate_limit=1)
        now = clock.utc_now()
        slots_taken_until(subscription, now + timedelta(seconds=1000))
        delivery = world.pending(subscription)
        with CountedWrites() as writes:
            assert world.deliver(delivery, 1).outcome == "waiting"
        assert writes.keys == [f"rate#{subscription.id}", delivery]
        assert world.queued() == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesDelayed": "0"}
        record = world.delivery_log.get(delivery)
        assert record and record.status == "waiting" and record.next_attempt_at
        assert 999 < seconds_between(clock.iso(now), record.next_attempt_at) < 1001
        time.sleep(0.3)  # the index's lag
        sweeper = local_sweeper()
        assert sweeper.sweep(now, UNLIMITED) == 0  # 1 000 s away: not yet
        with CountedWrites() as writes:
            assert sweeper.sweep(now + timedelta(minutes=4), UNLIMITED) == 1
            assert sweeper.sweep(now + timedelta(minutes=5), UNLIMITED) == 0
        assert writes.keys == ["sweep#wait"]  # the positions, once: no write per delivery
        # Attempted, it leaves the index; the next sweep goes on from where the last stopped.
        table(get_settings().deliveries_table).update_item(
            Key={"delivery_id": delivery}, UpdateExpression="REMOVE due_at, due_shard"
        )
        assert sweeper.sweep(now + timedelta(minutes=6), UNLIMITED) == 0
        assert world.queued() == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesDelayed": "1"}
    assert target.received == []


def test_a_first_attempt_handed_over_after_its_slot_keeps_its_new_slot_on_its_record_and_is_sent_at_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its record holds the slot it waited for in the wait index, and the record's slot comes before the
    # message's: were the new one not kept there, each time the message came back for it the record's
    # stale slot would take it another, and the delivery would never be sent while the backlog lasts.
    with receiver() as target:
        subscription = world.subscribe(target.port, rate_limit=1)
        slots_taken_until(subscription, clock.utc_now() + timedelta(seconds=1000))
        delivery = world.pending(subscription)
        assert world.deliver(delivery, 1).outcome == "waiting"
        record = world.delivery_log.get(delivery)
        assert record and record.next_attempt_at
        # The sweeper's hand-over comes to another container 5 s after that slot (a busy queue); other
        # deliveries hold the next 3 s.
        late = clock.parse_moment(record.next_attempt_at) + timedelta(seconds=5)
        monkeypatch.setattr(clock, "utc_now", lambda: late)
        slots_taken_until(subscription, late + timedelta(seconds=3))
        handed_over = delivery_message(delivery, 1, team_id=subscription.team_id).body
        container = World()
        with CountedWrites() as writes:
            (report,) = container.deliverer.deliver_batch([("handed over", handed_over)], UNLIMITED)
        assert report.outcome == "waiting"
        (waited, body) = queued_jobs(1)[delivery]
        record = world.delivery_log.get(delivery)
        assert record and (record.status, record.next_attempt_at) == ("waiting", waited.slot_at)
        assert writes.keys == [f"rate#{subscription.id}", delivery]  # the log shows its record: no listing
        # It comes back a second before its slot, while the others keep the slots taken minutes ahead.
        back = clock.parse_moment(waited.slot_at or "") - timedelta(seconds=1)
        monkeypatch.setattr(clock, "utc_now", lambda: back)
        slots_taken_until(subscription, back + timedelta(minutes=5))
        (report,) = container.deliverer.deliver_batch([("back", body)], UNLIMITED)
    assert report.outcome == "delivered"
    assert len(target.received) == 1
    assert container.held == [pytest.approx(1.0, abs=0.01)]  # the last second to its slot, in the container


def test_a_retry_waiting_on_the_queue_for_its_slot_is_listed_waiting_with_it_until_attempted(world: World) -> None:
    answers = iter([Answer(500), Answer()])
    with receiver(lambda _: next(answers)) as target:
        subscription = world.subscribe(target.port, rate_limit=1)
        delivery = world.pending(subscription)
        assert world.deliver(delivery, 1).outcome == "pending"  # its retry in 1 s, on the queue
        (retry, body) = queued_jobs(1)[delivery]
        assert retry.attempt == 2
        now = clock.utc_now()
        slots_taken_until(subscription, now + timedelta(seconds=5))
        # The retry in a container that reads the slots taken, as one new to them does: this one's memory
        # of them, stale once the test took them, made it guess the update wrongly (one write more) when the
        # retry came over a second after its first slot, as it did on a busy machine.
        container = World()
        with CountedWrites() as writes:
            (report,) = container.deliverer.deliver_batch([("retry", body)], UNLIMITED)
        assert report.outcome == "waiting"
        assert writes.keys == [f"rate#{subscription.id}", delivery]  # the slot's write, and the record's
        record = world.delivery_log.get(delivery)
        assert record and (record.status, record.attempt_count) == ("waiting", 1) and record.next_attempt_at
        slot = clock.parse_moment(record.next_attempt_at)
        assert 4.9 < (slot - now).total_seconds() < 5.2
        time.sleep(0.3)  # the index's lag
        # Due a lease after its slot, not after its retry time (before the slot): its message is on the
        # queue until then, and the sweeper sends it again only should that one be lost.
        assert local_sweeper().sweep(slot + SWEEPER_LEASE - timedelta(seconds=1), UNLIMITED) == 0
        (waited, body) = queued_jobs(1)[delivery]  # on the queue until a second before its slot
        assert (waited.attempt, waited.slot_at) == (2, record.next_attempt_at)
        (report,) = container.deliverer.deliver_batch([("slot", body)], UNLIMITED)
    assert report.outcome == "delivered"
    record = world.delivery_log.get(delivery)
    assert record and (record.status, record.attempt_count) == ("delivered", 2)
    assert len(target.received) == 2


def test_past_its_backlog_limit_a_delivery_is_recorded_not_sent(world: World) -> None:
    with receiver() as target:
        subscription = world.subscribe(target.port, rate_limit=1)
        far = clock.utc_now() + BACKLOG_LIMIT
        slots_taken_until(subscription, far)
        delivery = world.pending(subscription)
        assert world.deliver(delivery, 1).outcome == "dropped: rate limit backlog full"
    assert target.received == []
    record = world.delivery_log.get(delivery)
    assert record and record.status == "failed"
    assert record.attempts[0].error == "not sent: the rate limit's slots are taken 24 h ahead"


def test_a_subscription_without_rate_limit_writes_no_rate_state(world: World) -> None:
    with receiver() as target:
        subscription = world.subscribe(target.port)
        reports = world.deliverer.deliver_batch(
            [(f"m{n}", world.message(world.pending(subscription, event_of(subscription, n)), 1)) for n in range(4)],
            UNLIMITED,
        )
    assert {report.outcome for report in reports} == {"delivered"}
    assert rate_limit_items(subscription) == []


def test_only_attempts_that_did_not_deliver_are_logged(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Delivered attempts are counted by metrics and kept on the delivery record; a log line for each
    # would be most of the log volume at scale, and operators read the failures.
    logged = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", logged)
    with receiver(lambda request: Answer(500 if request.path.endswith("/down") else 200, b"")) as server:
        up = world.pending(world.subscribe(server.port))
        failing = records.subscription(1, endpoint=receiver_endpoint(server.port) + "/down")
        world.subscriptions.create(failing, records.TEAM_LIMIT)
        down = world.pending(failing)
        reports = world.deliverer.deliver_batch(
            [("up", world.message(up, 1)), ("down", world.message(down, 1))], UNLIMITED
        )
    assert sorted(report.outcome for report in reports) == ["delivered", "pending"]
    lines = [json.loads(line) for line in logged.getvalue().splitlines()]
    attempts = [line for line in lines if line["message"] == "delivery attempt"]
    assert [(line["delivery_id"], line["outcome"], line["status_code"]) for line in attempts] == [
        (down, "pending", 500)
    ]
    assert attempts[0]["event_id"] == EVENT.event_id and attempts[0]["subscription_id"] == failing.id


def test_an_attempt_starts_only_while_its_worst_case_fits_in_the_invocations_time(world: World) -> None:
    # The world's sends end at 1 s; an attempt's AWS calls each take at worst the settings' worst call.
    needed = attempt_seconds(1.0, get_settings().aws_calls.worst_call_seconds)
    with receiver() as target:
        subscription = world.subscribe(target.port)
        deliveries = [world.pending(subscription, event_of(subscription, number)) for number in range(3)]
        messages = [(f"m{number}", world.message(delivery, 1)) for number, delivery in enumerate(deliveries)]
        short = world.deliverer.deliver_batch(messages, TimeBudget(lambda: needed))
        # Untouched: nothing sent, nothing recorded, every message back on the queue through the answer.
        assert [(report.outcome, report.comes_back) for report in short] == [(Outcome.NOT_STARTED, True)] * 3
        assert target.received == []
        assert [world.delivery_log.get(delivery) for delivery in deliveries] == [None] * 3
        enough = world.deliverer.deliver_batch(messages, TimeBudget(lambda: needed + 0.1))
    assert [(report.outcome, report.comes_back) for report in enough] == [("delivered", False)] * 3
    assert len(target.received) == 3


def attempt_to_record(world: World) -> tuple[Delivery, Attempt, AttemptOutcome]:
    """A first attempt to record, and its delivery as read before it."""
    with receiver() as server:
        delivery_id = world.pending(world.subscribe(server.port))
    delivery = world.deliveries.get_many([delivery_id], world.origins)[delivery_id]
    attempt = Attempt(at=clock.now_iso(), status_code=500, latency_ms=12)
    return delivery, attempt, AttemptOutcome("pending", clock.now_iso(), clock.now_iso(), "due#0")


def another_moment(attempt: Attempt) -> Attempt:
    """Another message's attempt, made at another moment (a duplicate's)."""
    return dataclasses.replace(attempt, at=clock.iso(clock.parse_moment(attempt.at) + timedelta(milliseconds=5)))


def test_an_attempt_written_again_after_its_answer_was_lost_is_recognised_as_recorded(world: World) -> None:
    # botocore sends a write again when its answer did not come within the read timeout; when the first
    # was made, the second finds its condition false. Taken for "already done", the attempt's retry
    # would never be enqueued (it would wait out the sweeper's 15-minute lease).
    delivery, attempt, outcome = attempt_to_record(world)
    assert world.deliveries.record_attempt(delivery, 1, attempt, outcome)
    assert world.deliveries.record_attempt(delivery, 1, attempt, outcome)
    assert not world.deliveries.record_attempt(delivery, 1, another_moment(attempt), outcome)


def test_an_attempt_whose_every_answer_was_lost_is_recognised_as_recorded(world: World) -> None:
    # Every attempt's answer lost: the call fails, and the message would come back "already done".
    delivery, attempt, outcome = attempt_to_record(world)
    dynamodb = table(get_settings().deliveries_table).client

    def lose_the_answer(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="http://dynamodb.local")

    dynamodb.meta.events.register("after-call.dynamodb.UpdateItem", lose_the_answer)
    try:
        assert world.deliveries.record_attempt(delivery, 1, attempt, outcome)
        # A write that was not made still fails: its message comes back.
        with pytest.raises(ReadTimeoutError):
            world.deliveries.record_attempt(delivery, 1, another_moment(attempt), outcome)
    finally:
        dynamodb.meta.events.unregister("after-call.dynamodb.UpdateItem", lose_the_answer)
    assert world.delivery_log.get(delivery.id).attempt_count == 1  # type: ignore[union-attr]


def test_an_attempt_whose_lost_write_lands_after_the_check_is_recognised_as_recorded(world: World) -> None:
    # The write's answer is lost while the write itself is still on its way: the check's read overtakes it,
    # and it lands just after. Raising then, the message came back "already done" and its retry was never
    # enqueued (R1 left a delivery pending so); writing again finds the landed write and its own attempt.
    delivery, attempt, outcome = attempt_to_record(world)
    dynamodb = table(get_settings().deliveries_table).client
    landing: list[dict[str, Any]] = []

    def lose_the_first_answer(params: dict[str, Any], **_: Any) -> None:
        if not landing:
            landing.append(json.loads(params["body"]))
            raise ReadTimeoutError(endpoint_url="http://dynamodb.local")

    def land_it_after_the_check(**_: Any) -> None:
        if len(landing) == 1:
            landing.append({})
            client("dynamodb").update_item(**landing[0])

    dynamodb.meta.events.register("before-call.dynamodb.UpdateItem", lose_the_first_answer)
    dynamodb.meta.events.register("after-call.dynamodb.GetItem", land_it_after_the_check)
    try:
        assert world.deliveries.record_attempt(delivery, 1, attempt, outcome)
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.UpdateItem", lose_the_first_answer)
        dynamodb.meta.events.unregister("after-call.dynamodb.GetItem", land_it_after_the_check)
    assert world.delivery_log.get(delivery.id).attempt_count == 1  # type: ignore[union-attr]


def test_an_aws_call_that_does_not_answer_in_time_is_logged_as_an_outage_and_the_message_comes_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read timeout is AWS's, not a bug: one error line saying so, no traceback (R1 counts tracebacks as
    # crashes), and the message is received again.
    logged = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", logged)
    dynamodb = table(get_settings().deliveries_table).client

    def no_answer(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="http://dynamodb.local")

    with receiver() as target:
        delivery = world.pending(world.subscribe(target.port))
        dynamodb.meta.events.register("before-call.dynamodb.UpdateItem", no_answer)
        try:
            (report,) = world.deliverer.deliver_batch([("m", world.message(delivery, 1))], UNLIMITED)
        finally:
            dynamodb.meta.events.unregister("before-call.dynamodb.UpdateItem", no_answer)
    assert (report.outcome, report.comes_back) == (Outcome.ERROR, True)
    lines = [json.loads(line) for line in logged.getvalue().splitlines()]
    (error,) = [line for line in lines if line["level"] == "ERROR"]
    assert error["message"].startswith("AWS did not answer a call of this delivery in time")
    assert error["error"].startswith("ReadTimeoutError") and error["delivery_id"] == delivery
    assert "Traceback" not in logged.getvalue()


def test_a_retry_whose_message_was_not_sent_is_sent_when_the_attempt_s_message_comes_back(world: World) -> None:
    # The attempt is recorded, then SQS does not answer the retry's send in time: the message comes back,
    # finds its attempt recorded, and sends the retry then, instead of leaving the delivery pending until
    # the sweeper's 15-minute lease runs out (R1 left 39 deliveries so).
    sqs = client("sqs")

    def no_answer(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="http://sqs.local")

    with receiver(lambda _: Answer(500)) as target:
        delivery = world.pending(world.subscribe(target.port))
        message = world.message(delivery, 1)
        for operation in ("SendMessage", "SendMessageBatch"):
            sqs.meta.events.register(f"before-call.sqs.{operation}", no_answer)
        try:
            (report,) = world.deliverer.deliver_batch([("m", message)], UNLIMITED)
        finally:
            for operation in ("SendMessage", "SendMessageBatch"):
                sqs.meta.events.unregister(f"before-call.sqs.{operation}", no_answer)
        assert (report.outcome, report.comes_back) == (Outcome.ERROR, True)
        assert world.queued() == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesDelayed": "0"}
        (again,) = world.deliverer.deliver_batch([("m", message)], UNLIMITED)
        assert again.outcome == "already done" and len(target.received) == 1
    record = world.delivery_log.get(delivery)
    assert record and record.status == "pending" and record.attempt_count == 1
    assert sum(map(int, world.queued().values())) == 1


def test_a_retry_left_unsent_by_the_handling_that_recorded_it_is_sent_by_a_duplicate_that_lost_the_record(
    world: World,
) -> None:
    # Two handlings of one message (SQS hands it out twice): both read it unrecorded and send. One records
    # the attempt, then SQS does not answer its retry's send; the other's record finds it made. The shared
    # message is deleted by the second's success, so neither comes back: before, the delivery stayed pending
    # until the sweeper's 15-minute lease ran out (the full-size R1 stalled on one so).
    sqs = client("sqs")
    operations = ("SendMessage", "SendMessageBatch")
    seconds: list[Report] = []
    requests: list[Any] = []

    def no_answer(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="http://sqs.local")

    def second_handling_first(request: Any) -> Answer:
        requests.append(request)
        if len(requests) == 1:  # the first handling's request: the second handling runs meanwhile, records first
            for operation in operations:
                sqs.meta.events.register(f"before-call.sqs.{operation}", no_answer)
            try:
                seconds.extend(world.deliverer.deliver_batch([("copy", message)], UNLIMITED))
            finally:
                for operation in operations:
                    sqs.meta.events.unregister(f"before-call.sqs.{operation}", no_answer)
        return Answer(500)

    with receiver(second_handling_first) as target:
        delivery = world.pending(world.subscribe(target.port))
        message = world.message(delivery, 1)
        (first,) = world.deliverer.deliver_batch([("m", message)], UNLIMITED)
        assert len(target.received) == 2
    assert [report.outcome for report in seconds] == [Outcome.ERROR]
    assert first.outcome == Outcome.ALREADY_DONE and not first.comes_back
    record = world.delivery_log.get(delivery)
    assert record and record.status == "pending" and record.attempt_count == 1
    assert sum(map(int, world.queued().values())) == 1

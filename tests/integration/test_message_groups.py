"""Every message a team's work puts on the events queue or the delivery queue carries the team as its
MessageGroupId, which is how SQS's fair queues tell the teams apart: the API's publish (through the
bus rule), ingest's fan-out, delivery's requeues (retries, waits for a rate-limit slot), the sweeper's
re-enqueues and hand-overs of deliveries waiting for a far slot, and the API's test sends."""

import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from receivers import Answer, receiver
from records import subscription_id

from api_client import ApiClient
from hookrelay import clock
from hookrelay.aws import client, table
from hookrelay.outcomes import Outcome
from hookrelay.rate_limit import LATE, SLOT_LEAD
from hookrelay.settings import get_settings
from hookrelay.store.rate_limits import DynamoRateLimiter
from hookrelay.time_budget import UNLIMITED
from hookrelay_cli.local.stack import LocalStack
from hookrelay_cli.local.workers import QueuePoller
from integration import test_ingest
from integration.test_delivery import World, event_of, local_sweeper, slots_taken_until
from integration.test_ingest import DeliveryQueueSends, poll_until_empty, publish, subscribe
from integration.test_sweeper import scheduled_delivery

delivery_queue_sends = test_ingest.delivery_queue_sends


def groups(queue_url: str) -> list[str | None]:
    """The message group of every message on a queue (kept invisible, not deleted)."""
    sqs, found = client("sqs"), list[str | None]()
    while batch := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300, MessageSystemAttributeNames=["All"]
    ).get("Messages"):
        found.extend(message["Attributes"].get("MessageGroupId") for message in batch)
    return found


def test_an_event_published_through_the_api_reaches_the_events_queue_in_its_teams_group(
    api: ApiClient, other_api: ApiClient
) -> None:
    publish(api)
    publish(other_api)
    assert Counter(groups(get_settings().events_queue_url)) == {"team-a": 1, "team-b": 1}


def test_fan_out_sends_each_delivery_in_its_teams_group(
    api: ApiClient, other_api: ApiClient, ingest: QueuePoller
) -> None:
    for _ in range(2):
        subscribe(api)
    subscribe(other_api)
    publish(api)
    publish(other_api)
    poll_until_empty(ingest)
    assert Counter(groups(get_settings().delivery_queue_url)) == {"team-a": 2, "team-b": 1}


@pytest.fixture
def world(to_localhost: LocalStack) -> World:
    return World()


def test_a_retry_and_a_wait_for_the_rate_limit_are_requeued_in_the_teams_group(
    world: World, delivery_queue_sends: DeliveryQueueSends
) -> None:
    with receiver(lambda _: Answer(500)) as failing:
        failing_subscription = world.subscribe(failing.port)
        assert world.deliver(world.pending(failing_subscription), 1).outcome == "pending"
    with receiver() as target:
        limited = world.subscribe(target.port, id=subscription_id(1), team_id="team-b", rate_limit=1)
        deliveries = [world.pending(limited, event_of(limited, number)) for number in range(4)]
        reports = world.deliverer.deliver_batch(
            [(f"m{number}", world.message(delivery, 1)) for number, delivery in enumerate(deliveries)], UNLIMITED
        )
    # Slots 1.05 s apart: the first two are waited for in the container, the others on the queue.
    assert Counter(report.outcome for report in reports) == {"delivered": 2, Outcome.WAITING: 2}
    assert delivery_queue_sends.groups == ["acme", "team-b", "team-b"]


class SlowRateLimiter(DynamoRateLimiter):
    """The rate# write answers its slots so late that the first of them has passed by more than LATE."""

    def reserve(self, subscription_id: str, rate_limit: int, count: int, now: datetime) -> list[datetime]:
        slots = super().reserve(subscription_id, rate_limit, count, now)
        time.sleep((SLOT_LEAD + LATE).total_seconds() + 0.2)
        return slots


def test_a_message_too_late_for_its_slot_goes_back_on_the_queue_in_its_teams_group(
    to_localhost: LocalStack, delivery_queue_sends: DeliveryQueueSends
) -> None:
    world = World(rate_limiter=SlowRateLimiter(table(get_settings().deliveries_table), spacing_seconds=0))
    with receiver() as target:
        limited = world.subscribe(target.port, team_id="team-b", rate_limit=1)
        delivery = world.pending(limited, event_of(limited, 1))
        (report,) = world.deliverer.deliver_batch([("late", world.message(delivery, 1))], UNLIMITED)
    assert report.outcome == Outcome.WAITING
    assert target.received == []
    assert delivery_queue_sends.groups == ["team-b"]


def test_the_sweeper_hands_a_delivery_waiting_for_a_far_slot_to_the_queue_in_its_teams_group(
    world: World, delivery_queue_sends: DeliveryQueueSends
) -> None:
    with receiver() as target:
        limited = world.subscribe(target.port, team_id="team-b", rate_limit=1)
        now = clock.utc_now()
        slots_taken_until(limited, now + timedelta(seconds=1000))
        assert world.deliver(world.pending(limited, event_of(limited, 1)), 1).outcome == Outcome.WAITING
        assert delivery_queue_sends.groups == []  # it waits in the wait index, not on the queue
        time.sleep(0.3)  # the index's lag
        assert local_sweeper().sweep(now + timedelta(minutes=4), UNLIMITED) == 1
    assert delivery_queue_sends.groups == ["team-b"]  # delayed until a second before its slot


def test_the_sweeper_enqueues_each_due_retry_in_its_teams_group(stack: LocalStack) -> None:
    for index in range(3):
        scheduled_delivery(index, timedelta(minutes=-1))
    stack.invoke("SweeperFunction", {"source": "aws.events", "detail-type": "Scheduled Event"})
    assert groups(get_settings().delivery_queue_url) == ["acme"] * 3


def test_a_test_event_sent_through_the_api_is_queued_in_its_teams_group(api: ApiClient) -> None:
    subscription_id = subscribe(api)
    assert api.post(f"/v3/webhooks/{subscription_id}/test", {}).status == 202
    assert groups(get_settings().delivery_queue_url) == ["team-a"]

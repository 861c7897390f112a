"""Every message a team's work puts on the events queue or the delivery queue carries the team as its
MessageGroupId, which is how SQS's fair queues tell the teams apart: the API's publish (through the
bus rule), ingest's fan-out, delivery's requeues, the sweeper's re-enqueues and the API's test sends."""

from collections import Counter
from datetime import timedelta

import pytest
from receivers import Answer, receiver
from records import subscription_id

from api_client import ApiClient
from hookrelay.aws import client
from hookrelay.settings import get_settings
from hookrelay.time_budget import UNLIMITED
from hookrelay_cli.local.stack import LocalStack
from hookrelay_cli.local.workers import QueuePoller
from integration import test_ingest
from integration.test_delivery import World, event_of
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
        limited = world.subscribe(target.port, id=subscription_id(1), rate_limit=1)
        deliveries = [world.pending(limited, event_of(limited, number)) for number in range(2)]
        reports = world.deliverer.deliver_batch(
            [(f"m{number}", world.message(delivery, 1)) for number, delivery in enumerate(deliveries)], UNLIMITED
        )
    assert Counter(report.outcome for report in reports) == {"delivered": 1, "rate limited": 1}
    assert delivery_queue_sends.groups == [failing_subscription.team_id, limited.team_id]


def test_the_sweeper_enqueues_each_due_retry_in_its_teams_group(stack: LocalStack) -> None:
    for index in range(3):
        scheduled_delivery(index, timedelta(minutes=-1))
    stack.invoke("SweeperFunction", {"source": "aws.events", "detail-type": "Scheduled Event"})
    assert groups(get_settings().delivery_queue_url) == ["acme"] * 3


def test_a_test_event_sent_through_the_api_is_queued_in_its_teams_group(api: ApiClient) -> None:
    subscription_id = subscribe(api)
    assert api.post(f"/v3/webhooks/{subscription_id}/test", {}).status == 202
    assert groups(get_settings().delivery_queue_url) == ["team-a"]

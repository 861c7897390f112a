"""Events over HTTP through the running local stack: POST /v3/events → EventBridge (moto) → events
queue → the stack's poller → the real ingest handler → delivery records and delivery-queue messages."""

import json
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from api_client import ApiClient
from e2e.conftest import RunningStack, eventually
from hookrelay.records import delivery_id

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

pytestmark = pytest.mark.e2e


class LocalAws:
    """The stack's moto, read as an operator would with the AWS SDK."""

    def __init__(self, stack: RunningStack) -> None:
        self.sqs, self.queue_url = stack.sqs(), stack.queue_url
        self.seen_messages: list[MessageTypeDef] = []

    def seen_bodies(self) -> list[str]:
        return [message["Body"] for message in self.seen_messages]

    def delivery_messages(self, delivery_ids: set[str]) -> list[str]:
        """Messages on the delivery queue for these deliveries (others' are left for their tests)."""
        url = self.queue_url("delivery")
        while batch := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            for message in batch:
                if json.loads(message["Body"])["delivery_id"] in delivery_ids:
                    self.seen_messages.append(message)
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                else:
                    self.sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
        return [json.loads(message["Body"])["delivery_id"] for message in self.seen_messages]


@pytest.fixture
def aws(local_stack: RunningStack) -> LocalAws:
    return LocalAws(local_stack)


def subscribe(api: ApiClient, **fields: object) -> str:
    response = api.post(
        "/v3/webhooks", {"endpoint": "https://hooks.example.com/x", "subscribed_events": ["*"], **fields}
    )
    assert response.status == 201, response.body
    return str(response.json()["id"])


def publish(api: ApiClient, event_name: str, **fields: object) -> str:
    response = api.post("/v3/events", {"event_name": event_name, "data": {"n": 1}, **fields})
    assert response.status == 202, response.body
    event_id = str(response.json()["event_id"])
    assert uuid.UUID(event_id)
    return event_id


def test_events_reach_exactly_the_matching_subscriptions(api: ApiClient, aws: LocalAws) -> None:
    everything = subscribe(api)
    signed_in_app = subscribe(api, subscribed_events=["signer.done", "signature_request.done"], scopes=["app"])
    workspace_two = subscribe(api, subscribed_events=["ENVELOPE_SIGNED"], workspaces=["ws-2"], sandbox=True)
    disabled = subscribe(api, enabled=False)
    subscriptions = {everything, signed_in_app, workspace_two, disabled}

    published = {
        "app": publish(api, "signer.done", scope="app"),
        "api": publish(api, "signer.done", scope="public_api"),
        "bare": publish(api, "signature_request.done"),
        "sandbox-ws2": publish(api, "ENVELOPE_SIGNED", sandbox=True, workspace_id="ws-2"),
        "sandbox-ws1": publish(api, "ENVELOPE_SIGNED", sandbox=True, workspace_id="ws-1"),
        "unmatched": publish(api, "contact.created", sandbox=True),
    }
    expected = {
        delivery_id(published["app"], everything): (everything, "signer.done"),
        delivery_id(published["app"], signed_in_app): (signed_in_app, "signer.done"),
        delivery_id(published["api"], everything): (everything, "signer.done"),
        delivery_id(published["bare"], everything): (everything, "signature_request.done"),
        delivery_id(published["sandbox-ws2"], workspace_two): (workspace_two, "ENVELOPE_SIGNED"),
    }
    possible = {
        delivery_id(event_id, subscription) for event_id in published.values() for subscription in subscriptions
    }
    eventually(lambda: len(aws.delivery_messages(possible)) >= len(expected), "delivery messages enqueued")
    time.sleep(1)  # anything extra would have arrived by now

    assert Counter(aws.delivery_messages(possible)) == Counter(dict.fromkeys(expected, 1))
    # Each message carries what its first attempt records the delivery with (fan-out writes no record).
    origins = {body["delivery_id"]: body["origin"] for body in map(json.loads, aws.seen_bodies())}
    for record_id, (subscription_id, event_name) in expected.items():
        assert origins[record_id]["subscription_id"] == subscription_id
        assert origins[record_id]["event_name"] == event_name


def test_the_same_event_posted_twice_is_delivered_once(api: ApiClient, aws: LocalAws) -> None:
    subscriptions = {subscribe(api), subscribe(api, subscribed_events=["signer.done"])}
    event_id = str(uuid.uuid4())
    assert publish(api, "signer.done", event_id=event_id) == event_id
    assert publish(api, "signer.done", event_id=event_id) == event_id
    expected = {delivery_id(event_id, subscription) for subscription in subscriptions}
    eventually(lambda: len(aws.delivery_messages(expected)) >= 2, "delivery messages enqueued")
    time.sleep(2)
    # The second copy may enqueue the first attempt again (these were not attempted yet, the test holds
    # their messages); delivery makes it once (tests/integration/test_ingest.py sends them).
    assert set(aws.delivery_messages(expected)) == expected
    assert {json.loads(message["Body"])["attempt"] for message in aws.seen_messages} == {1}


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"event_name": "signer.finished", "data": {}}, 422, "event_name"),
        ({"event_name": "signer.done"}, 422, "data"),
        ({"event_name": "signer.done", "data": "text"}, 422, "data"),
        ({"event_name": "signer.done", "data": {}, "sandbox": "no"}, 422, "sandbox"),
        ({"event_name": "signer.done", "data": {}, "event_id": "123"}, 422, "event_id"),
        ({"event_name": "signer.done", "data": {}, "event_time": "last tuesday"}, 422, "event_time"),
        ({"event_name": "*", "data": {}}, 422, "event_name"),
        ({"event_name": "signer.done", "data": {"blob": "x" * (256 * 1024)}}, 413, None),
    ],
)
def test_bad_events_are_clear_4xx(api: ApiClient, body: dict[str, object], status: int, param: str | None) -> None:
    response = api.post("/v3/events", body)
    assert response.status == status, response.body
    assert response.content_type.startswith("application/problem+json")
    if param:
        assert param in [item["name"] for item in response.json()["invalid_params"]]


def test_a_batch_of_eleven_events_is_422_and_publishes_none(api: ApiClient, aws: LocalAws) -> None:
    subscription = subscribe(api)
    events = [{"event_name": "signer.done", "data": {"n": index}, "event_id": str(uuid.uuid4())} for index in range(11)]
    response = api.post("/v3/events/batch", {"events": events})
    assert response.status == 422, response.body
    assert [param["name"] for param in response.json()["invalid_params"]] == ["events"]
    assert api.post("/v3/events/batch", {"events": events[:10]}).status == 202
    possible = {delivery_id(str(event["event_id"]), subscription) for event in events}
    expected = {delivery_id(str(event["event_id"]), subscription) for event in events[:10]}
    eventually(lambda: len(aws.delivery_messages(possible)) >= len(expected), "the ten events fanned out")
    time.sleep(1)  # the eleventh would have arrived by now
    assert set(aws.delivery_messages(possible)) == expected


def test_foreign_messages_on_the_events_queue_go_to_the_dlq_with_a_reason(
    api: ApiClient, aws: LocalAws, local_stack: RunningStack
) -> None:
    marker = str(uuid.uuid4())
    poison = [f"not json {marker}", json.dumps({"source": "other.app", "marker": marker, "detail": {}})]
    events_queue = aws.queue_url("events")
    for body in poison:
        aws.sqs.send_message(QueueUrl=events_queue, MessageBody=body)
    subscription = subscribe(api)
    event_id = publish(api, "signer.done")
    expected = {delivery_id(event_id, subscription)}
    eventually(lambda: aws.delivery_messages(expected) == list(expected), "the good event delivered meanwhile")

    dlq = aws.queue_url("events-dlq")
    in_dlq: list[str] = []

    def poison_in_dlq() -> bool:
        messages = aws.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            aws.sqs.change_message_visibility(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        in_dlq[:] = [m["Body"] for m in messages if marker in m["Body"]]
        return len(in_dlq) == len(poison)

    eventually(poison_in_dlq, "both foreign messages moved to the events DLQ after their receives")
    assert sorted(in_dlq) == sorted(poison)
    logged = [
        json.loads(line) for line in local_stack.output if line.startswith("{") and "not a hookrelay event" in line
    ]
    reasons = " | ".join(entry["reason"] for entry in logged)
    assert "the body is not JSON" in reasons and "source is 'other.app'" in reasons

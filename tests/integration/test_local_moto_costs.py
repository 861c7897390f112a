"""The local stack's moto at a cost that does not grow with what it holds: an SQS receive does not walk
the whole queue for every message it hands out, an event on the bus does not build a JSONPath
parser for every path of its target's input, and a DynamoDB update does not parse and check its
expression's text anew each time; with the same answers as before."""

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import moto.sqs.models
import pytest
from botocore.exceptions import ClientError

from hookrelay.aws import client
from hookrelay.settings import get_settings
from hookrelay_cli.local.stack import LocalStack

BATCH = 10


def fill(queue_url: str, count: int) -> None:
    sqs = client("sqs")
    for start in range(0, count, BATCH):
        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": json.dumps({"n": start + i})} for i in range(BATCH)],
        )


def fastest_of(repeats: int, work: Callable[[], object]) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings)


def receive_batch(queue_url: str) -> Callable[[], object]:
    def receive() -> object:
        messages = client("sqs").receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=BATCH, AttributeNames=["All"], VisibilityTimeout=0
        )["Messages"]
        assert len(messages) == BATCH
        return messages

    return receive


def test_receiving_a_batch_costs_about_the_same_from_a_long_queue_as_from_a_short_one(stack: LocalStack) -> None:
    settings = get_settings()
    short_queue, long_queue = settings.events_queue_url, settings.delivery_queue_url
    fill(short_queue, 2 * BATCH)
    fill(long_queue, 1_000)
    short, long = fastest_of(3, receive_batch(short_queue)), fastest_of(3, receive_batch(long_queue))
    # Walking the whole queue for every message handed out made it 30 times slower and more;
    # generous margin for a shared machine.
    assert long < 5 * short, f"{long * 1000:.1f} ms from 1 000 messages vs {short * 1000:.1f} ms from 20"


def test_a_message_past_its_queues_retention_period_is_not_received(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs, queue_url = client("sqs"), get_settings().delivery_queue_url
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"MessageRetentionPeriod": "60"})
    sqs.send_message(QueueUrl=queue_url, MessageBody="kept for a minute")
    sent = time.time()
    monkeypatch.setattr(moto.sqs.models, "unix_time", lambda: sent + 61)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url)


def test_an_event_on_the_bus_reaches_the_events_queue_whole(stack: LocalStack) -> None:
    settings = get_settings()
    for n in range(3):
        client("events").put_events(
            Entries=[
                {
                    "Source": "hookrelay",
                    "DetailType": "signer.done",
                    "Detail": json.dumps({"n": n, "name": "Jérôme"}),
                    "EventBusName": settings.event_bus,
                }
            ]
        )
    messages = client("sqs").receive_message(QueueUrl=settings.events_queue_url, MaxNumberOfMessages=BATCH)["Messages"]
    bodies = sorted((json.loads(message["Body"]) for message in messages), key=lambda body: body["detail"]["n"])
    assert [body["detail"] for body in bodies] == [{"n": n, "name": "Jérôme"} for n in range(3)]
    assert {(body["source"], body["detail-type"]) for body in bodies} == {("hookrelay", "signer.done")}
    assert len({body["id"] for body in bodies}) == 3


def refused(update: Callable[[], object]) -> str:
    with pytest.raises(ClientError) as error:
        update()
    assert error.value.response["Error"]["Code"] == "ValidationException"
    return str(error.value.response["Error"]["Message"])


def test_an_update_expression_is_checked_against_each_requests_names_and_values(stack: LocalStack) -> None:
    deliveries = client("dynamodb")
    table = get_settings().deliveries_table

    def update(delivery_id: str, names: dict[str, str], value: str) -> object:
        return deliveries.update_item(
            TableName=table,
            Key={"delivery_id": {"S": delivery_id}},
            UpdateExpression="SET #field = :value, attempt_count = :count",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":value": {"S": value}, ":count": {"N": "1"}},
        )

    for n in range(3):
        update(f"d{n}", {"#field": "status"}, f"status {n}")
    # The same text that passed, now naming the table's key: refused as it would be the first time.
    assert "key" in refused(lambda: update("d0", {"#field": "delivery_id"}, "other")).lower()
    # And with a value that does not fit the key's type: DynamoDB checks the values each request.
    message = refused(
        lambda: deliveries.update_item(
            TableName=table,
            Key={"delivery_id": {"S": "d0"}},
            UpdateExpression="SET #field = :value, attempt_count = :count",
            ExpressionAttributeNames={"#field": "status"},
            ExpressionAttributeValues={":value": {"S": "x"}},
        )
    )
    assert ":count" in message
    items = {
        item["delivery_id"]["S"]: item["status"]["S"]
        for item in deliveries.scan(TableName=table, ConsistentRead=True)["Items"]
    }
    assert items == {f"d{n}": f"status {n}" for n in range(3)}


def test_an_update_expression_that_breaks_a_rule_of_its_text_is_refused_every_time(stack: LocalStack) -> None:
    deliveries, table = client("dynamodb"), get_settings().deliveries_table
    for _ in range(2):
        message = refused(
            lambda: deliveries.update_item(
                TableName=table,
                Key={"delivery_id": {"S": "d"}},
                UpdateExpression="SET attempt_count = :one, attempts = :none, attempt_count = :one",
                ExpressionAttributeValues={":one": {"N": "1"}, ":none": {"L": []}},
            )
        )
        assert "attempt_count" in message
    assert "Item" not in deliveries.get_item(TableName=table, Key={"delivery_id": {"S": "d"}}, ConsistentRead=True)


def test_a_queues_attributes_count_its_messages_and_name_its_settings(stack: LocalStack) -> None:
    sqs = client("sqs")
    dead_letters = sqs.create_queue(QueueName="letters-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dead_letters_arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])["Attributes"]
    redrive = {"deadLetterTargetArn": dead_letters_arn["QueueArn"], "maxReceiveCount": 3}
    settings: dict[Any, str] = {
        "FifoQueue": "true",
        "ContentBasedDeduplication": "true",
        "RedrivePolicy": json.dumps(redrive),
    }
    letters = sqs.create_queue(QueueName="letters.fifo", Attributes=settings)["QueueUrl"]
    assert sqs.create_queue(QueueName="letters.fifo", Attributes=settings)["QueueUrl"] == letters
    with pytest.raises(sqs.exceptions.QueueNameExists):
        sqs.create_queue(QueueName="letters.fifo", Attributes={**settings, "ContentBasedDeduplication": "false"})
    for body in ("same", "same", "other"):  # deduplicated by content: the second "same" is not kept
        sqs.send_message(QueueUrl=letters, MessageBody=body, MessageGroupId="team")
    sqs.receive_message(QueueUrl=letters, MaxNumberOfMessages=1, VisibilityTimeout=60)
    attributes = sqs.get_queue_attributes(QueueUrl=letters, AttributeNames=["All"])["Attributes"]
    assert {name: attributes[name] for name in settings if name != "RedrivePolicy"} == {
        "FifoQueue": "true",
        "ContentBasedDeduplication": "true",
    }
    assert json.loads(attributes["RedrivePolicy"]) == redrive
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        "1",
        "1",
    )
    asked = sqs.get_queue_attributes(QueueUrl=letters, AttributeNames=["ApproximateNumberOfMessages", "DelaySeconds"])
    assert asked["Attributes"] == {"ApproximateNumberOfMessages": "1", "DelaySeconds": "0"}
    standard = get_settings().delivery_queue_url
    sqs.send_message(QueueUrl=standard, MessageBody="later", DelaySeconds=60)
    counted = sqs.get_queue_attributes(QueueUrl=standard, AttributeNames=["All"])["Attributes"]
    assert counted["ApproximateNumberOfMessagesDelayed"] == "1"
    assert "FifoQueue" not in counted and "ContentBasedDeduplication" not in counted


# Run in a process of its own, as the stack's server processes install it: the test process keeps collecting as before.
COLLECTIONS = """
import gc, json, weakref
from hookrelay_cli.local.moto_costs import keep_collections_short

class Held: pass
keep_collections_short()
frozen_at_start = gc.get_freeze_count()
held = [Held() for _ in range(50_000)]
gc.collect()
frozen_after_full_collection = gc.get_freeze_count()
gone = weakref.ref(held[0]); held.clear()
cycle = Held(); cycle.itself = cycle; cyclic = weakref.ref(cycle); del cycle
gc.collect(0)
print(json.dumps([frozen_at_start, frozen_after_full_collection, gone() is None, cyclic() is None]))
"""


def test_a_stack_process_keeps_its_full_collections_to_what_it_made_since_the_last() -> None:
    answer = subprocess.run([sys.executable, "-c", COLLECTIONS], capture_output=True, text=True, timeout=60, check=True)
    frozen_at_start, frozen_after_full_collection, freed, cycle_collected = json.loads(answer.stdout)
    assert frozen_at_start > 0  # the modules, frozen at install
    assert frozen_after_full_collection >= frozen_at_start + 50_000  # what survived the full collection
    assert freed  # a frozen object still goes with its last reference
    assert cycle_collected  # a cycle made since is collected as before

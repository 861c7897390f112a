"""SQS message move tasks in the local stack's moto (hookrelay_cli.local.sqs_move_tasks), a test per rule
of the SQS API reference: the answers an SQS client such as the console or the AWS CLI would get."""

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from hookrelay_cli.local.sqs_move_tasks import enable_message_move_tasks

WAIT_SECONDS = 10.0


class Queues:
    """Two source queues redriving into one DLQ after a single receive, and a queue that is no DLQ."""

    def __init__(self) -> None:
        self.sqs: Any = boto3.client("sqs", region_name="us-east-1")
        self.dlq = self.create("dlq")
        policy = json.dumps({"deadLetterTargetArn": self.arn(self.dlq), "maxReceiveCount": 1})
        self.orders = self.create("orders", {"RedrivePolicy": policy})
        self.refunds = self.create("refunds", {"RedrivePolicy": policy})
        self.other = self.create("other")

    def create(self, name: str, attributes: dict[str, str] | None = None) -> str:
        return str(self.sqs.create_queue(QueueName=name, Attributes=attributes or {})["QueueUrl"])

    def arn(self, url: str) -> str:
        return str(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    def park(self, source_url: str, *bodies: str, **send: Any) -> None:
        """Each body on the DLQ as its source queue's redrive policy moves it: received too often."""
        for body in bodies:
            self.sqs.send_message(QueueUrl=source_url, MessageBody=body, **send)
        while self.sqs.receive_message(QueueUrl=source_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages"
        ):
            pass

    def count(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    def drain(self, url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", []):
            messages.extend(batch)
            for message in batch:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return messages

    def latest_task(self, source_url: str) -> dict[str, Any]:
        (task,) = self.sqs.list_message_move_tasks(SourceArn=self.arn(source_url))["Results"]
        return dict(task)

    def finished_task(self, source_url: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_SECONDS
        while (task := self.latest_task(source_url))["Status"] in ("RUNNING", "CANCELLING"):
            assert time.monotonic() < deadline, task
            time.sleep(0.05)
        return task


@pytest.fixture
def queues() -> Iterator[Queues]:
    enable_message_move_tasks()
    with mock_aws():
        yield Queues()


def error_of(call: Any, **parameters: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as raised:
        call(**parameters)
    response = raised.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def test_the_source_must_be_a_dead_letter_queue_of_an_sqs_queue(queues: Queues) -> None:
    queues.sqs.send_message(QueueUrl=queues.other, MessageBody="sent by EventBridge")
    start = queues.sqs.start_message_move_task

    assert error_of(start, SourceArn=queues.arn(queues.other), DestinationArn=queues.arn(queues.orders)) == (
        400,
        "InvalidParameterValue",
        "Source queue must be configured as a Dead Letter Queue.",
    )
    assert error_of(start, SourceArn=queues.arn(queues.orders).replace("orders", "gone")) == (
        404,
        "ResourceNotFoundException",
        "The resource that you specified for the SourceArn parameter doesn't exist.",
    )
    assert error_of(start, SourceArn=queues.arn(queues.dlq), DestinationArn=queues.arn(queues.orders) + "-gone") == (
        404,
        "ResourceNotFoundException",
        "The resource that you specified for the DestinationArn parameter doesn't exist.",
    )
    assert queues.count(queues.other) == 1


def test_without_a_destination_each_message_goes_back_to_the_queue_it_was_parked_from(queues: Queues) -> None:
    team = {"team": {"DataType": "String", "StringValue": "acme"}}
    queues.park(queues.orders, "order-1", "order-2", MessageGroupId="acme", MessageAttributes=team)
    queues.park(queues.refunds, "refund-1")
    assert queues.count(queues.dlq) == 3

    queues.sqs.start_message_move_task(SourceArn=queues.arn(queues.dlq))

    assert queues.finished_task(queues.dlq)["Status"] == "COMPLETED"
    orders, refunds = queues.drain(queues.orders), queues.drain(queues.refunds)
    assert sorted(message["Body"] for message in orders) == ["order-1", "order-2"]
    assert [message["Body"] for message in refunds] == ["refund-1"]
    # Sent anew (received for the first time), with the group and the message attributes it had.
    assert {message["Attributes"]["MessageGroupId"] for message in orders} == {"acme"}
    assert {message["Attributes"]["ApproximateReceiveCount"] for message in orders} == {"1"}
    assert [message["MessageAttributes"] for message in orders] == [team, team]
    assert queues.count(queues.dlq) == 0


def test_a_message_no_redrive_parked_has_no_source_to_go_back_to_and_moves_only_to_a_destination(
    queues: Queues,
) -> None:
    queues.park(queues.orders, "order-1")
    queues.sqs.send_message(QueueUrl=queues.dlq, MessageBody="parked by EventBridge")

    queues.sqs.start_message_move_task(SourceArn=queues.arn(queues.dlq))
    failed = queues.finished_task(queues.dlq)

    assert failed["Status"] == "FAILED"
    assert "no source queue to go back to: give a DestinationArn" in failed["FailureReason"]
    assert queues.count(queues.dlq) == 2 - failed["ApproximateNumberOfMessagesMoved"]

    queues.sqs.start_message_move_task(SourceArn=queues.arn(queues.dlq), DestinationArn=queues.arn(queues.other))

    assert queues.finished_task(queues.dlq)["Status"] == "COMPLETED"
    moved = [message["Body"] for message in queues.drain(queues.orders) + queues.drain(queues.other)]
    assert sorted(moved) == ["order-1", "parked by EventBridge"]


def test_max_number_of_messages_per_second_spaces_the_moves(queues: Queues) -> None:
    queues.park(queues.orders, *(f"order-{n}" for n in range(4)))
    start = queues.sqs.start_message_move_task
    for refused in (0, 501):
        assert error_of(start, SourceArn=queues.arn(queues.dlq), MaxNumberOfMessagesPerSecond=refused)[1] == (
            "InvalidParameterValue"
        )

    started = time.monotonic()
    start(SourceArn=queues.arn(queues.dlq), MaxNumberOfMessagesPerSecond=2)
    task = queues.finished_task(queues.dlq)

    # The first moves at once, then one every half second.
    assert time.monotonic() - started >= 1.5
    assert (task["Status"], task["MaxNumberOfMessagesPerSecond"], task["ApproximateNumberOfMessagesMoved"]) == (
        "COMPLETED",
        2,
        4,
    )


def test_one_active_task_per_source(queues: Queues) -> None:
    queues.park(queues.orders, "order-1", "order-2")
    queues.sqs.start_message_move_task(SourceArn=queues.arn(queues.dlq), MaxNumberOfMessagesPerSecond=1)

    assert error_of(queues.sqs.start_message_move_task, SourceArn=queues.arn(queues.dlq)) == (
        400,
        "InvalidParameterValue",
        "There is already a task running. Only one active task is allowed for a source queue arn at a given time.",
    )
    assert queues.finished_task(queues.dlq)["Status"] == "COMPLETED"
    queues.sqs.start_message_move_task(SourceArn=queues.arn(queues.dlq))


def test_a_task_counts_what_it_moves_and_fails_when_its_destination_goes(queues: Queues) -> None:
    queues.park(queues.orders, *(f"order-{n}" for n in range(3)))
    queues.sqs.start_message_move_task(SourceArn=queues.arn(queues.dlq), DestinationArn=queues.arn(queues.other))
    assert queues.finished_task(queues.dlq) | {"StartedTimestamp": 0} == {
        "Status": "COMPLETED",
        "SourceArn": queues.arn(queues.dlq),
        "DestinationArn": queues.arn(queues.other),
        "ApproximateNumberOfMessagesMoved": 3,
        "ApproximateNumberOfMessagesToMove": 3,
        "StartedTimestamp": 0,
    }

    queues.park(queues.orders, *(f"order-{n}" for n in range(3, 13)))
    destination = queues.arn(queues.other)
    queues.sqs.start_message_move_task(
        SourceArn=queues.arn(queues.dlq), DestinationArn=destination, MaxNumberOfMessagesPerSecond=2
    )
    queues.sqs.delete_queue(QueueUrl=queues.other)
    failed = queues.finished_task(queues.dlq)

    assert (failed["Status"], failed["FailureReason"]) == ("FAILED", "AWS.SimpleQueueService.NonExistentQueue")
    assert failed["ApproximateNumberOfMessagesMoved"] < 10
    assert queues.count(queues.dlq) == 10 - failed["ApproximateNumberOfMessagesMoved"]


def test_cancel_stops_a_running_task_and_what_was_not_moved_stays(queues: Queues) -> None:
    queues.park(queues.orders, *(f"order-{n}" for n in range(10)))
    handle = queues.sqs.start_message_move_task(SourceArn=queues.arn(queues.dlq), MaxNumberOfMessagesPerSecond=1)[
        "TaskHandle"
    ]
    time.sleep(1.2)

    moved_when_cancelled = queues.sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]
    cancelled = queues.finished_task(queues.dlq)

    assert cancelled["Status"] == "CANCELLED" and "TaskHandle" not in cancelled
    assert 1 <= moved_when_cancelled <= cancelled["ApproximateNumberOfMessagesMoved"] < 10
    assert queues.count(queues.dlq) == 10 - cancelled["ApproximateNumberOfMessagesMoved"]
    assert len(queues.drain(queues.orders)) == cancelled["ApproximateNumberOfMessagesMoved"]
    # Only a running task can be cancelled.
    assert error_of(queues.sqs.cancel_message_move_task, TaskHandle=handle) == (
        404,
        "ResourceNotFoundException",
        "Task does not exist.",
    )
    assert error_of(queues.sqs.cancel_message_move_task, TaskHandle="not a handle") == (
        400,
        "InvalidParameterValue",
        "Value for parameter TaskHandle is invalid.",
    )


def test_the_listing_is_newest_first_and_only_a_running_task_shows_its_handle(queues: Queues) -> None:
    dlq = queues.arn(queues.dlq)
    assert queues.sqs.list_message_move_tasks(SourceArn=dlq)["Results"] == []
    queues.park(queues.orders, "order-1")
    queues.sqs.start_message_move_task(SourceArn=dlq, DestinationArn=queues.arn(queues.other))
    queues.finished_task(queues.dlq)
    queues.park(queues.orders, "order-2", "order-3")
    handle = queues.sqs.start_message_move_task(SourceArn=dlq, MaxNumberOfMessagesPerSecond=1)["TaskHandle"]

    listed = queues.sqs.list_message_move_tasks(SourceArn=dlq, MaxResults=10)["Results"]

    assert [(task["Status"], task.get("TaskHandle")) for task in listed] == [("RUNNING", handle), ("COMPLETED", None)]
    assert "DestinationArn" not in listed[0] and listed[1]["DestinationArn"] == queues.arn(queues.other)
    assert "MaxNumberOfMessagesPerSecond" not in listed[1] and listed[0]["MaxNumberOfMessagesPerSecond"] == 1
    assert listed[0]["StartedTimestamp"] >= listed[1]["StartedTimestamp"]
    assert queues.sqs.list_message_move_tasks(SourceArn=dlq)["Results"] == listed[:1]
    assert error_of(queues.sqs.list_message_move_tasks, SourceArn=dlq, MaxResults=11)[1] == "InvalidParameterValue"

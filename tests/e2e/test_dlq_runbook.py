"""The docs' dead-letter runbook (docs/operations/dlq.md), run with the AWS CLI against the local stack as an
operator runs it against AWS: find the DLQs from the redrive policies, read a parked message, redrive it with an SQS
message move task (the console's "Start DLQ redrive") and see the event delivered, cancel a slow task
and see what stays. For the events queue's DLQ, and for the EventBridge DLQ, from which SQS refuses a
move task (`hookrelay dlq redrive --queue eventbridge` sends its events back)."""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from receivers import Receiver, receiver

from api_client import ApiClient
from e2e.conftest import (
    OPERATOR_STACK,
    RunningStack,
    bump_team_version,
    eventually,
    http_transport,
    park_in_eventbridge_dlq,
    publish,
    running_stack,
    subscribe,
)
from hookrelay.records import delivery_id
from hookrelay_cli.local.stack import LOCAL_CREDENTIALS, LOCAL_STACK_NAME
from paths import REPO

pytestmark = pytest.mark.e2e
AWS_CLI = str(Path(sys.executable).with_name("aws"))
RUNBOOK = (REPO / "docs" / "operations" / "dlq.md").read_text()
# At one message a second, a slow task over these many runs long enough to be cancelled by the CLI's
# next command, which may take seconds on a loaded machine.
PARKED_EVENTS = 10


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    with running_stack(OPERATOR_STACK) as stack:
        yield stack


class AwsCli:
    """`aws sqs ...` (or another `service`) from the test venv's awscli, with dummy credentials, against
    the stack's endpoint."""

    def __init__(self, endpoint: str, service: str = "sqs") -> None:
        self.endpoint = endpoint
        self.service = service
        self.operations: set[str] = set()
        self.environment = {
            **{name: value for name, value in os.environ.items() if not name.startswith("AWS_")},
            **LOCAL_CREDENTIALS,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def run(self, operation: str, *arguments: str) -> subprocess.CompletedProcess[str]:
        self.operations.add(operation)
        return subprocess.run(
            [AWS_CLI, self.service, operation, *arguments, "--endpoint-url", self.endpoint, "--output", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            env=self.environment,
            check=False,
        )

    def __call__(self, operation: str, *arguments: str) -> dict[str, Any]:
        result = self.run(operation, *arguments)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else {}


@pytest.fixture
def aws(stack: RunningStack) -> AwsCli:
    return AwsCli(stack.aws_endpoint)


def assert_runbook_lists(aws: AwsCli) -> None:
    """What the test ran is what the runbook tells an operator to run."""
    assert {operation for operation in aws.operations if f"aws sqs {operation}" not in RUNBOOK} == set()


def dead_letter_queues(aws: AwsCli) -> dict[str, dict[str, Any]]:
    """Step 1: each queue by name, with its ARN, URL and the DLQ its redrive policy names (if any)."""
    queues: dict[str, dict[str, Any]] = {}
    for url in aws("list-queues", "--queue-name-prefix", LOCAL_STACK_NAME)["QueueUrls"]:
        attributes = aws("get-queue-attributes", "--queue-url", url, "--attribute-names", "QueueArn", "RedrivePolicy")
        policy = json.loads(attributes["Attributes"].get("RedrivePolicy", "{}"))
        queues[url.rsplit("/", 1)[1].removeprefix(f"{LOCAL_STACK_NAME}-")] = {
            "url": url,
            "arn": attributes["Attributes"]["QueueArn"],
            "dead_letter_queue": policy.get("deadLetterTargetArn"),
        }
    return queues


def depth(aws: AwsCli, queue_url: str) -> int:
    counted = aws("get-queue-attributes", "--queue-url", queue_url, "--attribute-names", "ApproximateNumberOfMessages")
    return int(counted["Attributes"]["ApproximateNumberOfMessages"])


def latest_task(aws: AwsCli, dlq_arn: str) -> dict[str, Any]:
    (task,) = aws("list-message-move-tasks", "--source-arn", dlq_arn)["Results"]
    return dict(task)


def finished_task(aws: AwsCli, dlq_arn: str) -> dict[str, Any]:
    """Step 3's follow-up: the latest task, once it is no longer RUNNING or CANCELLING."""
    found: dict[str, Any] = {}

    def finished() -> bool:
        found.update(latest_task(aws, dlq_arn))
        return found["Status"] not in ("RUNNING", "CANCELLING")

    eventually(finished, "the move task ended")
    return found


def webhook_ids(healthy: Receiver) -> set[str]:
    return {request.headers["webhook-id"] for request in healthy.received}


def test_events_dlq_redrive_with_the_aws_cli(stack: RunningStack, aws: AwsCli) -> None:
    team = f"team-{uuid.uuid4().hex[:8]}"
    api = ApiClient(http_transport(stack, requests.Session()), stack.create_key(team))
    subscriptions = stack.table("SubscriptionsTable")

    with receiver() as healthy:
        subscription = subscribe(api, f"http://127.0.0.1:{healthy.port}/hook")
        key = {"team_id": team, "subscription_id": subscription["id"]}
        # Bad data the API would never write: ingest raises on every receive of the team's events,
        # five receives in a row, and SQS moves each to the events DLQ.
        subscriptions.update_item(
            Key=key, UpdateExpression="SET revision = :bad", ExpressionAttributeValues={":bad": "not a number"}
        )
        bump_team_version(stack, team)
        events = {publish(api) for _ in range(PARKED_EVENTS)}
        deliveries = {delivery_id(event, str(subscription["id"])) for event in events}

        queues = dead_letter_queues(aws)
        events_dlq = queues["events-dlq"]
        assert queues["events"]["dead_letter_queue"] == events_dlq["arn"]
        assert queues["delivery"]["dead_letter_queue"] == queues["delivery-dlq"]["arn"]
        assert aws("list-dead-letter-source-queues", "--queue-url", events_dlq["url"])["queueUrls"] == [
            queues["events"]["url"]
        ]
        eventually(lambda: depth(aws, events_dlq["url"]) == PARKED_EVENTS, "the events parked in the events DLQ")

        # Step 2: read a parked message; a visibility timeout of 0 leaves it on the queue for the redrive.
        (parked,) = aws(
            "receive-message",
            "--queue-url",
            events_dlq["url"],
            "--attribute-names",
            "All",
            "--message-attribute-names",
            "All",
            "--visibility-timeout",
            "0",
        )["Messages"]
        assert json.loads(parked["Body"])["detail"]["event"]["event_id"] in events
        assert int(parked["Attributes"]["ApproximateReceiveCount"]) >= 5
        assert depth(aws, events_dlq["url"]) == PARKED_EVENTS

        # The fix, then step 4 first: a slow task, cancelled; what it had not moved stays on the DLQ.
        subscriptions.update_item(
            Key=key, UpdateExpression="SET revision = :good", ExpressionAttributeValues={":good": 1}
        )
        bump_team_version(stack, team)
        slow = aws(
            "start-message-move-task", "--source-arn", events_dlq["arn"], "--max-number-of-messages-per-second", "1"
        )
        # Cancelled at once: the CLI's next command may take seconds on a loaded machine.
        moved_when_cancelled = aws("cancel-message-move-task", "--task-handle", slow["TaskHandle"])[
            "ApproximateNumberOfMessagesMoved"
        ]
        cancelled = finished_task(aws, events_dlq["arn"])
        moved = cancelled["ApproximateNumberOfMessagesMoved"]
        assert cancelled["Status"] == "CANCELLED" and "TaskHandle" not in cancelled
        assert cancelled["ApproximateNumberOfMessagesToMove"] == PARKED_EVENTS
        assert moved_when_cancelled <= moved < PARKED_EVENTS
        assert depth(aws, events_dlq["url"]) == PARKED_EVENTS - moved
        eventually(lambda: len(webhook_ids(healthy)) == moved, "what the cancelled task moved, delivered")

        # Step 3: the whole redrive, back to the source queue (no destination), followed to COMPLETED.
        aws("start-message-move-task", "--source-arn", events_dlq["arn"])
        completed = finished_task(aws, events_dlq["arn"])
        assert (completed["Status"], completed["ApproximateNumberOfMessagesMoved"]) == (
            "COMPLETED",
            PARKED_EVENTS - moved,
        )
        assert "DestinationArn" not in completed
        assert depth(aws, events_dlq["url"]) == 0
        eventually(lambda: webhook_ids(healthy) == deliveries, "every parked event delivered")

        newest_first = aws("list-message-move-tasks", "--source-arn", events_dlq["arn"], "--max-results", "10")
        assert [task["Status"] for task in newest_first["Results"]] == ["COMPLETED", "CANCELLED"]
    assert len(healthy.received) == PARKED_EVENTS
    assert_runbook_lists(aws)


def test_eventbridge_dlq_redrive_is_refused_a_move_task_and_goes_back_with_the_hookrelay_cli(
    stack: RunningStack, aws: AwsCli
) -> None:
    team = f"team-{uuid.uuid4().hex[:8]}"
    api = ApiClient(http_transport(stack, requests.Session()), stack.create_key(team))
    with receiver() as healthy:
        subscription = subscribe(api, f"http://127.0.0.1:{healthy.port}/hook")
        queues = dead_letter_queues(aws)
        eventbridge_dlq = queues["eventbridge-dlq"]
        # No queue's redrive policy names it: EventBridge, not SQS, puts messages there.
        assert eventbridge_dlq["arn"] not in {queue["dead_letter_queue"] for queue in queues.values()}
        assert aws("list-dead-letter-source-queues", "--queue-url", eventbridge_dlq["url"]).get("queueUrls", []) == []
        reasons = {"ERROR_CODE": "NO_PERMISSIONS", "ERROR_MESSAGE": "Access denied.", "RETRY_ATTEMPTS": "0"}
        event, envelope = park_in_eventbridge_dlq(stack, team, reasons)

        (parked,) = aws(
            "receive-message",
            "--queue-url",
            eventbridge_dlq["url"],
            "--message-attribute-names",
            "All",
            "--visibility-timeout",
            "0",
        )["Messages"]
        assert parked["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "NO_PERMISSIONS"
        assert json.loads(parked["Body"])["detail"] == envelope["detail"]

        # SQS refuses the move task, back to a source or to the events queue alike.
        for destination in ([], ["--destination-arn", queues["events"]["arn"]]):
            refused = aws.run("start-message-move-task", "--source-arn", eventbridge_dlq["arn"], *destination)
            assert refused.returncode != 0
            assert "(InvalidParameterValue)" in refused.stderr
            assert "Source queue must be configured as a Dead Letter Queue." in refused.stderr
        assert aws("list-message-move-tasks", "--source-arn", eventbridge_dlq["arn"])["Results"] == []

        redriven = json.loads(stack.local_cli("dlq", "redrive", "--queue", "eventbridge"))

        assert redriven == {"status": "COMPLETED", "moved": 1, "failed": 0}
        assert depth(aws, eventbridge_dlq["url"]) == 0
        delivery = delivery_id(event.event_id, str(subscription["id"]))
        eventually(lambda: webhook_ids(healthy) == {delivery}, "the parked event delivered")
    assert_runbook_lists(aws)

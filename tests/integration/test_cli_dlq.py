"""`hookrelay dlq list|show|redrive` and `hookrelay deliveries show` against a deployed stack (moto's
CloudFormation, its SQS message move tasks answered by a botocore event hook, to script what SQS
answers) and the local stack (a moto server, which runs move tasks: local.sqs_move_tasks)."""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import records
from botocore.awsrequest import AWSResponse, HTTPHeaders

import hookrelay_cli.dlq
import hookrelay_cli.target
from hookrelay import clock
from hookrelay.queues import delivery_message
from hookrelay.records import Attempt, Delivery, Event, delivery_id
from hookrelay.store.deliveries import AttemptOutcome, DynamoDeliveryStore
from hookrelay.store.delivery_log import DynamoDeliveryLogStore
from hookrelay.store.events import DynamoEventStore, event_key
from hookrelay_cli.local.stack import LOCAL_STACK_NAME
from hookrelay_cli.main import main
from integration.cli_stacks import STACK, StackResources, deployed_stack, local_stack

DLQ = "DeliveryDeadLetterQueue"


@pytest.fixture
def stack() -> Iterator[StackResources]:
    with deployed_stack() as resources:
        yield resources


def run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = main(list(arguments))
    out, err = capsys.readouterr()
    return code, out, err


def a_delivery(stack: StackResources, attempts: int) -> Delivery:
    """A delivery record whose first `attempts` attempts answered 500; the next one is due."""
    event = Event(
        event_id=str(uuid.uuid4()),
        event_name="signer.done",
        event_time="2026-03-02T10:15:30.000Z",
        team_id="acme",
        data={"signer": {"id": "s-1"}},
    )
    subscription_id, now = str(uuid.uuid4()), clock.now_iso()
    delivery = Delivery(
        id=delivery_id(event.event_id, subscription_id),
        team_id="acme",
        subscription_id=subscription_id,
        event_id=event.event_id,
        event_name=event.event_name,
        event=event,
        created_at=now,
        updated_at=now,
        expires_at=2_000_000_000,
    )
    deliveries_table = stack.table("DeliveriesTable")
    store, log = DynamoDeliveryStore(deliveries_table), DynamoDeliveryLogStore(deliveries_table)
    records.store_pending(deliveries_table, [delivery])
    for number in range(1, attempts + 1):
        attempt = Attempt(at=clock.now_iso(), status_code=500, latency_ms=12, response_excerpt="boom")
        store.record_attempt(log.get(delivery.id) or delivery, number, attempt, AttemptOutcome("pending"))
    found = log.get(delivery.id)
    assert found is not None
    return found


def test_dlq_list_shows_messages_without_removing_them(
    stack: StackResources, capsys: pytest.CaptureFixture[str]
) -> None:
    deliveries = [str(uuid.uuid4()) for _ in range(12)]
    sent = stack.send(
        DLQ, *(delivery_message(d, 3, team_id="acme").body for d in deliveries), "not a delivery\n" + "x" * 200
    )

    code, out, err = run(capsys, "dlq", "list", "--stack", STACK, "--json")

    assert code == 0, err
    lines = json.loads(out)["messages"]
    assert sorted(line["message_id"] for line in lines) == sorted(sent)
    by_delivery = {line["delivery_id"]: line for line in lines if "delivery_id" in line}
    assert set(by_delivery) == set(deliveries) and {line["attempt"] for line in by_delivery.values()} == {3}
    (other,) = [line for line in lines if "delivery_id" not in line]
    assert other["body"].startswith("not a delivery xxx") and len(other["body"]) <= 81
    assert all(line["sent_at"].endswith("Z") and line["receive_count"] >= 1 for line in lines)
    assert stack.counts(DLQ) == (13, 0)  # all still there, and visible
    assert "13 message(s)" in err

    code, out, _ = run(capsys, "dlq", "list", "--stack", STACK, "--json")
    assert sorted(line["message_id"] for line in json.loads(out)["messages"]) == sorted(sent)
    assert stack.counts(DLQ) == (13, 0)


def test_dlq_list_as_a_table_and_at_most_max(stack: StackResources, capsys: pytest.CaptureFixture[str]) -> None:
    stack.send(DLQ, *(delivery_message(str(uuid.uuid4()), 1, team_id="acme").body for _ in range(7)))

    code, out, _ = run(capsys, "dlq", "list", "--max", "5", "--stack", STACK)

    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["MESSAGE_ID", "SENT_AT", "RECEIVE_COUNT", "DELIVERY_ID", "ATTEMPT", "BODY"]
    assert len(rows) == 5 and all(row.split()[-1] == "-" for row in rows)
    assert stack.counts(DLQ) == (7, 0)


def test_dlq_list_of_the_events_queue(stack: StackResources, capsys: pytest.CaptureFixture[str]) -> None:
    (message_id,) = stack.send("EventsDeadLetterQueue", json.dumps({"detail-type": "signer.done", "detail": {}}))

    code, out, _ = run(capsys, "dlq", "list", "--queue", "events", "--stack", STACK, "--json")

    assert code == 0
    (line,) = json.loads(out)["messages"]
    assert line["message_id"] == message_id and line["body"].startswith('{"detail-type": "signer.done"')


def test_dlq_show_gives_the_message_and_its_delivery(stack: StackResources, capsys: pytest.CaptureFixture[str]) -> None:
    delivery = a_delivery(stack, attempts=2)
    stack.send(DLQ, *(delivery_message(str(uuid.uuid4()), 1, team_id="acme").body for _ in range(15)))
    (message_id,) = stack.send(DLQ, delivery_message(delivery.id, 3, team_id="acme").body)

    code, out, err = run(capsys, "dlq", "show", message_id, "--stack", STACK)

    assert code == 0, err
    shown = json.loads(out)
    assert shown["message_id"] == message_id
    assert shown["body"] == {"delivery_id": delivery.id, "attempt": 3}
    assert {"SentTimestamp", "ApproximateReceiveCount"} <= set(shown["attributes"])
    assert shown["delivery"]["id"] == delivery.id
    assert shown["delivery"]["status"] == "pending" and shown["delivery"]["attempt_count"] == 2
    assert [attempt["status_code"] for attempt in shown["delivery"]["attempts"]] == [500, 500]
    assert "read 16 of ~16 messages" in err
    assert stack.counts(DLQ) == (16, 0)


def test_dlq_show_of_an_unknown_message(stack: StackResources, capsys: pytest.CaptureFixture[str]) -> None:
    stack.send(DLQ, "something")

    code, out, err = run(capsys, "dlq", "show", "no-such-message", "--stack", STACK)

    assert (code, out) == (1, "")
    assert err.splitlines()[-1] == f"error: no message no-such-message on the delivery DLQ of stack {STACK}"
    assert stack.counts(DLQ) == (1, 0)


def test_deliveries_show(stack: StackResources, capsys: pytest.CaptureFixture[str]) -> None:
    delivery = a_delivery(stack, attempts=1)

    code, out, _ = run(capsys, "deliveries", "show", delivery.id, "--stack", STACK)

    assert code == 0
    shown = json.loads(out)
    assert shown["id"] == delivery.id and shown["status"] == "pending" and shown["attempt_count"] == 1
    assert shown["event_name"] == "signer.done" and shown["event_id"] == delivery.event_id
    assert shown["subscription_id"] == delivery.subscription_id
    (attempt,) = shown["attempts"]
    assert attempt["status_code"] == 500 and attempt["latency_ms"] == 12 and attempt["response_excerpt"] == "boom"
    assert "event" not in shown  # the event's data stays out of an operator's terminal


@pytest.mark.parametrize("kind", ["unknown", "event record"])
def test_deliveries_show_of_an_unknown_delivery(
    stack: StackResources, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    unknown = str(uuid.uuid4())
    if kind == "event record":
        event = Event(event_id=unknown, event_name="signer.done", event_time=clock.now_iso(), team_id="acme", data={})
        DynamoEventStore(stack.table("DeliveriesTable")).keep(event, 2**31)
        unknown = event_key("acme", unknown)
    assert run(capsys, "deliveries", "show", unknown, "--stack", STACK) == (
        1,
        "",
        f"error: no delivery {unknown} in stack {STACK}\n",
    )


class MoveTasks:
    """Answers StartMessageMoveTask and ListMessageMoveTasks from a script, as SQS would."""

    def __init__(self, listings: list[dict[str, Any]]):
        self.listings = listings
        self.started: list[dict[str, Any]] = []

    def session(self, region: str | None) -> boto3.session.Session:
        session = boto3.session.Session(region_name=region)
        # A before-call handler that returns a response answers in place of AWS (botocore-stubs type every
        # handler as returning None).
        session.events.register("before-call.sqs.StartMessageMoveTask", self._start)  # type: ignore[arg-type]
        session.events.register("before-call.sqs.ListMessageMoveTasks", self._list)  # type: ignore[arg-type]
        return session

    def _start(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.started.append(json.loads(params["body"]))
        return AWSResponse("", 200, HTTPHeaders(), None), {"TaskHandle": "task-1"}

    def _list(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("", 200, HTTPHeaders(), None), {"Results": [self.listings.pop(0)]}


@pytest.fixture
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hookrelay_cli.dlq, "MOVE_TASK_POLL_SECONDS", 0)


@pytest.mark.usefixtures("no_wait")
def test_dlq_redrive_on_aws_runs_a_message_move_task_and_follows_it(
    stack: StackResources, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    running = {"TaskHandle": "task-1", "Status": "RUNNING", "ApproximateNumberOfMessagesToMove": 3}
    tasks = MoveTasks(
        [
            {**running, "ApproximateNumberOfMessagesMoved": 0},
            {**running, "ApproximateNumberOfMessagesMoved": 2},
            {"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 3, "ApproximateNumberOfMessagesToMove": 3},
        ]
    )
    monkeypatch.setattr(hookrelay_cli.target, "aws_session", tasks.session)

    code, out, err = run(capsys, "dlq", "redrive", "--stack", STACK)

    assert code == 0, err
    assert tasks.started == [{"SourceArn": stack.queue_arn(DLQ), "DestinationArn": stack.queue_arn("DeliveryQueue")}]
    assert err.splitlines() == [
        "message move task started: task-1",
        "running: moved 0 of 3",
        "running: moved 2 of 3",
        "completed: moved 3 of 3",
    ]
    assert json.loads(out) == {"status": "COMPLETED", "moved": 3, "failed": 0}
    assert tasks.listings == []


@pytest.mark.usefixtures("no_wait")
def test_dlq_redrive_on_aws_reports_a_failed_task(
    stack: StackResources, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = MoveTasks(
        [
            {
                "Status": "FAILED",
                "ApproximateNumberOfMessagesMoved": 1,
                "ApproximateNumberOfMessagesToMove": 4,
                "FailureReason": "AWS.SimpleQueueService.NonExistentQueue",
            }
        ]
    )
    monkeypatch.setattr(hookrelay_cli.target, "aws_session", tasks.session)

    code, out, err = run(capsys, "dlq", "redrive", "--queue", "events", "--stack", STACK)

    assert code == 1
    assert tasks.started == [
        {"SourceArn": stack.queue_arn("EventsDeadLetterQueue"), "DestinationArn": stack.queue_arn("EventsQueue")}
    ]
    assert json.loads(out) == {"status": "FAILED", "moved": 1, "failed": 0}
    assert err.splitlines()[-2:] == ["failed: moved 1 of 4", "error: AWS.SimpleQueueService.NonExistentQueue"]


@pytest.mark.usefixtures("no_wait")
def test_dlq_redrive_local_runs_a_message_move_task_as_on_aws(capsys: pytest.CaptureFixture[str]) -> None:
    with local_stack() as local:
        bodies = [delivery_message(str(uuid.uuid4()), 2, team_id="acme").body for _ in range(23)]
        local.send(DLQ, *bodies)
        local.send("EventsDeadLetterQueue", '{"detail": "stays"}')

        code, out, err = run(capsys, "dlq", "redrive", *local.target_arguments())

        assert code == 0, err
        assert json.loads(out) == {"status": "COMPLETED", "moved": 23, "failed": 0}
        assert err.splitlines()[0].startswith("message move task started: ")
        assert err.splitlines()[-1] == "completed: moved 23 of 23"
        (task,) = local.client("sqs").list_message_move_tasks(SourceArn=local.queue_arn(DLQ))["Results"]
        assert (task["Status"], task["DestinationArn"]) == ("COMPLETED", local.queue_arn("DeliveryQueue"))
        assert local.counts(DLQ) == (0, 0)
        assert sorted(local.drain("DeliveryQueue")) == sorted(bodies)
        assert local.counts("EventsDeadLetterQueue") == (1, 0)

        code, out, _ = run(capsys, "dlq", "redrive", "--queue", "events", *local.target_arguments())
        assert code == 0 and json.loads(out)["moved"] == 1
        assert local.drain("EventsQueue") == ['{"detail": "stays"}']


def parked_by_eventbridge(stack: StackResources) -> dict[str, str]:
    """The message attributes EventBridge gives an event it parks in the rule target's DLQ once its retry
    policy ran out (RETRY_ATTEMPTS counts the retries; EXHAUSTED_RETRY_CONDITION names the limit reached)."""
    return {
        "RULE_ARN": f"arn:aws:events:us-east-1:123456789012:rule/{STACK}-events/{STACK}-EventsRule",
        "TARGET_ARN": stack.queue_arn("EventsQueue"),
        "ERROR_CODE": "THROTTLING",
        "ERROR_MESSAGE": "The queue throttled the request.",
        "RETRY_ATTEMPTS": "185",
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
    }


def an_event_as_the_rule_sends_it(event_id: str) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "signer.done",
            "source": "hookrelay",
            "account": "123456789012",
            "time": "2026-03-02T10:15:30Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {"event": {"event_id": event_id, "event_name": "signer.done", "team_id": "acme"}},
        }
    )


@pytest.mark.usefixtures("no_wait")
def test_dlq_redrive_of_the_eventbridge_dlq_on_aws_sends_its_events_to_the_events_queue(
    stack: StackResources, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQS refuses a message move task from a DLQ that no SQS queue redrives into: none may be started.
    tasks = MoveTasks([])
    monkeypatch.setattr(hookrelay_cli.target, "aws_session", tasks.session)
    events = [an_event_as_the_rule_sends_it(str(uuid.uuid4())) for _ in range(12)]
    stack.send("EventBridgeDeadLetterQueue", *events, attributes=parked_by_eventbridge(stack))

    code, out, err = run(capsys, "dlq", "list", "--queue", "eventbridge", "--stack", STACK, "--json")
    assert code == 0, err
    assert {line["error_code"] for line in json.loads(out)["messages"]} == {"THROTTLING"}

    code, out, err = run(capsys, "dlq", "redrive", "--queue", "eventbridge", "--stack", STACK)

    assert code == 0, err
    assert json.loads(out) == {"status": "COMPLETED", "moved": 12, "failed": 0}
    assert tasks.started == []
    assert stack.counts("EventBridgeDeadLetterQueue") == (0, 0)
    redriven = stack.receive_all("EventsQueue")
    # As the rule sends them: the whole event as the body, no message attributes.
    assert sorted(message["Body"] for message in redriven) == sorted(events)
    assert [message.get("MessageAttributes") for message in redriven] == [None] * 12


def test_an_event_eventbridge_parked_is_redriven_locally_as_the_rule_sends_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with local_stack() as local:
        local.client("events").put_events(
            Entries=[
                {
                    "Source": "hookrelay",
                    "DetailType": "signer.done",
                    "Detail": json.dumps({"event": {"event_id": str(uuid.uuid4()), "event_name": "signer.done"}}),
                    "EventBusName": f"{LOCAL_STACK_NAME}-events",
                }
            ]
        )
        # What the rule put on the events queue is what EventBridge would have parked, had the send failed.
        (sent,) = local.receive_all("EventsQueue")
        assert "MessageAttributes" not in sent
        local.send("EventBridgeDeadLetterQueue", sent["Body"], attributes=parked_by_eventbridge(local))
        local.send("EventsDeadLetterQueue", '{"detail": "stays"}')

        code, out, err = run(capsys, "dlq", "redrive", "--queue", "eventbridge", *local.target_arguments())

        assert code == 0, err
        assert json.loads(out) == {"status": "COMPLETED", "moved": 1, "failed": 0}
        (redriven,) = local.receive_all("EventsQueue")
        assert redriven["Body"] == sent["Body"] and "MessageAttributes" not in redriven
        assert local.counts("EventBridgeDeadLetterQueue") == (0, 0)
        assert local.counts("EventsDeadLetterQueue") == (1, 0)


def test_dlq_list_and_show_on_the_local_stack(capsys: pytest.CaptureFixture[str]) -> None:
    with local_stack() as local:
        (message_id,) = local.send(DLQ, delivery_message("d-1", 1, team_id="acme").body)

        code, out, _ = run(capsys, "dlq", "list", "--json", *local.target_arguments())
        assert code == 0 and [line["message_id"] for line in json.loads(out)["messages"]] == [message_id]

        code, out, err = run(capsys, "dlq", "show", message_id, *local.target_arguments())
        assert code == 0 and json.loads(out)["delivery"] is None
        assert "no delivery record d-1" in err
        assert local.counts(DLQ) == (1, 0)


def test_an_unreachable_local_stack_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "dlq", "list", "--local", "--aws-endpoint", "http://127.0.0.1:9")
    assert (code, out) == (1, "")
    assert err == (
        'error: Could not connect to the endpoint URL: "http://127.0.0.1:9/" (is `hookrelay local up` running there?)\n'
    )


def test_a_redriven_message_goes_back_in_its_teams_message_group(capsys: pytest.CaptureFixture[str]) -> None:
    with local_stack() as local:
        sqs = local.client("sqs")
        body = delivery_message(str(uuid.uuid4()), 2, team_id="acme").body
        sqs.send_message(QueueUrl=local.queue_url(DLQ), MessageBody=body, MessageGroupId="acme")
        # EventBridge parks an event without a group: it goes back in the group the rule gives it.
        event = an_event_as_the_rule_sends_it(str(uuid.uuid4()))
        local.send("EventBridgeDeadLetterQueue", event, attributes=parked_by_eventbridge(local))

        for queue in ("delivery", "eventbridge"):
            code, _, err = run(capsys, "dlq", "redrive", "--queue", queue, *local.target_arguments())
            assert code == 0, err

        for source, sent in (("DeliveryQueue", body), ("EventsQueue", event)):
            (redriven,) = sqs.receive_message(
                QueueUrl=local.queue_url(source), MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
            )["Messages"]
            assert redriven["Body"] == sent
            assert redriven["Attributes"].get("MessageGroupId") == "acme", source

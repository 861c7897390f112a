"""The dead-letter queues: look at their messages without consuming them, and move them back.

Peeking receives messages with a short visibility timeout and makes them visible again at once; it
never deletes. SQS counts each peek as a receive (ApproximateReceiveCount), which does no harm on a
dead-letter queue: nothing redrives from it by count.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hookrelay import clock
from hookrelay.delivery_jobs import InvalidDeliveryMessage, Job, read_job
from hookrelay.queues import SQS_BATCH_LIMIT

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef, SendMessageBatchRequestEntryTypeDef

# How long a peeked message stays hidden if the CLI dies before making it visible again.
PEEK_VISIBILITY_SECONDS = 30
# How long a message being redriven stays hidden while it is sent to its source queue.
MOVE_VISIBILITY_SECONDS = 60
MOVE_TASK_POLL_SECONDS = 5.0
EXCERPT_CHARS = 80
_MOVE_TASK_ACTIVE = ("RUNNING", "CANCELLING")
_MAX_REPEATED_BATCHES = 3


@dataclass(frozen=True)
class DeadLetterQueue:
    """A DLQ of template.yaml and the queue its messages go back to.

    `filled_by_sqs`: SQS moved its messages there (the source queue's redrive policy), so an SQS message
    move task, the console's "Start DLQ redrive", moves them back, on AWS and in the local stack alike.
    Otherwise EventBridge sent them (the events rule target's DeadLetterConfig) to a queue that no
    queue's RedrivePolicy names, and SQS refuses a move task from it ("Source queue must be configured
    as a Dead Letter Queue."), with or without a DestinationArn: the one case left to redrive_by_copy.
    """

    logical_id: str
    source_logical_id: str
    filled_by_sqs: bool = True


DEAD_LETTER_QUEUES = {
    "delivery": DeadLetterQueue("DeliveryDeadLetterQueue", "DeliveryQueue"),
    "events": DeadLetterQueue("EventsDeadLetterQueue", "EventsQueue"),
    # Back to where the rule would have put them: its one target, the events queue. The rule sends the
    # whole event (no Input, InputPath or InputTransformer; tests/unit/test_template.py keeps it so), which
    # is the body EventBridge parks, so the body goes back as it is. Its message attributes say why the
    # rule failed (RULE_ARN, ERROR_CODE, ...) and are left behind: the rule's messages have none. Not
    # PutEvents on the bus: that would give the event a new EventBridge id and time, run every rule of the
    # bus again, and retry for a day against a target that may still be broken.
    "eventbridge": DeadLetterQueue("EventBridgeDeadLetterQueue", "EventsQueue", filled_by_sqs=False),
}
# EventBridge's reason for parking a message, among its message attributes.
_EVENTBRIDGE_ERROR_CODE = "ERROR_CODE"


class Progress:
    """One line on stderr at most every `every_seconds`, and always the last one."""

    def __init__(self, write: Callable[[str], None], every_seconds: float = 1.0):
        self._write = write
        self._every = every_seconds
        self._last: float | None = None
        self._last_line: str | None = None

    def __call__(self, line: str, final: bool = False) -> None:
        now = time.monotonic()
        due = self._last is None or now - self._last >= self._every
        if (due or final) and line != self._last_line:
            self._write(line)
            self._last, self._last_line = now, line


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    body: str
    attributes: dict[str, str]
    message_attributes: dict[str, Any]

    @classmethod
    def received(cls, message: "MessageTypeDef") -> "DeadLetter":
        return cls(
            message_id=str(message["MessageId"]),
            body=str(message["Body"]),
            attributes={str(name): value for name, value in message.get("Attributes", {}).items()},
            message_attributes=dict(message.get("MessageAttributes", {})),
        )

    @property
    def sent_at(self) -> str | None:
        sent = self.attributes.get("SentTimestamp")
        return clock.iso(clock.parse_moment(int(sent))) if sent else None  # epoch milliseconds

    @property
    def receive_count(self) -> int:
        return int(self.attributes.get("ApproximateReceiveCount", 0))

    @property
    def job(self) -> Job | None:
        """The delivery and attempt a delivery-queue message asks for; None for anything else."""
        try:
            return read_job(self.body)
        except InvalidDeliveryMessage:
            return None

    def summary(self) -> dict[str, Any]:
        """One line's worth: ids and counts, and the delivery it names or else the start of its body."""
        line: dict[str, Any] = {
            "message_id": self.message_id,
            "sent_at": self.sent_at,
            "receive_count": self.receive_count,
        }
        error_code = self.message_attributes.get(_EVENTBRIDGE_ERROR_CODE, {}).get("StringValue")
        if error_code:
            line["error_code"] = error_code
        job = self.job
        if job:
            return {**line, "delivery_id": job.delivery_id, "attempt": job.attempt}
        excerpt = " ".join(self.body.split())
        return {**line, "body": excerpt[:EXCERPT_CHARS] + ("…" if len(excerpt) > EXCERPT_CHARS else "")}

    def full(self) -> dict[str, Any]:
        try:
            body: Any = json.loads(self.body)
        except ValueError:
            body = self.body
        return {
            "message_id": self.message_id,
            "sent_at": self.sent_at,
            "receive_count": self.receive_count,
            "body": body,
            "attributes": self.attributes,
            "message_attributes": self.message_attributes,
        }


def visible_count(sqs: "SQSClient", queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def peek(
    sqs: "SQSClient",
    queue_url: str,
    limit: int | None = None,
    stop: Callable[[DeadLetter], bool] = lambda _: False,
    progress: Progress | None = None,
) -> list[DeadLetter]:
    """The queue's messages (at most `limit`), all left on it; stops early at one that `stop` accepts.

    Reads as many as the queue held when asked: messages hidden by a consumer, or arriving meanwhile,
    may be missed.
    """
    wanted = visible_count(sqs, queue_url)
    if limit is not None:
        wanted = min(wanted, limit)
    held: dict[str, str] = {}  # message id → latest receipt handle
    seen: list[DeadLetter] = []
    repeats = 0  # batches of messages already seen (hidden long enough to come back)
    try:
        while len(seen) < wanted and repeats < _MAX_REPEATED_BATCHES:
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(SQS_BATCH_LIMIT, wanted - len(seen)),
                VisibilityTimeout=PEEK_VISIBILITY_SECONDS,
                # Long polling asks every SQS server, so a short read does not end the scan early.
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            new = [DeadLetter.received(message) for message in messages if message["MessageId"] not in held]
            held.update({message["MessageId"]: message["ReceiptHandle"] for message in messages})
            if not messages:
                break
            repeats = 0 if new else repeats + 1
            seen.extend(new)
            if progress and new:
                progress(f"read {len(seen)} of ~{wanted} messages")
            if any(stop(letter) for letter in new):
                break
    finally:
        _make_visible(sqs, queue_url, list(held.values()))
    if progress:
        progress(f"read {len(seen)} of ~{wanted} messages", final=True)
    return seen


def find(sqs: "SQSClient", queue_url: str, message_id: str, progress: Progress | None = None) -> DeadLetter | None:
    """One message by id; SQS has no such lookup, so this peeks through the queue until it appears."""
    letters = peek(sqs, queue_url, stop=lambda letter: letter.message_id == message_id, progress=progress)
    return next((letter for letter in letters if letter.message_id == message_id), None)


def _make_visible(sqs: "SQSClient", queue_url: str, receipt_handles: list[str]) -> None:
    for start in range(0, len(receipt_handles), SQS_BATCH_LIMIT):
        batch = receipt_handles[start : start + SQS_BATCH_LIMIT]
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0} for i, handle in enumerate(batch)],
        )


def message_group(message: "MessageTypeDef") -> str | None:
    """The team a copied message goes back in (its fair-queue tenant): the group it had, or for an
    event EventBridge parked (sent without one, as far as AWS documents), the group the rule gives it:
    the event's team, at the path of template.yaml's SqsParameters ($.detail.event.team_id)."""
    if group := message.get("Attributes", {}).get("MessageGroupId"):
        return str(group)
    try:
        team = json.loads(message["Body"])["detail"]["event"]["team_id"]
    except (ValueError, KeyError, TypeError):
        return None
    return team if isinstance(team, str) else None


@dataclass(frozen=True)
class RedriveResult:
    status: str
    moved: int
    failed: int = 0
    reason: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "COMPLETED" and not self.failed


def redrive_with_move_task(
    sqs: "SQSClient",
    dlq_arn: str,
    source_arn: str,
    progress: Progress,
    *,
    poll_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RedriveResult:
    """An SQS message move task from the DLQ to its source queue, followed until it ends.

    The destination is always given: a message sent to the DLQ directly (a test, a producer) has no
    source queue to go back to, and SQS fails a task without a DestinationArn on it.
    """
    poll_seconds = MOVE_TASK_POLL_SECONDS if poll_seconds is None else poll_seconds
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=source_arn)["TaskHandle"]
    progress(f"message move task started: {handle}")
    while True:
        sleep(poll_seconds)
        # The most recent task first; only a running one still carries its handle.
        tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1).get("Results", [])
        if not tasks:
            return RedriveResult("FAILED", 0, reason=f"the move task {handle} is not listed")
        task = tasks[0]
        if task.get("TaskHandle", handle) != handle:
            return RedriveResult("FAILED", 0, reason=f"another move task started meanwhile: {task['TaskHandle']}")
        status, moved = str(task["Status"]), int(task.get("ApproximateNumberOfMessagesMoved", 0))
        to_move = task.get("ApproximateNumberOfMessagesToMove")
        active = status in _MOVE_TASK_ACTIVE
        progress(f"{status.lower()}: moved {moved} of {to_move if to_move is not None else '?'}", final=not active)
        if not active:
            return RedriveResult(status, moved, reason=task.get("FailureReason"))


def redrive_by_copy(sqs: "SQSClient", dlq_url: str, source_url: str, progress: Progress) -> RedriveResult:
    """Receive each message, send its body to the source queue in its team's message group (see
    message_group) as the rule sends it (EventBridge's reasons, its message attributes, stay behind),
    and delete it from the DLQ once the send succeeded. Moves what the DLQ held when asked.

    Only for the DLQ that EventBridge fills, from which SQS refuses a message move task. A message SQS
    refuses to take stays on the DLQ (visible again after MOVE_VISIBILITY_SECONDS).
    """
    to_move = visible_count(sqs, dlq_url)
    moved = failed = 0
    while moved + failed < to_move:
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=min(SQS_BATCH_LIMIT, to_move - moved - failed),
            VisibilityTimeout=MOVE_VISIBILITY_SECONDS,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["MessageGroupId"],
        ).get("Messages", [])
        if not messages:
            break
        entries: list[SendMessageBatchRequestEntryTypeDef] = []
        for i, message in enumerate(messages):
            entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(i), "MessageBody": message["Body"]}
            if group := message_group(message):
                entry["MessageGroupId"] = group
            entries.append(entry)
        sent = {
            entry["Id"] for entry in sqs.send_message_batch(QueueUrl=source_url, Entries=entries).get("Successful", [])
        }
        if sent:
            sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]}
                    for i, message in enumerate(messages)
                    if str(i) in sent
                ],
            )
        moved += len(sent)
        failed += len(messages) - len(sent)
        progress(f"moved {moved} of {to_move}" + (f" ({failed} refused by SQS, left on the DLQ)" if failed else ""))
    progress(f"moved {moved} of {to_move}", final=True)
    return RedriveResult("COMPLETED", moved, failed)

"""Background work of the local stack besides the HTTP gateway: the queue pollers and the schedule
timers (the sweeper). Each is a Worker with start(), stop() and join(), built from the stack's template.
"""

import contextlib
import logging
import random
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from hookrelay_cli.local.functions import Function
from hookrelay_cli.local.knobs import share

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

# Named apart from "hookrelay": powertools filters records of loggers whose name contains it.
_log = logging.getLogger("local.workers")
# Local only: the share of messages (0 to 1) a poller also hands to a second invocation, as SQS
# standard queues now and then deliver a message twice.
DUPLICATE_RATE_VARIABLE = "HOOKRELAY_LOCAL_SQS_DUPLICATE_RATE"
# While a batching window gathers a batch, how often a poller asks its queue for more.
_GATHERING_POLL_SECONDS = 0.05


def duplicate_rate(text: str) -> float:
    return share(DUPLICATE_RATE_VARIABLE, text)


class Worker(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None:
        """Ask it to stop (returns at once; `join` waits for it)."""

    def join(self, timeout: float | None = None) -> None: ...


def _lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType"),
        }
        for name, value in attributes.items()
    }


class _FunctionThread:
    """Runs `_run` on a daemon thread for one function, from start() until stop()."""

    def __init__(self, function: Function, kind: str):
        self._function = function
        self._stopping = threading.Event()
        name = f"{kind}-{function.spec.logical_id}" + (f"-{function.container}" if function.container else "")
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def function_id(self) -> str:
        return self._function.spec.logical_id

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        raise NotImplementedError


class QueuePoller(_FunctionThread):
    """An SQS event source mapping: receive a batch, invoke the function, delete what succeeded.

    Failed records stay on the queue and come back after the visibility timeout, so SQS's redrive
    policy moves a message that keeps failing to its DLQ, as on AWS. `failed_visibility_seconds`
    (local only) shortens that wait for failed records.

    As a standard queue does, it hands records over in no set order (each batch shuffled) and, with
    `duplicate_rate`, some twice: such a message, at its first receive, is made visible again at once
    and not deleted, so that another invocation (this poller's next, or another poller's) gets it too.

    With a `batching_window_seconds` (MaximumBatchingWindowInSeconds), a batch that is not full is
    gathered until the window, begun when the poller's previous invocation ended, has passed, as AWS
    documents it. AWS may also wait up to 20 s on a queue with very low traffic; that is not emulated.
    """

    def __init__(
        self,
        sqs: "SQSClient",
        *,
        queue_url: str,
        queue_arn: str,
        function: Function,
        batch_size: int,
        report_batch_item_failures: bool,
        failed_visibility_seconds: int | None,
        duplicate_rate: float = 0.0,
        reserved: threading.Semaphore | None = None,
        batching_window_seconds: float = 0,
    ):
        super().__init__(function, "poll")
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._batch_size = batch_size
        self._batching_window = batching_window_seconds
        self._report_failures = report_batch_item_failures
        self._failed_visibility = failed_visibility_seconds
        self._duplicate_rate = duplicate_rate
        # Shared by the pollers of the function's event sources: a free unit of its reserved concurrency
        # is what lets one receive (Lambda's pollers do not take a batch they cannot invoke on).
        self._reserved = reserved or contextlib.nullcontext()
        self._random = random.Random()  # noqa: S311 - SQS's order and duplicates, not a secret

    @property
    def queue_url(self) -> str:
        return self._queue_url

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once(wait_seconds=1)
            except Exception:
                _log.exception("polling %s failed", self._queue_url)
                self._stopping.wait(1)

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive and process one batch; returns how many messages it received."""
        with self._reserved:
            window_ends = time.monotonic() + self._batching_window
            messages = self._receive(self._batch_size, wait_seconds)
            while messages and len(messages) < self._batch_size and time.monotonic() < window_ends:
                if self._stopping.wait(_GATHERING_POLL_SECONDS):
                    break
                messages += self._receive(self._batch_size - len(messages), 0)
            # Received as the stack stops: left to come back after their visibility timeout.
            if messages and not self._stopping.is_set():
                self._process(messages)
            return len(messages)

    def _receive(self, count: int, wait_seconds: int) -> "list[MessageTypeDef]":
        return self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def _process(self, messages: "list[MessageTypeDef]") -> None:
        self._random.shuffle(messages)
        twice = self._hand_out_again(messages)
        region = self._queue_arn.split(":")[3]
        event = {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": message.get("Attributes", {}),
                    "messageAttributes": _lambda_message_attributes(message.get("MessageAttributes", {})),
                    "md5OfBody": message["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self._queue_arn,
                    "awsRegion": region,
                }
                for message in messages
            ]
        }
        failed_ids = self._failed_message_ids(event, messages)
        succeeded = [message for message in messages if message["MessageId"] not in failed_ids | twice]
        if succeeded:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(succeeded)],
            )
        if failed_ids and self._failed_visibility is not None:
            self._sqs.change_message_visibility_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self._failed_visibility}
                    for i, m in enumerate(messages)
                    if m["MessageId"] in failed_ids
                ],
            )

    def _hand_out_again(self, messages: "list[MessageTypeDef]") -> set[str]:
        """Ids of the messages chosen to reach a second invocation, made visible again at once.

        Only at a message's first receive: a duplicate must not bring a message that succeeds
        closer to its DLQ.
        """
        chosen = [
            message
            for message in messages
            if message.get("Attributes", {}).get("ApproximateReceiveCount") == "1"
            and self._random.random() < self._duplicate_rate
        ]
        if chosen:
            self._sqs.change_message_visibility_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(chosen)
                ],
            )
        return {message["MessageId"] for message in chosen}

    def _failed_message_ids(self, event: dict[str, Any], messages: "list[MessageTypeDef]") -> set[str]:
        every_id = {message["MessageId"] for message in messages}
        try:
            result = self._function.invoke(event)
        except Exception:
            # An invocation error fails the whole batch, as with Lambda.
            if self._stopping.is_set():
                _log.info("%s stopped during a batch; it returns to its queue", self._function.spec.logical_id)
            else:
                _log.exception("%s failed on a batch of %d", self._function.spec.logical_id, len(messages))
            return every_id
        if not self._report_failures:
            return set()
        failures = (result or {}).get("batchItemFailures") or []
        return {str(failure.get("itemIdentifier")) for failure in failures} & every_id


class ScheduleTimer(_FunctionThread):
    """An EventBridge schedule: invokes the function with a scheduled event every interval."""

    def __init__(self, function: Function, interval_seconds: float, region: str):
        super().__init__(function, "timer")
        self._interval = interval_seconds
        self._region = region

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.fire()
            except Exception:
                if not self._stopping.is_set():  # else its container was ended by the stop
                    _log.exception("%s failed on its schedule", self._function.spec.logical_id)

    def fire(self) -> Any:
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "local",
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._region,
            "resources": [],
            "detail": {},
        }
        return self._function.invoke(event)

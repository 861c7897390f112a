"""SQS message move tasks (StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask) in the
local stack's moto, which has none, as the SQS API reference and SQS's recorded answers define them:
the console's "Start DLQ redrive" and `hookrelay dlq redrive` run them on AWS, and now locally too.

- The source must be a dead-letter queue: named by at least one queue's RedrivePolicy. Otherwise SQS
  answers InvalidParameterValue "Source queue must be configured as a Dead Letter Queue." (an
  EventBridge target's DLQ that no queue names is one such). A source or destination that does not
  exist is ResourceNotFoundException (404).
- Without a DestinationArn, each message goes back to the queue whose redrive policy moved it to the
  DLQ (SQS records that queue on the message, DeadLetterQueueSourceArn). A message that no redrive
  moved there (sent to the DLQ directly, or by EventBridge) has no such queue: the task fails on it,
  leaving it where it is, and a DestinationArn is what moves it.
- A moved message is sent anew (new message id, new retention period, receive count 0, as SQS says)
  with its body, message attributes, MessageGroupId and AWSTraceHeader; then it is deleted from the DLQ.
- MaxNumberOfMessagesPerSecond (1 to 500) spaces the moves; without it they go as fast as they can.
- One active task (RUNNING or CANCELLING) per source; another start is InvalidParameterValue.
- Statuses RUNNING, COMPLETED, CANCELLING, CANCELLED, FAILED; ApproximateNumberOfMessagesToMove is what
  the DLQ held at the start, and the task completes once it moved that many or the DLQ has none left;
  a destination that disappears fails it with FailureReason AWS.SimpleQueueService.NonExistentQueue.
- Cancel stops a RUNNING task before its next message (CANCELLING until then, then CANCELLED; what was
  moved stays moved); any other task, or an unknown one, is ResourceNotFoundException "Task does not
  exist.", and a handle that is not one is InvalidParameterValue.
- The listing is the source's most recent tasks, newest first (MaxResults 1 to 10, default 1). Only a
  running task shows its TaskHandle; DestinationArn and MaxNumberOfMessagesPerSecond show only when
  given, FailureReason only when FAILED.

Each task runs on a thread of the process that serves SQS (the stack's in-process moto server, or
`mock_aws`), through moto's own receive, send and delete. Hooks on moto's SQS models and responses,
installed with the other moto extensions (LocalStack.create).
"""

import base64
import binascii
import contextvars
import functools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from moto.core.responses import ActionResult
from moto.sqs.exceptions import InvalidParameterValue, QueueDoesNotExist, SQSException
from moto.sqs.models import Message, Queue, SQSBackend
from moto.sqs.responses import SQSResponse

SOURCE_NOT_A_DLQ = "Source queue must be configured as a Dead Letter Queue."
ALREADY_RUNNING = (
    "There is already a task running. Only one active task is allowed for a source queue arn at a given time."
)
NO_SUCH_TASK = "Task does not exist."
INVALID_TASK_HANDLE = "Value for parameter TaskHandle is invalid."
NON_EXISTENT_QUEUE = "AWS.SimpleQueueService.NonExistentQueue"
MAX_MESSAGES_PER_SECOND = 500
MAX_LISTED_TASKS = 10
# How long a message being moved stays hidden on the DLQ, should its move stop half-way.
MOVE_VISIBILITY_SECONDS = 30
# A task that finds no message to move (all in flight, say) looks again this often, this many times,
# before it takes the DLQ as empty. With no MaxNumberOfMessagesPerSecond it moves without pausing.
LOOK_AGAIN_SECONDS = 0.05
EMPTY_LOOKS = 3
MOVED = "moved"
_TASKS_ATTRIBUTE = "_hookrelay_message_move_tasks"
_SOURCE_ATTRIBUTE = "dead_letter_queue_source_arn"


class MoveTaskStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


_ACTIVE = (MoveTaskStatus.RUNNING, MoveTaskStatus.CANCELLING)


class _ResourceNotFound(SQSException):
    code = "ResourceNotFoundException"


Answer = ActionResult | tuple[bytes | str, dict[str, Any]]


def _not_found_is_404(handler: Callable[[SQSResponse], ActionResult]) -> Callable[[SQSResponse], Answer]:
    """SQS answers ResourceNotFoundException with 404; botocore's model, which moto's serializer reads
    the status from, names none (so 400)."""

    @functools.wraps(handler)
    def answer(self: SQSResponse) -> Answer:
        try:
            return handler(self)
        except _ResourceNotFound as error:
            _, headers, body = self.serialized(ActionResult(error))
            headers["status"] = HTTPStatus.NOT_FOUND
            return body, headers

    return answer


def _not_found(parameter: str) -> _ResourceNotFound:
    return _ResourceNotFound(f"The resource that you specified for the {parameter} parameter doesn't exist.")


@dataclass
class MoveTask:
    task_id: str
    source_arn: str
    destination_arn: str | None
    max_per_second: int | None
    started_ms: int
    to_move: int
    moved: int = 0
    status: MoveTaskStatus = MoveTaskStatus.RUNNING
    failure_reason: str | None = None

    @property
    def handle(self) -> str:
        return _encode_handle(self.task_id, self.source_arn)

    def listed(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Status": str(self.status),
            "SourceArn": self.source_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_ms,
        }
        if self.status is MoveTaskStatus.RUNNING:
            entry["TaskHandle"] = self.handle
        if self.destination_arn is not None:
            entry["DestinationArn"] = self.destination_arn
        if self.max_per_second is not None:
            entry["MaxNumberOfMessagesPerSecond"] = self.max_per_second
        if self.failure_reason is not None:
            entry["FailureReason"] = self.failure_reason
        return entry


class _Tasks:
    """A backend's tasks, newest last, under one lock (moto's server answers on many threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.all: list[MoveTask] = []

    @staticmethod
    def of(backend: SQSBackend) -> "_Tasks":
        # On the backend, so that moto's reset (a new stack, a new mock_aws) forgets them with its queues.
        tasks: _Tasks | None = getattr(backend, _TASKS_ATTRIBUTE, None)
        if tasks is None:
            tasks = _Tasks()
            setattr(backend, _TASKS_ATTRIBUTE, tasks)
        return tasks


def _encode_handle(task_id: str, source_arn: str) -> str:
    return base64.b64encode(json.dumps({"taskId": task_id, "sourceArn": source_arn}).encode()).decode()


def _decode_handle(handle: str) -> tuple[str, str]:
    try:
        decoded = json.loads(base64.b64decode(handle, validate=True))
        return str(decoded["taskId"]), str(decoded["sourceArn"])
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise InvalidParameterValue(INVALID_TASK_HANDLE) from error


def _queue_by_arn(backend: SQSBackend, arn: str) -> Queue | None:
    return next((queue for queue in backend.queues.values() if queue.queue_arn == arn), None)


def _is_dead_letter_queue(backend: SQSBackend, queue: Queue) -> bool:
    return any(source.dead_letter_queue is queue for source in backend.queues.values())


def _runs(task: MoveTask, tasks: _Tasks, backend: SQSBackend, source: Queue) -> None:
    """Move the DLQ's messages one at a time until `to_move` went, the DLQ is empty, or the task stops."""
    pause = 1.0 / task.max_per_second if task.max_per_second else 0.0
    empty_looks = 0
    while True:
        with tasks.lock:
            if task.status is MoveTaskStatus.CANCELLING:
                task.status = MoveTaskStatus.CANCELLED
                return
            if task.moved >= task.to_move or empty_looks >= EMPTY_LOOKS:
                task.status = MoveTaskStatus.COMPLETED
                return
        try:
            outcome = _move_one(backend, source, task.destination_arn)
        except SQSException as error:  # a queue deleted meanwhile (NON_EXISTENT_QUEUE), a message refused
            outcome = error.code
        with tasks.lock:
            if outcome is None:
                empty_looks += 1
            elif outcome == MOVED:
                task.moved += 1
                empty_looks = 0
            else:
                task.status, task.failure_reason = MoveTaskStatus.FAILED, outcome
                return
        time.sleep(pause if outcome == MOVED else LOOK_AGAIN_SECONDS)


def _move_one(backend: SQSBackend, source: Queue, destination_arn: str | None) -> str | None:
    """Move the DLQ's oldest visible message: MOVED, None when there is none, else why it cannot move
    (it stays on the DLQ, visible again)."""
    if source.name not in backend.queues:
        raise QueueDoesNotExist()
    received = backend.receive_message(source.name, 1, 0, MOVE_VISIBILITY_SECONDS, ["All"])
    if not received:
        return None
    (message,) = received
    target_arn = destination_arn or getattr(message, _SOURCE_ATTRIBUTE, None)
    destination = _queue_by_arn(backend, target_arn) if target_arn else None
    if destination is None:
        backend.change_message_visibility(source.name, str(message.receipt_handle), 0)
        if target_arn:
            return NON_EXISTENT_QUEUE
        return (
            f"The message {message.id} was not moved to the dead-letter queue by a redrive policy, so it has"
            " no source queue to go back to: give a DestinationArn."
        )
    backend.send_message(
        destination.name,
        message.body,
        message_attributes=message.message_attributes,
        group_id=message.group_id,
        deduplication_id=message.deduplication_id if destination.fifo_queue else None,
        system_attributes=message.system_attributes,
    )
    backend.delete_message(source.name, str(message.receipt_handle))
    return MOVED


@_not_found_is_404
def _start_message_move_task(self: SQSResponse) -> ActionResult:
    backend = self.sqs_backend
    source_arn = str(self._get_param("SourceArn"))
    destination_arn = self._get_param("DestinationArn")
    max_per_second = self._get_param("MaxNumberOfMessagesPerSecond")
    source = _queue_by_arn(backend, source_arn)
    if source is None:
        raise _not_found("SourceArn")
    if not _is_dead_letter_queue(backend, source):
        raise InvalidParameterValue(SOURCE_NOT_A_DLQ)
    if destination_arn is not None and _queue_by_arn(backend, destination_arn) is None:
        raise _not_found("DestinationArn")
    if max_per_second is not None and not 1 <= int(max_per_second) <= MAX_MESSAGES_PER_SECOND:
        raise InvalidParameterValue(
            f"Value {max_per_second} for parameter MaxNumberOfMessagesPerSecond is invalid."
            f" Reason: Must be between 1 and {MAX_MESSAGES_PER_SECOND}, if provided."
        )
    tasks = _Tasks.of(backend)
    with tasks.lock:
        if any(task.source_arn == source_arn and task.status in _ACTIVE for task in tasks.all):
            raise InvalidParameterValue(ALREADY_RUNNING)
        task = MoveTask(
            task_id=str(uuid.uuid4()),
            source_arn=source_arn,
            destination_arn=destination_arn,
            max_per_second=int(max_per_second) if max_per_second is not None else None,
            started_ms=int(time.time() * 1000),
            to_move=len(source.messages),
        )
        tasks.all.append(task)
    threading.Thread(
        target=_runs, args=(task, tasks, backend, source), name=f"move-task-{task.task_id}", daemon=True
    ).start()
    return ActionResult({"TaskHandle": task.handle})


@_not_found_is_404
def _list_message_move_tasks(self: SQSResponse) -> ActionResult:
    backend = self.sqs_backend
    source_arn = str(self._get_param("SourceArn"))
    max_results = self._get_param("MaxResults")
    if _queue_by_arn(backend, source_arn) is None:
        raise _not_found("SourceArn")
    limit = 1 if max_results is None else int(max_results)
    if not 1 <= limit <= MAX_LISTED_TASKS:
        raise InvalidParameterValue(
            f"Value {limit} for parameter MaxResults is invalid."
            f" Reason: You must enter a number that's between 1 and {MAX_LISTED_TASKS}."
        )
    tasks = _Tasks.of(backend)
    with tasks.lock:
        newest_first = [task.listed() for task in reversed(tasks.all) if task.source_arn == source_arn]
    return ActionResult({"Results": newest_first[:limit]})


@_not_found_is_404
def _cancel_message_move_task(self: SQSResponse) -> ActionResult:
    backend = self.sqs_backend
    task_id, source_arn = _decode_handle(str(self._get_param("TaskHandle")))
    if _queue_by_arn(backend, source_arn) is None:
        raise _not_found("SourceArn")
    tasks = _Tasks.of(backend)
    with tasks.lock:
        task = next((task for task in tasks.all if task.task_id == task_id), None)
        if task is None or task.status is not MoveTaskStatus.RUNNING:
            raise _ResourceNotFound(NO_SUCH_TASK)
        task.status = MoveTaskStatus.CANCELLING
        return ActionResult({"ApproximateNumberOfMessagesMoved": task.moved})


# The queue a receive looks at, for add_message to know which redrive policy moves a message to its DLQ.
_receiving_from: contextvars.ContextVar[Queue | None] = contextvars.ContextVar("receiving_from", default=None)


@functools.cache  # installed once per process
def enable_message_move_tasks() -> None:
    """Install message move tasks in this process's moto (once)."""
    moto_receive, moto_add = SQSBackend.receive_message, Queue.add_message

    def receive_message(self: SQSBackend, queue_name: str, *arguments: Any, **keywords: Any) -> list[Message]:
        reset = _receiving_from.set(self.queues.get(queue_name))
        try:
            return moto_receive(self, queue_name, *arguments, **keywords)
        finally:
            _receiving_from.reset(reset)

    def add_message(self: Queue, message: Message) -> None:
        source = _receiving_from.get()
        if source is not None and source.dead_letter_queue is self:
            setattr(message, _SOURCE_ATTRIBUTE, source.queue_arn)
        moto_add(self, message)

    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
    Queue.add_message = add_message  # type: ignore[method-assign]
    SQSResponse.start_message_move_task = _start_message_move_task  # type: ignore[attr-defined]
    SQSResponse.list_message_move_tasks = _list_message_move_tasks  # type: ignore[attr-defined]
    SQSResponse.cancel_message_move_task = _cancel_message_move_task  # type: ignore[attr-defined]

"""Local only: AWS faults injected at the botocore client, in every process of the stack that installs
them (each container at its start, when HOOKRELAY_LOCAL_FAULTS names a file, and the caller's own
process), for the crash-safety tests: DynamoDB and SQS throttling, SendMessageBatch entries refused.

The file holds which faults to inject and what became of each; the processes share it under a lock,
so that "every n-th request" counts the requests of all of them.
"""

import fcntl
import io
import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.hooks import BaseEventHooks

FAULTS_VARIABLE = "HOOKRELAY_LOCAL_FAULTS"

# Throttling answers as the services give them (JSON protocol; SQS also names its query-compatible
# error code in a header). Every code here is one botocore's retry modes treat as throttling.
THROTTLES: dict[str, list[tuple[dict[str, str], dict[str, str]]]] = {
    "dynamodb": [
        (
            {},
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was exceeded.",
            },
        ),
        (
            {},
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                "message": "Rate of requests exceeds the allowed throughput.",
            },
        ),
    ],
    "sqs": [
        (
            {"x-amzn-query-error": "RequestThrottled;Sender"},
            {"__type": "com.amazonaws.sqs#RequestThrottled", "message": "Request is throttled."},
        ),
        ({}, {"__type": "com.amazonaws.sqs#ThrottlingException", "message": "Rate exceeded."}),
    ],
}


class _Body(io.BytesIO):
    """The raw body of an injected answer, as botocore reads one (`stream()`)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        while chunk := self.read(65536):
            yield chunk


@dataclass(frozen=True)
class Throttled:
    """One attempt of an AWS call (amz-sdk-invocation-id, amz-sdk-request's attempt and max)."""

    service: str
    operation: str
    invocation: str
    attempt: int
    max_attempts: int


@dataclass
class _State:
    """What the file holds."""

    every: int = 0
    budget: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    doomed_operations: list[list[str]] = field(default_factory=list)
    doomed: list[str] = field(default_factory=list)
    refusals_left: int = 0
    throttled: list[list[Any]] = field(default_factory=list)
    got_through: list[str] = field(default_factory=list)  # invocation ids with an attempt that reached moto
    refused: list[str] = field(default_factory=list)  # bodies of refused entries
    accepted: list[list[str]] = field(default_factory=list)  # [queue url, body] SendMessageBatch took
    # [queue url, body, ApproximateReceiveCount, receipt handle]
    received: list[list[Any]] = field(default_factory=list)
    visibility_changes: list[list[Any]] = field(default_factory=list)  # [queue url, receipt handle, seconds]

    def throttles(self, call: Throttled) -> bool:
        """Whether this attempt of a call is throttled (counted against the budget if so)."""
        if call.invocation in self.doomed:
            return True
        if call.attempt == 1 and [call.service, call.operation] in self.doomed_operations:
            self.doomed_operations.remove([call.service, call.operation])
            self.doomed.append(call.invocation)
            return True
        if not self.every or call.attempt >= call.max_attempts or self.budget.get(call.service, 0) <= 0:
            return False
        self.calls[call.service] = self.calls.get(call.service, 0) + 1
        if self.calls[call.service] % self.every:
            return False
        self.budget[call.service] -= 1
        return True


def _header(request: AWSPreparedRequest, name: str) -> str:
    value = request.headers.get(name, "")
    return value.decode() if isinstance(value, bytes) else str(value)


class Faults:
    """The faults of the file at `path` (created empty if missing), and what became of each.

    - `throttle_every(n, budget)`: every n-th DynamoDB and SQS request (per service, `budget` each) is
      answered with a throttling error without reaching moto; never a call's last attempt, so
      botocore's retries always have a chance.
    - `exhaust_next(service, operation)`: the next such call is throttled on every attempt, so the
      error reaches hookrelay.
    - `refuse_entries(n)`: n SendMessageBatch calls answer one of their entries as failed (a
      partial failure, SenderFault false) and do not enqueue it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    @contextmanager
    def _state(self) -> Iterator[_State]:
        with self.path.open("r+", encoding="utf-8") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            text = file.read()
            state = _State(**json.loads(text)) if text else _State()
            yield state
            file.seek(0)
            file.truncate()
            file.write(json.dumps(asdict(state)))
            file.flush()
            os.fsync(file.fileno())

    def install(self, events: BaseEventHooks) -> None:
        events.register_first("before-send", self._before_send)
        events.register("before-parameter-build.sqs.SendMessageBatch", self._maybe_refuse_an_entry)
        events.register("before-parameter-build.sqs.ReceiveMessage", self._remember_queue)
        events.register("after-call.sqs.SendMessageBatch", self._after_send_batch)
        events.register("after-call.sqs.ReceiveMessage", self._after_receive)
        events.register("before-parameter-build.sqs.ChangeMessageVisibilityBatch", self._remember_visibility)

    def throttle_every(self, every: int, budget: int) -> None:
        with self._state() as state:
            state.every, state.budget = every, dict.fromkeys(THROTTLES, budget)

    def exhaust_next(self, service: str, operation: str) -> None:
        with self._state() as state:
            state.doomed_operations.append([service, operation])

    def refuse_entries(self, count: int) -> None:
        with self._state() as state:
            state.refusals_left = count

    def stop(self) -> None:
        with self._state() as state:
            state.every, state.doomed_operations, state.refusals_left = 0, [], 0

    # -> AWSResponse | None (botocore's stubs type every handler as returning None; a before-send
    # handler's answer is taken instead of sending the request).
    def _before_send(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> Any:
        service, operation = event_name.split(".")[1:]
        if service not in THROTTLES:
            return None
        invocation = _header(request, "amz-sdk-invocation-id")
        progress = dict(part.strip().split("=") for part in _header(request, "amz-sdk-request").split(";"))
        call = Throttled(service, operation, invocation, int(progress["attempt"]), int(progress["max"]))
        with self._state() as state:
            if not state.throttles(call):
                if any(fault[2] == invocation for fault in state.throttled):  # a retry, not every request
                    state.got_through.append(invocation)
                return None
            state.throttled.append(list(astuple(call)))
            headers, error = THROTTLES[service][len(state.throttled) % len(THROTTLES[service])]
        return AWSResponse(
            request.url,
            400,
            # AWSResponse takes any mapping (it makes a HeadersDict of it); the stubs say HTTPHeaders.
            {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "throttled", **headers},  # type: ignore[arg-type]
            _Body(json.dumps(error).encode()),
        )

    def _maybe_refuse_an_entry(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        entries = params.get("Entries", [])
        with self._state() as state:
            if state.refusals_left > 0 and len(entries) > 1:
                state.refusals_left -= 1
                context["refused"] = entries.pop()
        context["queue_url"], context["entries"] = params["QueueUrl"], entries

    def _after_send_batch(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        refused = context.pop("refused", None)
        with self._state() as state:
            if "Error" in parsed:  # the whole call failed (nothing was enqueued)
                state.refusals_left += 1 if refused else 0
                return
            failed = {failure["Id"] for failure in parsed.get("Failed", [])}
            for entry in context["entries"]:
                if entry["Id"] not in failed:
                    state.accepted.append([context["queue_url"], entry["MessageBody"]])
            if refused:
                state.refused.append(refused["MessageBody"])
                parsed.setdefault("Failed", []).append(
                    {"Id": refused["Id"], "SenderFault": False, "Code": "RequestThrottled", "Message": "Rate exceeded."}
                )

    def _remember_queue(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["queue_url"] = params["QueueUrl"]

    def _after_receive(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        messages = parsed.get("Messages", [])
        if not messages:
            return
        with self._state() as state:
            for message in messages:
                count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0))
                state.received.append([context["queue_url"], message["Body"], count, message["ReceiptHandle"]])

    def _remember_visibility(self, params: dict[str, Any], **_: Any) -> None:
        with self._state() as state:
            for entry in params.get("Entries", []):
                state.visibility_changes.append(
                    [params["QueueUrl"], entry["ReceiptHandle"], entry["VisibilityTimeout"]]
                )

    # --- What became of the faults -----------------------------------------------------------------

    def throttled(self) -> list[Throttled]:
        with self._state() as state:
            return [Throttled(*fault) for fault in state.throttled]

    def retried_by_botocore(self) -> list[Throttled]:
        """Throttles after which a later attempt of the same call got through."""
        with self._state() as state:
            got_through = set(state.got_through)
        return [fault for fault in self.throttled() if fault.invocation in got_through]

    def gave_up(self) -> dict[str, list[Throttled]]:
        """Calls throttled on every attempt (by invocation id): botocore raised the error to hookrelay."""
        with self._state() as state:
            got_through = set(state.got_through)
        calls: dict[str, list[Throttled]] = {}
        for fault in self.throttled():
            if fault.invocation not in got_through:
                calls.setdefault(fault.invocation, []).append(fault)
        return calls

    def refused(self) -> list[str]:
        with self._state() as state:
            return list(state.refused)

    def accepted(self, queue_url: str) -> Counter[str]:
        """Bodies SendMessageBatch enqueued on `queue_url`, each as often as it did."""
        with self._state() as state:
            return Counter(body for url, body in state.accepted if url == queue_url)

    def received(self, queue_url: str) -> list[tuple[str, int]]:
        """(body, ApproximateReceiveCount) of each message received from `queue_url`."""
        with self._state() as state:
            return [(body, count) for url, body, count, _handle in state.received if url == queue_url]

    def hidden_for(self, queue_url: str, seconds: int) -> list[str]:
        """Bodies of the received messages whose visibility timeout was then set to `seconds`."""
        with self._state() as state:
            bodies = {handle: body for url, body, _count, handle in state.received if url == queue_url}
            return [
                bodies[handle]
                for url, handle, timeout in state.visibility_changes
                if (url, timeout) == (queue_url, seconds)
            ]

    def redelivered(self, queue_url: str) -> list[str]:
        """Bodies SQS handed out again (a record failed, or a receiver died before deleting it)."""
        return [body for body, count in self.received(queue_url) if count > 1]

"""Messages to SQS, ten per SendMessageBatch call; an entry SQS refuses is sent again, never dropped.

Every message carries its team as MessageGroupId: on a standard queue that makes SQS a fair queue,
which returns quiet teams' messages first while one team holds a disproportionate share of the
consumers (README "Fair queues").
"""

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the sweeper sends messages without origins, and starts without the records module
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

    from hookrelay.records import DeliveryOrigin

SQS_BATCH_LIMIT = 10
SEND_ATTEMPTS = 5


class QueueSendError(RuntimeError):
    """Some messages could not be sent after every attempt; the caller must not acknowledge its input."""


@dataclass(frozen=True)
class Message:
    body: str
    team_id: str  # the tenant SQS's fair queues measure it against (its MessageGroupId)
    delay_seconds: int = 0


def delivery_message(
    delivery_id: str,
    attempt: int,
    *,
    team_id: str,
    delay_seconds: int = 0,
    origin: "DeliveryOrigin | None" = None,
    slot_at: str | None = None,
) -> Message:
    """A message asking for attempt `attempt` of a delivery of team `team_id`; `origin`: what the first
    attempt records the delivery with, given while no record exists yet; `slot_at`: the rate-limit slot
    it waits for."""
    body: dict[str, object] = {"delivery_id": delivery_id, "attempt": attempt}
    if slot_at:
        body["slot_at"] = slot_at
    if origin:
        body["origin"] = dataclasses.asdict(origin)
    return Message(json.dumps(body), team_id, delay_seconds)


class Queue:
    def __init__(self, sqs_client: "SQSClient", queue_url: str, sleep: Callable[[float], None] = time.sleep):
        self._sqs = sqs_client
        self._url = queue_url
        self._sleep = sleep

    def send(self, messages: Sequence[Message]) -> None:
        for start in range(0, len(messages), SQS_BATCH_LIMIT):
            self._send_batch(messages[start : start + SQS_BATCH_LIMIT])

    def _send_batch(self, batch: Sequence[Message]) -> None:
        pending = {str(index): message for index, message in enumerate(batch)}
        for attempt in range(SEND_ATTEMPTS):
            if attempt:
                self._sleep(0.05 * 2**attempt)
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {
                    "Id": entry_id,
                    "MessageBody": message.body,
                    "DelaySeconds": message.delay_seconds,
                    "MessageGroupId": message.team_id,
                }
                for entry_id, message in pending.items()
            ]
            response = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
            failed = response.get("Failed", [])
            unretryable = [failure for failure in failed if failure.get("SenderFault")]
            if unretryable:
                raise QueueSendError(f"SQS refused {len(unretryable)} message(s): {unretryable[0].get('Message')}")
            pending = {failure["Id"]: pending[failure["Id"]] for failure in failed}
            if not pending:
                return
        raise QueueSendError(f"{len(pending)} message(s) not accepted by SQS after {SEND_ATTEMPTS} attempts")

import json
from collections.abc import Collection
from typing import TYPE_CHECKING, cast

import pytest

from hookrelay.queues import Message, Queue, QueueSendError, delivery_message

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class FlakySqs:
    """Refuses the listed entry ids on the first call that carries them."""

    def __init__(self, refuse_once: Collection[str] = frozenset(), sender_fault: bool = False) -> None:
        self.calls: list[list[dict[str, object]]] = []
        self.refuse_once = set(refuse_once)
        self.sender_fault = sender_fault

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, object]]) -> dict[str, object]:
        self.calls.append(Entries)
        failed = [
            {"Id": entry["Id"], "SenderFault": self.sender_fault, "Code": "x", "Message": "refused"}
            for entry in Entries
            if entry["Id"] in self.refuse_once
        ]
        self.refuse_once -= {str(entry["Id"]) for entry in Entries}
        return {"Successful": [], "Failed": failed}


def test_sends_ten_per_call_and_resends_refused_entries() -> None:
    sqs = FlakySqs(refuse_once={"3", "7"})
    Queue(cast("SQSClient", sqs), "url", sleep=lambda _: None).send(
        [delivery_message(f"d{i}", 1, team_id="acme") for i in range(25)]
    )
    assert [len(call) for call in sqs.calls] == [10, 2, 10, 5]
    assert [json.loads(str(entry["MessageBody"]))["delivery_id"] for entry in sqs.calls[1]] == ["d3", "d7"]


def test_a_message_sqs_will_never_take_is_an_error_not_a_loss() -> None:
    with pytest.raises(QueueSendError, match="refused"):
        Queue(cast("SQSClient", FlakySqs(refuse_once={"0"}, sender_fault=True)), "url").send([Message("x", "acme")])


def test_gives_up_loudly_after_every_attempt() -> None:
    class AlwaysRefuses(FlakySqs):
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, object]]) -> dict[str, object]:
            return {"Failed": [{"Id": e["Id"], "SenderFault": False} for e in Entries]}

    with pytest.raises(QueueSendError, match="after 5 attempts"):
        Queue(cast("SQSClient", AlwaysRefuses()), "url", sleep=lambda _: None).send([Message("x", "acme")])


def test_each_message_is_sent_in_its_teams_message_group() -> None:
    sqs = FlakySqs()
    Queue(cast("SQSClient", sqs), "url").send(
        [delivery_message("d1", 1, team_id="acme"), Message("x", "team-b", delay_seconds=5)]
    )
    assert [(entry["MessageGroupId"], entry["DelaySeconds"]) for entry in sqs.calls[0]] == [("acme", 0), ("team-b", 5)]

"""The local stack's SQS as AWS's fair queues: a team holding a disproportionate share of the consumers
(30 or more of the in-flight messages and over 10 % of them, or over 10 % of the recent processing
time) waits while other teams' messages are waiting; it recovers when its backlog drains or after 5
minutes without a send. Without a MessageGroupId each message is a tenant of its own."""

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from hookrelay_cli.local import fair_queues
from hookrelay_cli.local.fair_queues import keep_queues_fair

HOLD = 600  # a visibility timeout no test outlives: received and not deleted is in flight


@pytest.fixture
def sqs() -> Iterator[Any]:
    keep_queues_fair()
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def queue(sqs: Any) -> str:
    url: str = sqs.create_queue(QueueName="deliveries")["QueueUrl"]
    return url


def send(sqs: Any, queue: str, team: str | None, count: int) -> None:
    for start in range(0, count, 10):
        entries = [
            {"Id": str(i), "MessageBody": f"{team}-{start + i}"} | ({"MessageGroupId": team} if team else {})
            for i in range(min(10, count - start))
        ]
        sqs.send_message_batch(QueueUrl=queue, Entries=entries)


def receive(sqs: Any, queue: str, count: int = 10) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=count, VisibilityTimeout=HOLD, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    return messages


def bodies(messages: list[dict[str, Any]]) -> list[str]:
    return [message["Body"] for message in messages]


def delete(sqs: Any, queue: str, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def hold_in_flight(sqs: Any, queue: str, count: int) -> list[dict[str, Any]]:
    held = [message for _ in range(count // 10) for message in receive(sqs, queue)]
    assert len(held) == count
    return held


def test_a_standard_queue_keeps_and_returns_the_message_group(sqs: Any, queue: str) -> None:
    sqs.send_message(QueueUrl=queue, MessageBody="one", MessageGroupId="team-a")
    (message,) = receive(sqs, queue)
    assert message["Attributes"]["MessageGroupId"] == "team-a"


def test_a_quiet_teams_messages_are_received_before_a_noisy_teams_backlog(sqs: Any, queue: str) -> None:
    send(sqs, queue, "team-a", 500)
    send(sqs, queue, "team-b", 5)
    hold_in_flight(sqs, queue, 20)
    receive(sqs, queue, 9)
    # 29 in flight, all of the queue's: not yet noisy.
    assert bodies(receive(sqs, queue)) == [f"team-a-{i}" for i in range(29, 39)]
    assert bodies(receive(sqs, queue)) == [f"team-b-{i}" for i in range(5)] + [f"team-a-{i}" for i in range(39, 44)]


def test_without_a_message_group_each_message_is_its_own_tenant(sqs: Any, queue: str) -> None:
    send(sqs, queue, None, 500)
    sqs.send_message(QueueUrl=queue, MessageBody="late")
    hold_in_flight(sqs, queue, 40)
    assert bodies(receive(sqs, queue)) == [f"None-{i}" for i in range(40, 50)]


def test_a_team_whose_messages_take_long_waits_though_few_are_in_flight(sqs: Any, queue: str) -> None:
    send(sqs, queue, "team-a", 6)
    send(sqs, queue, "team-b", 6)
    slow = receive(sqs, queue, 1)
    assert bodies(slow) == ["team-a-0"]
    time.sleep(0.3)
    delete(sqs, queue, slow)
    # Team A has nothing in flight, but all of the recent processing time.
    assert bodies(receive(sqs, queue, 5)) == [f"team-b-{i}" for i in range(5)]


def test_a_noisy_team_recovers_when_its_backlog_drains(sqs: Any, queue: str) -> None:
    send(sqs, queue, "team-a", 60)
    send(sqs, queue, "team-b", 5)
    held = hold_in_flight(sqs, queue, 30)
    drained = [message for _ in range(4) for message in receive(sqs, queue)]
    assert bodies(drained)[:5] == [f"team-b-{i}" for i in range(5)]
    assert len(drained) == 35
    delete(sqs, queue, held + drained)
    assert receive(sqs, queue) == []  # team A's backlog is drained
    sqs.send_message(QueueUrl=queue, MessageBody="team-a-again", MessageGroupId="team-a")
    sqs.send_message(QueueUrl=queue, MessageBody="team-b-again", MessageGroupId="team-b")
    assert bodies(receive(sqs, queue)) == ["team-a-again", "team-b-again"]


def test_a_noisy_team_recovers_after_5_minutes_without_a_send(
    sqs: Any, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    send(sqs, queue, "team-a", 60)
    hold_in_flight(sqs, queue, 40)
    send(sqs, queue, "team-b", 1)
    assert bodies(receive(sqs, queue, 1)) == ["team-b-0"]
    send(sqs, queue, "team-b", 1)
    monkeypatch.setattr(fair_queues, "clock", lambda: time.monotonic() + 301)
    assert bodies(receive(sqs, queue, 2)) == ["team-a-40", "team-a-41"]


def test_among_noisy_teams_the_one_with_fewest_in_flight_comes_first(sqs: Any, queue: str) -> None:
    send(sqs, queue, "team-a", 100)
    hold_in_flight(sqs, queue, 60)
    send(sqs, queue, "team-c", 100)
    hold_in_flight(sqs, queue, 40)  # team A: 60 in flight, team C: 40, both noisy
    assert bodies(receive(sqs, queue, 2)) == ["team-c-40", "team-c-41"]


@dataclass
class Consumers:
    """What many consumers did with a queue's messages, to check SQS's promise on it: every message
    sent is received until it is deleted, and while one consumer holds it no other receives it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    held: set[str] = field(default_factory=set)
    deleted: Counter[str] = field(default_factory=Counter)
    received_while_held: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def receiving(self, body: str) -> None:
        with self.lock:
            if body in self.held or body in self.deleted:
                self.received_while_held.append(body)
            self.held.add(body)

    def releasing(self, body: str) -> None:
        with self.lock:
            self.held.discard(body)

    def deleted_one(self, body: str) -> None:
        with self.lock:
            self.deleted[body] += 1
            self.held.discard(body)


def test_many_consumers_and_producers_at_once_lose_no_message_and_never_share_one_in_flight(
    sqs: Any, queue: str
) -> None:
    teams, senders, per_sender = ["team-a", "team-b", "team-c", None], 4, 150
    sent = {f"{sender}-{i}" for sender in range(senders) for i in range(per_sender)}
    consumers, done = Consumers(), threading.Event()

    def produce(sender: int) -> None:
        for start in range(0, per_sender, 10):
            entries = [
                {"Id": str(i), "MessageBody": f"{sender}-{start + i}", "DelaySeconds": (start + i) % 3 // 2}
                | ({"MessageGroupId": team} if (team := teams[(start + i) % len(teams)]) else {})
                for i in range(10)
            ]
            if start % 20:
                sqs.send_message_batch(QueueUrl=queue, Entries=entries)
            else:
                for entry in entries:
                    sqs.send_message(QueueUrl=queue, **{k: v for k, v in entry.items() if k != "Id"})

    def consume(consumer: int) -> None:
        turn = 0
        while not done.is_set():
            for message in receive(sqs, queue):
                body, handle, turn = message["Body"], message["ReceiptHandle"], turn + 1
                consumers.receiving(body)
                if turn % 7 == consumer % 7:  # handed back: received again later, maybe by another
                    consumers.releasing(body)
                    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=handle, VisibilityTimeout=0)
                    continue
                if turn % 5 == 0:  # a consumer that needs longer
                    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=handle, VisibilityTimeout=HOLD)
                if turn % 2:
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=handle)
                else:
                    sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": "0", "ReceiptHandle": handle}])
                consumers.deleted_one(body)
            if set(consumers.deleted) >= sent:
                done.set()

    def recording_errors(work: Callable[[int], None]) -> Callable[[int], None]:
        def run(index: int) -> None:
            try:
                work(index)
            except BaseException as error:
                consumers.errors.append(f"{type(error).__name__}: {error}")
                done.set()

        return run

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads take turns often, as a busy server's do
    try:
        threads = [threading.Thread(target=recording_errors(produce), args=(i,)) for i in range(senders)]
        threads += [threading.Thread(target=recording_errors(consume), args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        done.wait(timeout=120)
        done.set()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch_interval)

    assert consumers.errors == []
    assert consumers.received_while_held == []
    assert sorted(sent - set(consumers.deleted)) == []
    assert [body for body, times in consumers.deleted.items() if times > 1] == []
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        "0",
        "0",
    )


def test_a_delete_takes_any_handle_its_message_had_and_refuses_others(sqs: Any, queue: str) -> None:
    other: str = sqs.create_queue(QueueName="other")["QueueUrl"]
    send(sqs, queue, "team", 3)
    send(sqs, other, "team", 1)
    first = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=3, VisibilityTimeout=0)["Messages"]
    again = receive(sqs, queue, 3)
    assert sorted(bodies(again)) == sorted(bodies(first))
    kept = {message["Body"]: message["ReceiptHandle"] for message in first}
    # An earlier receive's handle deletes the message, and deleting it again is no error.
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=kept["team-0"])
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=kept["team-0"])
    sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": "1", "ReceiptHandle": kept["team-1"]}])
    other_handle = receive(sqs, other, 1)[0]["ReceiptHandle"]
    for handle in (other_handle, "not-a-handle"):
        with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=handle)
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        "0",
        "1",
    )
    sqs.change_message_visibility(
        QueueUrl=queue,
        ReceiptHandle=next(m["ReceiptHandle"] for m in again if m["Body"] == "team-2"),
        VisibilityTimeout=0,
    )
    assert bodies(receive(sqs, queue)) == ["team-2"]

"""The sweeper over a due index that lags behind its table, as DynamoDB's global secondary indexes do."""

import json
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from records import subscription_id

from hookrelay import clock
from hookrelay.retry import SWEEPER_LEASE
from hookrelay.slow_answers import SLOW_ANSWER_MS
from hookrelay.store.due_retries import Claim, DueSlice, WaitingAttempt, due_shard_name, wait_shard_name
from hookrelay.sweeper import PAGE, Sweeper, stop_seconds
from hookrelay.time_budget import UNLIMITED, TimeBudget
from unit.fakes import Crash, FakeQueue, LaggingDueIndex

NOW = clock.parse_moment("2026-03-02T10:00:00.000Z")


def due_retries(count: int) -> dict[str, str]:
    """`count` deliveries due in the last minutes, in one shard."""
    return {subscription_id(index): clock.iso(NOW - timedelta(seconds=index + 1)) for index in range(count)}


# The worst of one AWS call (AwsCallLimits.worst_call_seconds with the template's settings).
AWS_CALL_SECONDS = 4.0


def new_sweeper(
    index: LaggingDueIndex,
    queue: FakeQueue,
    slow_lane: FakeQueue | None = None,
    shards: int = 1,
    monotonic: Callable[[], float] = lambda: 0.0,
) -> Sweeper:
    return Sweeper(
        due_retries=index,
        delivery_queue=queue,  # type: ignore[arg-type]
        slow_lane=slow_lane or FakeQueue(),  # type: ignore[arg-type]
        shards=shards,
        aws_call_seconds=AWS_CALL_SECONDS,
        monotonic=monotonic,
    )


def delivery_ids(queue: FakeQueue) -> list[str]:
    return [json.loads(message.body)["delivery_id"] for message in queue.messages]


def sweep(
    index: LaggingDueIndex, budget: TimeBudget = UNLIMITED, queue: FakeQueue | None = None
) -> tuple[int, list[str]]:
    queue = queue or FakeQueue()
    enqueued = new_sweeper(index, queue).sweep(NOW, budget)
    return enqueued, delivery_ids(queue)


class TimedIndex(LaggingDueIndex):
    """Each call takes a second of the sweeper's invocation, which has `seconds` left at the start;
    `crash_on_claim` makes that claim (1-based) raise, as an AWS call that fails does."""

    def __init__(self, due_at: dict[str, str], seconds: float, crash_on_claim: int | None = None) -> None:
        super().__init__(due_at)
        self.seconds_left = seconds
        self.claimed: list[str] = []
        self._crash_on_claim = crash_on_claim

    def due(self, shard: str, now: str, limit: int, after: dict[str, Any] | None = None) -> DueSlice:
        self.seconds_left -= 1
        return super().due(shard, now, limit, after)

    def claim(self, delivery_id: str, due_at: str, lease_until: str) -> Claim | None:
        self.seconds_left -= 1
        if len(self.claimed) + 1 == self._crash_on_claim:
            raise Crash
        attempt = super().claim(delivery_id, due_at, lease_until)
        if attempt is not None:
            self.claimed.append(delivery_id)
        return attempt

    def budget(self) -> TimeBudget:
        return TimeBudget(lambda: self.seconds_left)


def test_every_page_of_due_retries_is_enqueued_once() -> None:
    due = due_retries(2 * PAGE + PAGE // 2)
    index = LaggingDueIndex(due)
    enqueued, sent = sweep(index)
    assert enqueued == len(due)
    assert sorted(sent) == sorted(due)
    assert index.reads == 3


def test_retries_already_claimed_but_still_shown_by_the_index_end_the_sweep() -> None:
    # An earlier sweep claimed them; the index has not caught up with the leases yet.
    index = LaggingDueIndex(due_retries(PAGE))
    index.due_at = {delivery_id: clock.iso(NOW + SWEEPER_LEASE) for delivery_id in index.due_at}
    assert sweep(index) == (0, [])
    assert index.reads == 1


def test_the_sweep_stops_claiming_when_its_time_runs_short_and_enqueues_every_claim() -> None:
    # 30 s left, a second a call: a page's read, then claims until no more than stop_seconds is left.
    due = due_retries(PAGE)
    index = TimedIndex(due, seconds=30)
    enqueued, sent = sweep(index, index.budget())
    keeps = stop_seconds(AWS_CALL_SECONDS)
    assert enqueued == len(index.claimed) == math.ceil(30 - 1 - keeps) < len(due)
    # Nothing claimed waits out its lease: every claim is on the queue.
    assert sorted(sent) == sorted(index.claimed)


def test_a_sweep_with_too_little_time_claims_nothing() -> None:
    index = TimedIndex(due_retries(PAGE), seconds=stop_seconds(AWS_CALL_SECONDS))
    assert sweep(index, index.budget()) == (0, [])
    assert index.reads == 0


def test_what_a_sweep_claimed_before_a_call_failed_is_enqueued() -> None:
    index = TimedIndex(due_retries(PAGE), seconds=60, crash_on_claim=15)
    queue = FakeQueue()
    with pytest.raises(Crash):
        sweep(index, index.budget(), queue)
    assert len(index.claimed) == 14
    assert sorted(delivery_ids(queue)) == sorted(index.claimed)


def test_each_due_retry_is_enqueued_in_its_teams_message_group() -> None:
    queue = FakeQueue()
    sweep(LaggingDueIndex(due_retries(3)), UNLIMITED, queue)
    assert [message.team_id for message in queue.messages] == ["acme"] * 3


def test_a_rate_limited_delivery_is_handed_to_the_queue_once_within_a_queue_delay_of_its_slot() -> None:
    index = LaggingDueIndex({})
    index.waiting_slots = {
        subscription_id(1): WaitingAttempt(1, clock.iso(NOW + timedelta(minutes=10)), "acme"),
        # past what this sweep hands over
        subscription_id(2): WaitingAttempt(3, clock.iso(NOW + timedelta(minutes=14)), "team-b"),
    }
    queue = FakeQueue()
    assert sweep(index, queue=queue) == (1, [subscription_id(1)])
    (message,) = queue.messages
    assert (json.loads(message.body)["attempt"], message.delay_seconds) == (1, 599)  # a second before its slot
    assert message.team_id == "acme"  # in its team's message group
    assert sweep(index) == (0, [])  # handed over once: the next sweep starts after it
    later = new_sweeper(index, queue)
    assert later.sweep(NOW + timedelta(minutes=2), UNLIMITED) == 1
    handed = queue.messages[-1]
    assert (json.loads(handed.body)["attempt"], handed.delay_seconds, handed.team_id) == (3, 719, "team-b")


def test_a_hand_over_is_delayed_until_its_slot_from_when_it_is_sent_not_from_the_sweep_s_start() -> None:
    # Delayed from the sweep's start, a hand-over sent 40 s into a long sweep came 40 s after its slot, and
    # took another slot: one lost to the subscription's rate, each time.
    index = LaggingDueIndex({})
    index.waiting_slots = {subscription_id(1): WaitingAttempt(1, clock.iso(NOW + timedelta(minutes=10)), "acme")}
    elapsed = iter([0.0, 40.0])  # the sweep's start, then the hand-over's send
    queue = FakeQueue()
    assert new_sweeper(index, queue, monotonic=lambda: next(elapsed)).sweep(NOW, UNLIMITED) == 1
    (message,) = queue.messages
    assert message.delay_seconds == 599 - 40  # still a second before its slot


def test_retries_whose_last_attempt_the_endpoint_answered_slowly_are_swept_to_the_slow_lane() -> None:
    # A long backoff outlasts every container's memory of the endpoint: without the record's latency, the
    # delivery queue's consumers would hold an invocation for the slow answer again, or move it.
    due = due_retries(25)
    index = LaggingDueIndex(due)
    slow = sorted(due)[:12]
    index.last_latency_ms = {
        **{delivery_id: SLOW_ANSWER_MS for delivery_id in slow},
        sorted(due)[12]: SLOW_ANSWER_MS - 1,
    }
    queue, slow_lane = FakeQueue(), FakeQueue()
    assert new_sweeper(index, queue, slow_lane).sweep(NOW, UNLIMITED) == len(due)
    assert sorted(delivery_ids(slow_lane)) == slow
    assert sorted(delivery_ids(queue)) == sorted(set(due) - set(slow))
    # Ten a send, whichever lane: 12 and 13 messages are two sends each.
    assert (slow_lane.calls, queue.calls) == (2, 2)


def test_a_lane_sqs_refuses_does_not_keep_the_other_lane_s_claimed_retries_from_being_sent() -> None:
    index = LaggingDueIndex(due_retries(4))
    slow = sorted(index.due_at)[:2]
    index.last_latency_ms = dict.fromkeys(slow, SLOW_ANSWER_MS)
    queue, slow_lane = FakeQueue(), FakeQueue()
    queue.fail_on_call = 1
    with pytest.raises(Crash):
        new_sweeper(index, queue, slow_lane).sweep(NOW, UNLIMITED)
    assert sorted(delivery_ids(slow_lane)) == slow  # the others wait out their lease


def test_a_rate_limited_delivery_whose_last_attempt_was_answered_slowly_waits_on_the_slow_lane() -> None:
    index = LaggingDueIndex({})
    slot = clock.iso(NOW + timedelta(minutes=5))
    index.waiting_slots = {
        subscription_id(1): WaitingAttempt(2, slot, "acme", last_latency_ms=SLOW_ANSWER_MS),
        subscription_id(2): WaitingAttempt(1, slot, "acme"),  # not attempted yet
    }
    queue, slow_lane = FakeQueue(), FakeQueue()
    assert new_sweeper(index, queue, slow_lane).sweep(NOW, UNLIMITED) == 2
    assert (delivery_ids(slow_lane), delivery_ids(queue)) == ([subscription_id(1)], [subscription_id(2)])
    assert slow_lane.messages[0].delay_seconds == 299


def test_a_delivery_no_longer_waiting_is_not_handed_over() -> None:
    index = LaggingDueIndex({})
    index.waiting_slots = {subscription_id(1): WaitingAttempt(1, clock.iso(NOW + timedelta(minutes=5)), "acme")}
    index.waiting_attempts = lambda delivery_ids: {}  # type: ignore[method-assign]  # attempted meanwhile
    assert sweep(index) == (0, [])
    assert index.positions  # and the sweep moved past it


def read_timeout() -> ReadTimeoutError:
    return ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")


class ShardZeroNotAnswered(LaggingDueIndex):
    """DynamoDB does not answer in time the reads of the partitions numbered 0."""

    def due(self, shard: str, now: str, limit: int, after: dict[str, Any] | None = None) -> DueSlice:
        if shard == due_shard_name(0):
            raise read_timeout()
        return super().due(shard, now, limit, after)

    def waiting(self, shard: str, until: str, after: dict[str, Any] | None, limit: int) -> DueSlice:
        if shard == wait_shard_name(0):
            raise read_timeout()
        return super().waiting(shard, until, after, limit)


def test_a_shard_whose_reads_aws_does_not_answer_stops_alone_and_the_sweep_goes_on() -> None:
    # R1 at full size: a ReadTimeout in one wait partition's read failed the whole sweeper invocation.
    index = ShardZeroNotAnswered(due_retries(3))
    index.waiting_slots = {subscription_id(9): WaitingAttempt(1, clock.iso(NOW + timedelta(minutes=5)), "acme")}
    queue = FakeQueue()
    sweeper = new_sweeper(index, queue, shards=2)
    assert sweeper.sweep(NOW, UNLIMITED) == 4
    handed = sorted(delivery_ids(queue))
    assert handed == sorted([*due_retries(3), subscription_id(9)])
    assert set(index.positions) == {wait_shard_name(1)}  # the partition read keeps its position


class PositionsNotAnswered(LaggingDueIndex):
    """DynamoDB does not answer in time for the sweep's positions: reading them, or also writing them."""

    def __init__(self, due_at: dict[str, str], *, when_read: bool) -> None:
        super().__init__(due_at)
        self.when_read = when_read
        self.waiting_slots = {subscription_id(9): WaitingAttempt(1, clock.iso(NOW + timedelta(minutes=5)), "acme")}

    def sweep_positions(self) -> dict[str, dict[str, Any]]:
        if self.when_read:
            raise read_timeout()
        return super().sweep_positions()

    def keep_sweep_positions(self, positions: dict[str, dict[str, Any]]) -> None:
        raise read_timeout()


def test_a_sweep_whose_positions_aws_does_not_answer_for_still_sweeps() -> None:
    # Not read: the due retries are swept, the waiting left to the next sweep (it cannot tell where to start).
    enqueued, sent = sweep(PositionsNotAnswered(due_retries(3), when_read=True))
    assert (enqueued, sorted(sent)) == (3, sorted(due_retries(3)))
    # Not written: what was handed over is handed over again by the next sweep (its record keeps its slot).
    assert sweep(PositionsNotAnswered({}, when_read=False)) == (1, [subscription_id(9)])

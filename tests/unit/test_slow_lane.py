"""Which endpoints a delivery container counts as slow (hookrelay.slow_lane), and which lane a record came from."""

import random

from records import subscription

from hookrelay.slow_answers import SLOW_ANSWER_MS
from hookrelay.slow_lane import (
    REMEMBERED_AT_MOST,
    REMEMBERED_FOR_SECONDS,
    REMEMBERED_SPREAD,
    SHARED_AGAIN_AFTER_SECONDS,
    SlowEndpoints,
    SlowLane,
    is_slow_lane,
)
from hookrelay.time_budget import UNLIMITED, TimeBudget
from unit.fakes import FakeQueue
from unit.test_api_keys import Clock

SHORTEST = REMEMBERED_FOR_SECONDS * (1 - REMEMBERED_SPREAD)
LONGEST = REMEMBERED_FOR_SECONDS * (1 + REMEMBERED_SPREAD)


def test_an_answer_slower_than_the_threshold_marks_its_endpoint_slow_and_a_fast_one_clears_it() -> None:
    endpoints = SlowEndpoints(Clock())
    endpoints.observe("fast", SLOW_ANSWER_MS - 1)
    endpoints.observe("slow", SLOW_ANSWER_MS)
    assert (endpoints.is_slow("fast"), endpoints.is_slow("slow"), endpoints.is_slow("unseen")) == (False, True, False)
    endpoints.observe("slow", 40)
    assert not endpoints.is_slow("slow")


def test_a_slow_mark_lasts_its_period_then_the_endpoint_is_tried_again() -> None:
    for spread in (min, max):
        clock = Clock()
        endpoints = SlowEndpoints(clock, spread)
        endpoints.observe("slow", 15_000)  # a send that timed out
        period = SHORTEST if spread is min else LONGEST
        clock.now += period
        assert endpoints.is_slow("slow")
        clock.now += 0.001
        assert not endpoints.is_slow("slow")


def test_containers_that_saw_an_endpoint_slow_at_once_do_not_all_try_it_again_at_once() -> None:
    clock = Clock()
    containers = [SlowEndpoints(clock, random.Random(seed).uniform) for seed in range(20)]
    for endpoints in containers:
        endpoints.observe("slow", 2_000)
    clock.now += SHORTEST
    assert all(endpoints.is_slow("slow") for endpoints in containers)
    trying_again: list[int] = []  # how many containers try it again in each second from then on
    while any(endpoints.is_slow("slow") for endpoints in containers):
        clock.now += 1
        trying_again.append(sum(not endpoints.is_slow("slow") for endpoints in containers) - sum(trying_again))
    assert sum(trying_again) == 20
    assert len(trying_again) <= LONGEST - SHORTEST + 1
    assert max(trying_again) <= 4, trying_again


def test_a_container_remembers_a_bounded_number_of_slow_endpoints_the_latest_first() -> None:
    endpoints = SlowEndpoints(Clock())
    for number in range(REMEMBERED_AT_MOST + 5):
        endpoints.observe(f"s{number}", SLOW_ANSWER_MS)
    assert not any(endpoints.is_slow(f"s{number}") for number in range(5))
    assert all(endpoints.is_slow(f"s{number}") for number in range(5, REMEMBERED_AT_MOST + 5))


def test_a_record_of_the_slow_lane_is_told_by_its_queues_name() -> None:
    slow_lane = "https://sqs.eu-west-1.amazonaws.com/123456789012/hookrelay-delivery-slow"
    assert is_slow_lane("arn:aws:sqs:eu-west-1:123456789012:hookrelay-delivery-slow", slow_lane)
    assert not is_slow_lane("arn:aws:sqs:eu-west-1:123456789012:hookrelay-delivery", slow_lane)
    assert not is_slow_lane("", slow_lane)


class RecordedMarks:
    def __init__(self) -> None:
        self.written: list[tuple[str, str, int]] = []

    def mark_slow(self, team_id: str, subscription_id: str, until: int, now: int) -> None:
        self.written.append((team_id, subscription_id, until - now))


def test_a_container_shares_a_slow_endpoint_from_the_delivery_queue_at_most_once_per_half_mark() -> None:
    clock, marks = Clock(), RecordedMarks()
    lane = SlowLane(FakeQueue(), marks=marks, monotonic=clock, spread=lambda low, high: 1.0)  # type: ignore[arg-type]
    slow = subscription(1, team_id="acme")
    lane.observe(slow, SLOW_ANSWER_MS)
    lane.end_batch(from_slow_lane=True, budget=UNLIMITED)
    assert marks.written == []  # the slow lane's batches share nothing, and forget what they found
    lane.end_batch(from_slow_lane=False, budget=UNLIMITED)
    assert marks.written == []
    for seconds in (0, SHARED_AGAIN_AFTER_SECONDS - 1, 1):
        clock.now += seconds
        lane.observe(slow, SLOW_ANSWER_MS)
        lane.observe(subscription(2), SLOW_ANSWER_MS - 1)
        lane.end_batch(from_slow_lane=False, budget=UNLIMITED)
    assert marks.written == [("acme", slow.id, int(REMEMBERED_FOR_SECONDS))] * 2


def test_marks_written_at_the_same_moment_end_spread_over_their_period() -> None:
    # An event fanned out to many slow endpoints: their marks, written together, would all end together
    # and be written again together, a burst on the team's partition key once a period.
    marks = RecordedMarks()
    lane = SlowLane(FakeQueue(), marks=marks)  # type: ignore[arg-type]
    for number in range(50):
        lane.observe(subscription(number, team_id="acme"), SLOW_ANSWER_MS)
    lane.end_batch(from_slow_lane=False, budget=UNLIMITED)
    lengths = [length for _, _, length in marks.written]
    assert len(lengths) == 50
    assert all(SHORTEST <= length <= LONGEST for length in lengths)
    assert len(set(lengths)) > 10


def test_a_batch_without_time_left_for_a_mark_s_write_shares_no_more_and_the_next_batch_does() -> None:
    # The invocation's reports come first: a write past its Timeout would lose them all.
    marks = RecordedMarks()
    lane = SlowLane(FakeQueue(), marks=marks, aws_call_seconds=4.0)  # type: ignore[arg-type]
    seconds_left = iter([9.0, 8.5])  # a write takes 8.5 s at its worst: two calls of 4 s, and the answer
    for number in range(3):
        lane.observe(subscription(number, team_id="acme"), SLOW_ANSWER_MS)
    lane.end_batch(from_slow_lane=False, budget=TimeBudget(lambda: next(seconds_left)))
    assert [subscription_id for _, subscription_id, _ in marks.written] == [subscription(0).id]
    for number in (1, 2):
        lane.observe(subscription(number, team_id="acme"), SLOW_ANSWER_MS)
    lane.end_batch(from_slow_lane=False, budget=UNLIMITED)
    assert [subscription_id for _, subscription_id, _ in marks.written] == [subscription(n).id for n in range(3)]

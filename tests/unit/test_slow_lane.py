"""Which endpoints a delivery container counts as slow (hookrelay.slow_lane), and which lane a record came from."""

from hookrelay.slow_lane import REMEMBERED_AT_MOST, REMEMBERED_FOR_SECONDS, SLOW_ANSWER_MS, SlowEndpoints, is_slow_lane
from unit.test_api_keys import Clock


def test_an_answer_slower_than_the_threshold_marks_its_endpoint_slow_and_a_fast_one_clears_it() -> None:
    endpoints = SlowEndpoints(Clock())
    endpoints.observe("fast", SLOW_ANSWER_MS - 1)
    endpoints.observe("slow", SLOW_ANSWER_MS)
    assert (endpoints.is_slow("fast"), endpoints.is_slow("slow"), endpoints.is_slow("unseen")) == (False, True, False)
    endpoints.observe("slow", 40)
    assert not endpoints.is_slow("slow")


def test_a_slow_mark_lasts_its_period_then_the_endpoint_is_tried_again() -> None:
    clock = Clock()
    endpoints = SlowEndpoints(clock)
    endpoints.observe("slow", 15_000)  # a send that timed out
    clock.now += REMEMBERED_FOR_SECONDS
    assert endpoints.is_slow("slow")
    clock.now += 0.001
    assert not endpoints.is_slow("slow")


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

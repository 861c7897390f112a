from datetime import UTC, datetime, timedelta

import pytest

from hookrelay.retry import DEFAULT_SCHEDULE, Failure, RetryPolicy, parse_schedule, retry_after

NOW = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
SERVER_ERROR = Failure(status_code=500, timed_out=False)
TIMEOUT = Failure(status_code=None, timed_out=True)


def policy(jitter_draw: float = 0.5) -> RetryPolicy:
    return RetryPolicy(parse_schedule(DEFAULT_SCHEDULE), random=lambda: jitter_draw)


def test_default_schedule() -> None:
    minutes = [step.total_seconds() / 60 for step in parse_schedule(DEFAULT_SCHEDULE)]
    assert minutes == [2, 6, 30, 60, 300, 1080, 1440, 2880]


@pytest.mark.parametrize("text", ["", "2m,", "5x", "1h,,2h", "-1s"])
def test_bad_schedules_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="retry schedule"):
        parse_schedule(text)


def test_fast_schedule_for_tests() -> None:
    assert parse_schedule("1s,2s,3s") == (timedelta(seconds=1), timedelta(seconds=2), timedelta(seconds=3))


def test_each_failure_waits_its_step_then_the_delivery_fails() -> None:
    delays = [policy().next_delay(attempt, SERVER_ERROR, True, NOW) for attempt in range(1, 10)]
    assert delays[:8] == list(parse_schedule(DEFAULT_SCHEDULE))
    assert delays[8] is None


@pytest.mark.parametrize(("draw", "factor"), [(0.0, 0.8), (1.0, 1.2), (0.25, 0.9)])
def test_jitter_is_twenty_percent_either_way(draw: float, factor: float) -> None:
    assert policy(draw).next_delay(1, SERVER_ERROR, True, NOW) == timedelta(minutes=2) * factor


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", timedelta(seconds=120)),
        ("5", timedelta(seconds=60)),
        ("86400", timedelta(hours=1)),
        ("Mon, 02 Mar 2026 10:10:00 GMT", timedelta(minutes=10)),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_is_clamped(header: str | None, expected: timedelta | None) -> None:
    assert retry_after(header, NOW) == expected


def test_throttled_waits_as_asked() -> None:
    throttled = Failure(status_code=429, timed_out=False, retry_after="300")
    assert policy().next_delay(1, throttled, True, NOW) == timedelta(seconds=300)
    unavailable = Failure(status_code=503, timed_out=False, retry_after=None)
    assert policy().next_delay(1, unavailable, True, NOW) == timedelta(minutes=2)


def test_without_auto_retry_only_a_first_timeout_is_retried() -> None:
    assert policy().next_delay(1, TIMEOUT, False, NOW) == timedelta(minutes=2)
    assert policy().next_delay(2, TIMEOUT, False, NOW) is None
    assert policy().next_delay(1, SERVER_ERROR, False, NOW) is None

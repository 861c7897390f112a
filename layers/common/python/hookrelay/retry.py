"""When a failed delivery is tried again (SPEC §4): the schedule, its jitter, and Retry-After."""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from hookrelay import clock

DEFAULT_SCHEDULE = "2m,6m,30m,1h,5h,18h,1d,2d"
JITTER = 0.2
RETRY_AFTER_MIN = timedelta(seconds=60)
RETRY_AFTER_MAX = timedelta(hours=1)
# Delays up to this go back on the delivery queue (SQS DelaySeconds allows 15 minutes); longer ones
# wait in the deliveries table for the sweeper.
MAX_QUEUE_DELAY = timedelta(minutes=15)
# How long a retry the sweeper (or a queue delay) handed to the delivery queue may take to be
# attempted before the sweeper hands it over again: a lost message costs this much delay, not the delivery.
SWEEPER_LEASE = timedelta(minutes=15)
DISABLE_AFTER_FAILING_FOR = timedelta(days=5)
THROTTLING_STATUSES = frozenset({429, 503})


def parse_schedule(text: str) -> tuple[timedelta, ...]:
    """`2m,6m,30m,...` as delays; raises ValueError naming the bad step."""
    try:
        steps = tuple(clock.parse_duration(step) for step in text.split(","))
    except ValueError as error:
        raise ValueError(f"retry schedule step {error}") from None
    return steps


def retry_after(header: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header (seconds or an HTTP date) as a delay clamped to [60 s, 1 h]."""
    if not header:
        return None
    text = header.strip()
    try:
        delay = timedelta(seconds=int(text)) if text.isdigit() else parsedate_to_datetime(text) - now
    except (TypeError, ValueError, OverflowError):
        return None
    return min(max(delay, RETRY_AFTER_MIN), RETRY_AFTER_MAX)


@dataclass(frozen=True)
class Failure:
    """How an attempt failed, as far as retrying is concerned."""

    status_code: int | None
    timed_out: bool
    retry_after: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    schedule: Sequence[timedelta]
    random: Callable[[], float] = random.random

    def next_delay(self, attempts_made: int, failure: Failure, auto_retry: bool, now: datetime) -> timedelta | None:
        """How long to wait before the next attempt, or None when the delivery has failed for good.

        `attempts_made` counts the attempt that just failed. With auto_retry off, only a first
        attempt that timed out gets one more try.
        """
        if not auto_retry:
            if attempts_made == 1 and failure.timed_out:
                return self._jittered(self.schedule[0])
            return None
        if attempts_made > len(self.schedule):
            return None
        if failure.status_code in THROTTLING_STATUSES:
            asked = retry_after(failure.retry_after, now)
            if asked is not None:
                return asked
        return self._jittered(self.schedule[attempts_made - 1])

    def _jittered(self, delay: timedelta) -> timedelta:
        return delay * (1 + JITTER * (2 * self.random() - 1))

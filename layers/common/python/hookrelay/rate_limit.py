"""Per-subscription rate limits (issue 17): how a delivery over its endpoint's limit waits.

Requests to a rate-limited endpoint are spaced at least 1/rate_limit s apart, across every delivery
container (the spacing is kept in DynamoDB, store/rate_limits.py), so that no one-second window holds
more than rate_limit of them. A delivery that finds its slot taken goes back on the delivery queue with
a delay: not an attempt, not a failure, the same attempt number.
"""

import random
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

# A waiting delivery comes back after 1 s at first, then after a random delay up to twice as long as
# the time before, at most this: a backlog is spread out instead of polling in step, and its tail does
# not sit idle long after the endpoint's slots are free again (simulated: 500 deliveries at 5/s take
# ~130 s with 10 s, ~220 s with 60 s, for ~12 against ~7 waits each).
MAX_WAIT_SECONDS = 10


class RateLimiter(Protocol):
    def admit(self, subscription_id: str, rate_limit: int, now: datetime) -> bool:
        """Take the subscription's next sending slot if it is free at `now`; False when it is not."""
        ...


def wait_seconds(waits: int, jitter: Callable[[], float] = random.random) -> int:
    """The DelaySeconds of a delivery that has already waited `waits` times for its rate limit (at least 1)."""
    return 1 + int(jitter() * min(MAX_WAIT_SECONDS, 2 ** min(waits, MAX_WAIT_SECONDS.bit_length())))

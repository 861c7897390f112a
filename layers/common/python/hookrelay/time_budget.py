"""An invocation's time budget: what is left of it, and whether a step fits in that.

A step still running at the function's Timeout is killed with the rest of the invocation: its batch
comes back whole, with its effects half made. So a step starts only if its worst case fits.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# What an invocation's answer takes once its work is done (its metrics, the answer; no AWS call).
ANSWER_SECONDS = 0.5

# The AWS calls an attempt makes besides its send, one after the other at worst: its rate limit's slot
# before it; after it, recording it, freeing a test event's slot, enqueueing its retry and writing its
# endpoint's health.
AWS_CALLS_PER_ATTEMPT = 5


# The AWS calls an attempt held back makes, one after the other at worst: a rate-limited one waiting for
# its slot keeps the slot on its record and puts its message back on its queue.
AWS_CALLS_TO_HOLD_BACK = 2


def hold_back_seconds(aws_call_seconds: float) -> float:
    """The longest holding an attempt back can take (AWS_CALLS_TO_HOLD_BACK and the answer): a message whose
    slot is far ahead starts with this much left, as it sends nothing in this invocation."""
    return AWS_CALLS_TO_HOLD_BACK * aws_call_seconds + ANSWER_SECONDS


def attempt_seconds(send_deadline_seconds: float, aws_call_seconds: float) -> float:
    """The longest an attempt can take, from its start to the batch's answer: its send's deadline, each of
    its AWS calls at its worst (`aws_call_seconds`, AwsCallLimits.worst_call_seconds), and the answer.

    An attempt starts only with more than this left: the function's Timeout must never come between a
    send and its record, or the message would come back and be sent again.
    """
    return send_deadline_seconds + AWS_CALLS_PER_ATTEMPT * aws_call_seconds + ANSWER_SECONDS


@dataclass(frozen=True)
class TimeBudget:
    # Seconds left, read anew at each question.
    seconds_left: Callable[[], float]

    @classmethod
    def of(cls, context: Any) -> "TimeBudget":
        """The budget of a Lambda invocation, from its context."""
        return cls(lambda: context.get_remaining_time_in_millis() / 1000)

    def allows(self, seconds: float) -> bool:
        """Whether more than `seconds` are left."""
        return self.seconds_left() > seconds


# Work done outside an invocation (the API's manual retries, tests, benchmarks) has no Timeout to fit.
UNLIMITED = TimeBudget(lambda: math.inf)

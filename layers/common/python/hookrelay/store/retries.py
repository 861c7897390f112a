"""Writes that lost a race rather than their condition, tried again: bounded, with jittered pauses.

DynamoDB cancels a TransactWriteItems with TransactionCanceledException and one reason per item: a
`TransactionConflict` (another transaction held one of its items), or throttling, says nothing about the
items, and no SDK retries it. Only `ConditionalCheckFailed` says that a condition did not hold.
"""

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

CONDITION_FAILED = "ConditionalCheckFailed"
# A cancellation reason's code for an item that was not at fault.
NO_REASON = "None"
LOST_RACE = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
# Error codes of a whole call refused for now (botocore has already tried it again): a single-item write
# that met a transaction on its item, or a table or partition key over its throughput.
THROTTLED = frozenset(
    {
        "TransactionConflictException",
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
    }
)
# DynamoDB's own faults, which its documentation says to retry.
_SERVER_FAULTS = frozenset({"InternalServerError", "ServiceUnavailable"})


def refused_for_now(error: BaseException) -> bool:
    """Whether an AWS call failed in a way that asking again later is expected to mend: it was not answered
    in time, the endpoint was unreachable, or it was throttled or hit a server fault after botocore's own
    tries. An access denied or a malformed request is not: it fails the same way again."""
    if isinstance(error, ConnectTimeoutError | ReadTimeoutError | EndpointConnectionError):
        return True
    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in THROTTLED | _SERVER_FAULTS


def cancellation_codes(error: Any) -> list[str]:
    """The reason codes of a TransactionCanceledException, one per item of the transaction, in order."""
    return [str(reason.get("Code")) for reason in error.response.get("CancellationReasons", [])]


def lost_a_race(codes: Sequence[str]) -> bool:
    """Whether a cancelled transaction may succeed as it is when tried again."""
    return any(code in LOST_RACE for code in codes)


def only_conditions_failed(codes: Sequence[str]) -> bool:
    """Whether a cancellation is the answer to the transaction's conditions (anything else is a fault)."""
    return CONDITION_FAILED in codes and set(codes) <= {CONDITION_FAILED, NO_REASON}


@dataclass(frozen=True)
class Retries:
    """Up to `attempts` tries; before each after the first, a pause drawn between 0 and a bound that
    doubles from `first_pause` up to `max_pause` ("full jitter"), so that racing writers fall out of step."""

    attempts: int
    first_pause: float
    max_pause: float
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = random.random

    def __iter__(self) -> Iterator[int]:
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(self.random() * min(self.max_pause, self.first_pause * 2 ** (attempt - 1)))
            yield attempt


# A subscription write's transaction: 10 tries make an exhausted retry unlikely even at a 30 % conflict
# rate (0.3^10 ~ 6e-6), and the pauses add up to at most ~1.5 s of the API function's 10 s Timeout.
TRANSACTION_RETRIES = Retries(attempts=10, first_pause=0.02, max_pause=0.25)

"""Per-subscription rate limits (issue 17, issue 23): a delivery reserves its send slot, then waits for it.

Requests to a rate-limited endpoint go at slot times spaced 1/rate_limit s apart, across every delivery
container, so that no one-second window holds more than rate_limit of them. A batch's deliveries to one
subscription take their slots together, `next = max(now, next) + count/rate`, in one conditional write
of the subscription's `rate#` item (store/rate_limits.py); each delivery then waits for its slot on the
queue it came from, the delivery queue or the slow lane (a delay of at most 15 minutes; a later slot in
the retry index's `wait#<n>` partitions, which the sweeper hands over), and the last two seconds in its
container. Waiting costs no further write: the slot is kept on the delivery record, and a message that
comes back for it (SQS's duplicates, the sweeper's hand-over) takes no other.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from hookrelay import clock
from hookrelay.retry import MAX_QUEUE_DELAY

SECOND_US = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The furthest ahead a subscription's slots may be taken: at rate_limit n, n x 86 400 deliveries wait.
# A delivery past it is not sent: its attempt is recorded as failed, `not sent: ...` (the log shows it,
# POST .../recover sends it again once the backlog has drained).
BACKLOG_LIMIT = timedelta(hours=24)
# The most writes one `rate#` item takes in a second: a tenth of a partition's 1 000 write units.
RATE_KEY_WRITES_PER_SECOND = 100
# A slot at most this far ahead is waited for in the container (the delivery's thread sleeps until it):
# a queue delay is whole seconds and its message may come a second late, so a message is put back on the
# queue to come this much before its slot, and sends on time, never bunched with later slots.
HOLD = timedelta(seconds=2)
# A message that comes later than this after its slot takes a new one: sent later, its request could meet
# the next slots' in one second. Slots are spaced (1 s + LATE) / rate_limit apart for the same reason: an
# endpoint gets at most rate_limit requests in any second, and about 5 % fewer than that at full load.
LATE = timedelta(milliseconds=50)
# Slots are taken from this far after the batch takes them, not from that moment: the rate# write and the
# start of the attempt's thread take time (a busy container, a slow write), and an attempt that starts more
# than LATE after its slot does not send. Rate-limited deliveries without a backlog wait this much longer.
SLOT_LEAD = timedelta(milliseconds=250)
# The longest a delivery waits on the queue; one whose slot is further waits in the retry index's
# `wait#<n>` partitions (its record's own write, no other) until the sweeper hands it to the queue.
LONGEST_DELAY = MAX_QUEUE_DELAY
# The sweeper hands over the slots up to LONGEST_DELAY - SWEEP_MARGIN ahead: a delivery goes to the wait
# index only with a slot further than LONGEST_DELAY, so the index's lag cannot hide it from the sweep
# that must hand it over (that sweep comes at least SWEEP_MARGIN after its write).
SWEEP_MARGIN = timedelta(minutes=2)
# Within a batch, how long after its slots are taken an attempt's thread decides how it waits, at most.
QUEUE_WAIT_DECIDED = timedelta(seconds=1)


class BacklogFull(Exception):
    """The subscription's slots are taken up to BACKLOG_LIMIT ahead."""


def reserve_spacing_seconds(delivery_containers: int) -> float:
    """How often each container writes one `rate#` item at most, so that all `delivery_containers` of
    them (the delivery function's concurrency, HOOKRELAY_DELIVERY_CONTAINERS) together stay within
    RATE_KEY_WRITES_PER_SECOND; a batch (up to ten slots a write) waits for its turn in the container."""
    return delivery_containers / RATE_KEY_WRITES_PER_SECOND


class RateLimiter(Protocol):
    def reserve(self, subscription_id: str, rate_limit: int, count: int, now: datetime) -> list[datetime]:
        """Take the subscription's next `count` sending slots, in order; BacklogFull past BACKLOG_LIMIT."""
        ...


def slot_spacing_us(rate_limit: int) -> int:
    """The µs between two slots: (1 s + LATE) / rate_limit, rounded up. A request goes at most LATE after
    its slot, so rate_limit + 1 of them span at least 1 s: never more than rate_limit in one second."""
    return -(-(SECOND_US + LATE // timedelta(microseconds=1)) // rate_limit)


def to_slot_us(moment: datetime) -> int:
    """`moment` in unix µs."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def slot_moment(unix_us: int) -> datetime:
    return EPOCH + timedelta(microseconds=unix_us)


def slot_text(slot: datetime) -> str:
    """A slot as the delivery record keeps it: to the millisecond, rounded up (never early)."""
    return clock.iso(slot + timedelta(microseconds=-(slot.microsecond % -1000)))


def slots_from(first_us: int, rate_limit: int, count: int) -> list[int]:
    """`count` slots from `first_us` on (unix µs)."""
    return [first_us + index * slot_spacing_us(rate_limit) for index in range(count)]


def next_free(held_next_us: int | None, now_us: int, rate_limit: int, count: int) -> tuple[int, int]:
    """(first slot, next free after `count` slots): `next = max(now, next) + count/rate`."""
    first = now_us if held_next_us is None else max(now_us, held_next_us)
    return first, first + count * slot_spacing_us(rate_limit)


@dataclass(frozen=True)
class Wait:
    """How a delivery waits for its slot: `hold_seconds` in the container, then sent; or `delay_seconds`
    on its queue; or in the wait index for the sweeper (`in_wait_index`)."""

    hold_seconds: float = 0.0
    delay_seconds: int = 0
    in_wait_index: bool = False


def wait_for(slot: datetime, now: datetime) -> Wait:
    """How a delivery whose slot is `slot` waits at `now` (a slot already past is sent at once)."""
    ahead = slot - now
    if ahead <= HOLD:
        return Wait(hold_seconds=max(0.0, ahead.total_seconds()))
    if ahead > LONGEST_DELAY:
        return Wait(in_wait_index=True)
    return Wait(delay_seconds=int((ahead - HOLD / 2).total_seconds()))


def waits_on_queue(slot: datetime, now: datetime) -> bool:
    """Whether a delivery whose slot is `slot` waits for it on its queue, as wait_for decides at
    `now` or up to QUEUE_WAIT_DECIDED later (its attempt's thread decides a moment after the batch)."""
    return HOLD < slot - now <= LONGEST_DELAY + QUEUE_WAIT_DECIDED


def group_counts(subscription_ids: Sequence[str]) -> dict[str, int]:
    """How many slots each subscription needs of a batch, in the order they first appear."""
    counts: dict[str, int] = {}
    for subscription_id in subscription_ids:
        counts[subscription_id] = counts.get(subscription_id, 0) + 1
    return counts

"""What comes after an attempt (SPEC §4), decided in one place from its result: no I/O, no clock.

The Deliverer records the attempt and then acts on the Decision: it enqueues the retry, frees a test
event's slot, and writes the subscription's health.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from hookrelay import clock
from hookrelay.outcomes import Outcome
from hookrelay.records import Delivery, DeliveryStatus, Subscription
from hookrelay.retry import DISABLE_AFTER_FAILING_FOR, MAX_QUEUE_DELAY, SWEEPER_LEASE, Failure, RetryPolicy
from hookrelay.senders import AttemptResult

GONE = 410


@dataclass(frozen=True)
class Retry:
    at: datetime
    delay: timedelta

    @property
    def queued(self) -> bool:
        """Whether its message goes back on the delivery queue now (else it waits for the sweeper)."""
        return self.delay <= MAX_QUEUE_DELAY

    @property
    def due_at(self) -> datetime:
        """When the sweeper hands it to the queue. Every retry is in the due index: a queued one only for
        the sweeper to rescue it, a lease after its time, should its message be lost."""
        return self.at + SWEEPER_LEASE if self.queued else self.at


@dataclass(frozen=True)
class Disable:
    reason: str
    at: str
    # The run of failures that ended in it (the failing-run rule), kept on the subscription.
    failing_since: str | None = None


@dataclass(frozen=True)
class MarkFailing:
    """A run of failures begins: its start is written once, not at each attempt."""

    since: str


@dataclass(frozen=True)
class ClearFailing:
    """A success ends the run of failures."""


HealthChange = Disable | MarkFailing | ClearFailing | None


@dataclass(frozen=True)
class Decision:
    # DELIVERED, RETRY_QUEUED, RETRY_SCHEDULED, FAILED or GONE.
    outcome: Outcome
    retry: Retry | None = None
    health: HealthChange = None
    # A test event's slot (one in flight per subscription) is freed once its first attempt is recorded.
    frees_test_slot: bool = False

    @property
    def status(self) -> DeliveryStatus:
        """The status the attempt leaves its delivery in."""
        if self.outcome is Outcome.DELIVERED:
            return "delivered"
        if self.retry is None:
            return "failed"
        return "pending" if self.retry.queued else "scheduled"


def decide(
    result: AttemptResult,
    delivery: Delivery,
    subscription: Subscription,
    policy: RetryPolicy,
    *,
    sent_at: datetime,
    answered_at: datetime,
) -> Decision:
    """What follows the next attempt of `delivery` (its record is only written for that one), sent at
    `sent_at` and answered with `result` at `answered_at` (or given up on then). A retry counts from the
    answer, as a Retry-After's seconds do (RFC 9110: after the response is received): a send that took
    long must not bring the retry closer."""
    health = health_change(subscription, delivery.id, result.status_code, result.delivered, clock.iso(sent_at))
    after = _after(result, delivery.attempt_count + 1, subscription.auto_retry, policy, answered_at)
    return Decision(after.outcome, after.retry, health, frees_test_slot=delivery.test)


def _after(result: AttemptResult, attempt: int, auto_retry: bool, policy: RetryPolicy, now: datetime) -> Decision:
    if result.delivered:
        return Decision(Outcome.DELIVERED)
    if result.status_code == GONE:
        return Decision(Outcome.GONE)
    failure = Failure(status_code=result.status_code, timed_out=result.timed_out, retry_after=result.retry_after)
    delay = policy.next_delay(attempt, failure, auto_retry, now)
    if delay is None:
        return Decision(Outcome.FAILED)
    retry = Retry(now + delay, delay)
    return Decision(Outcome.RETRY_QUEUED if retry.queued else Outcome.RETRY_SCHEDULED, retry)


def health_change(
    subscription: Subscription, delivery_id: str, status_code: int | None, delivered: bool, at: str
) -> HealthChange:
    """What an attempt made `at` does to its subscription's health: disabled on 410 Gone, or after failing
    every attempt for DISABLE_AFTER_FAILING_FOR (5 days); else the start or the end of a run of failures,
    or nothing (a steadily failing or succeeding endpoint costs no write per attempt)."""
    if status_code == GONE:
        return Disable(f"the endpoint answered 410 Gone to delivery {delivery_id} on {at}", at)
    if delivered:
        return ClearFailing() if subscription.failing_since else None
    if subscription.failing_since is None:
        return MarkFailing(at)
    if clock.parse_moment(at) - clock.parse_moment(subscription.failing_since) >= DISABLE_AFTER_FAILING_FOR:
        reason = f"every delivery attempt has failed since {subscription.failing_since}"
        return Disable(reason, at, failing_since=subscription.failing_since)
    return None

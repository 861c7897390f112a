"""Delivery: one attempt at one delivery — render, sign, send, log — and what comes next (SPEC §4)."""

import json
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from hookrelay import __version__, catalog, clock
from hookrelay.models import Attempt, Delivery, DeliveryStatus, Subscription
from hookrelay.observability import logger
from hookrelay.payloads import EventFacts, delivery_format, render
from hookrelay.queues import Message, Queue, delivery_message
from hookrelay.retry import DISABLE_AFTER_FAILING_FOR, MAX_QUEUE_DELAY, SWEEPER_LEASE, Failure, RetryPolicy
from hookrelay.signing import signature_headers
from hookrelay.store.deliveries import AttemptOutcome, DeliveryStore, due_shard
from hookrelay.store.subscriptions import CachedTeamSubscriptions, SubscriptionStore
from hookrelay.transport import SendResult, Transport

# A batch's sends run together, so one slow receiver does not hold up the other nine.
SEND_CONCURRENCY = 10
GONE = 410


class InvalidDeliveryMessage(ValueError):
    """A delivery-queue message that does not name a delivery and attempt."""


@dataclass(frozen=True)
class Job:
    delivery_id: str
    attempt: int


def read_job(body: str) -> Job:
    try:
        message = json.loads(body)
        job = Job(delivery_id=str(message["delivery_id"]), attempt=int(message["attempt"]))
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidDeliveryMessage(f"not a delivery message ({type(error).__name__}: {error})") from None
    if job.attempt < 1:
        raise InvalidDeliveryMessage(f"attempt {job.attempt} is not a positive number")
    return job


class Deliverer:
    def __init__(
        self,
        *,
        deliveries: DeliveryStore,
        subscriptions: CachedTeamSubscriptions,
        subscription_store: SubscriptionStore,
        transport: Transport,
        policy: RetryPolicy,
        delivery_queue: Queue,
        due_shards: int,
    ):
        self._deliveries = deliveries
        self._subscriptions = subscriptions
        self._subscription_store = subscription_store
        self._transport = transport
        self._policy = policy
        self._queue = delivery_queue
        self._due_shards = due_shards

    def deliver_batch(self, messages: Sequence[tuple[str, str]]) -> list[str]:
        """Deliver (message id, body) pairs concurrently; return the ids of those that failed."""
        if not messages:
            return []
        with ThreadPoolExecutor(max_workers=min(SEND_CONCURRENCY, len(messages))) as pool:
            outcomes = list(pool.map(self._deliver_safely, [body for _, body in messages]))
        return [message_id for (message_id, _), ok in zip(messages, outcomes, strict=True) if not ok]

    def _deliver_safely(self, body: str) -> bool:
        try:
            outcome = self.deliver(read_job(body))
        except Exception:
            logger.exception("delivery failed unexpectedly; the message will be received again")
            return False
        logger.info("delivery attempt", extra={"outcome": outcome})
        return True

    def deliver(self, job: Job) -> str:
        """Make attempt `job.attempt` of a delivery; return what happened, for logs and metrics."""
        delivery = self._deliveries.get(job.delivery_id)
        if delivery is None:
            return "unknown delivery"
        if delivery.status in ("delivered", "failed") or delivery.attempt_count >= job.attempt:
            return "already done"
        now = clock.utc_now()
        subscription = self._subscriptions.find(delivery.team_id, delivery.subscription_id)
        if subscription is None or not subscription.enabled:
            reason = "deleted" if subscription is None else "disabled"
            attempt = Attempt(at=clock.iso(now), latency_ms=0, error=f"not sent: the subscription is {reason}")
            self._deliveries.record_attempt(delivery.id, job.attempt, attempt, AttemptOutcome("failed"))
            return f"dropped: subscription {reason}"
        result = self._send(delivery, subscription, job.attempt, now)
        attempt = Attempt(
            at=clock.iso(now),
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
            response_excerpt=result.response_excerpt,
        )
        outcome, delay = self._next(delivery, subscription, job.attempt, result, now)
        if not self._deliveries.record_attempt(delivery.id, job.attempt, attempt, outcome):
            return "already done"
        if result.status_code == GONE:
            reason = f"the endpoint answered 410 Gone to delivery {delivery.id} on {attempt.at}"
            self._subscription_store.disable(subscription.team_id, subscription.id, reason, attempt.at)
            return "failed: subscription disabled (410 Gone)"
        if delay is not None and delay <= MAX_QUEUE_DELAY:
            self._queue.send(
                [Message(delivery_message(delivery.id, job.attempt + 1).body, math.ceil(delay.total_seconds()))]
            )
        self._track_failing(subscription, result.delivered, now)
        return outcome.status

    def _track_failing(self, subscription: Subscription, delivered: bool, now: datetime) -> None:
        """Disable an endpoint that has failed every attempt for DISABLE_AFTER_FAILING_FOR (5 days).

        The run's start is written once when it begins and removed on the next success, so a
        steadily failing or succeeding endpoint costs no write per attempt.
        """
        team_id, subscription_id = subscription.team_id, subscription.id
        if delivered:
            if subscription.failing_since:
                self._subscription_store.set_failing_since(team_id, subscription_id, None)
        elif subscription.failing_since is None:
            self._subscription_store.set_failing_since(team_id, subscription_id, clock.iso(now))
        elif now - clock.parse_moment(subscription.failing_since) >= DISABLE_AFTER_FAILING_FOR:
            reason = f"every delivery attempt has failed since {subscription.failing_since}"
            self._subscription_store.disable(team_id, subscription_id, reason, clock.iso(now))

    def _send(self, delivery: Delivery, subscription: Subscription, attempt: int, now: datetime) -> SendResult:
        event = delivery.event
        facts = EventFacts(
            event_id=event.event_id,
            event_name=event.event_name,
            event_time=clock.parse_moment(event.event_time),
            team_id=event.team_id,
            sandbox=event.sandbox,
            data=event.data,
            subscription_id=subscription.id,
            subscription_description=subscription.description,
            description=catalog.description(event.event_name),
        )
        rendered = render(
            facts, delivery_format(subscription.endpoint, subscription.payload_format), subscription.content_type
        )
        headers = {
            **signature_headers(
                secret_keys=[subscription.secret_key],
                delivery_id=delivery.id,
                subscription_id=subscription.id,
                attempts_before=attempt - 1,
                body=rendered.body,
                sent_at=now,
            ),
            "Content-Type": rendered.content_type,
            "User-Agent": f"hookrelay/{__version__}",
        }
        return self._transport.post(subscription.endpoint, rendered.body, headers)

    def _next(
        self, delivery: Delivery, subscription: Subscription, attempt: int, result: SendResult, now: datetime
    ) -> tuple[AttemptOutcome, timedelta | None]:
        if result.delivered:
            return AttemptOutcome("delivered"), None
        if result.status_code == GONE:
            return AttemptOutcome("failed"), None
        failure = Failure(status_code=result.status_code, timed_out=result.timed_out, retry_after=result.retry_after)
        delay = self._policy.next_delay(attempt, failure, subscription.auto_retry, now)
        if delay is None:
            return AttemptOutcome("failed"), None
        # Every retry goes in the due index. A long one waits there for the sweeper; a short one is
        # re-enqueued with a delay now, and the sweeper rescues it only if that message is lost.
        next_attempt_at = now + delay
        if delay <= MAX_QUEUE_DELAY:
            status: DeliveryStatus = "pending"
            due_at = next_attempt_at + SWEEPER_LEASE
        else:
            status, due_at = "scheduled", next_attempt_at
        shard = due_shard(delivery.id, self._due_shards)
        return AttemptOutcome(status, clock.iso(next_attempt_at), clock.iso(due_at), shard), delay

"""Delivery: one attempt at one delivery — render, sign, send, log — and what comes next (SPEC §4)."""

import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from hookrelay import clock
from hookrelay.errors import Unavailable
from hookrelay.observability import log_failure, logger
from hookrelay.outgoing import render_delivery, unsigned_headers
from hookrelay.queues import Queue, delivery_message
from hookrelay.rate_limit import (
    BACKLOG_LIMIT,
    HOLD,
    LATE,
    BacklogFull,
    RateLimiter,
    group_counts,
    slot_text,
    wait_for,
)
from hookrelay.records import Attempt, Delivery, DeliveryOrigin, DeliveryStatus, Subscription, delivery_id
from hookrelay.retry import DISABLE_AFTER_FAILING_FOR, MAX_QUEUE_DELAY, SWEEPER_LEASE, Failure, RetryPolicy
from hookrelay.signing import signature_headers
from hookrelay.store.deliveries import AttemptOutcome, DeliveryStore
from hookrelay.store.due_retries import due_shard, wait_shard
from hookrelay.store.subscriptions import CachedTeamSubscriptions, SubscriptionStore
from hookrelay.time_budget import ANSWER_SECONDS, TimeBudget
from hookrelay.transport import SendResult, Transport

# A batch's sends run together, so one slow receiver does not hold up the other nine.
SEND_CONCURRENCY = 10
GONE = 410
# The AWS calls an attempt makes besides its send, one after the other at worst: its rate limit's slot
# before it; after it, recording it, freeing a test event's slot, enqueueing its retry and writing its
# endpoint's health.
AWS_CALLS_PER_ATTEMPT = 5


def attempt_seconds(send_deadline_seconds: float, aws_call_seconds: float) -> float:
    """The longest an attempt can take, from its start to the batch's answer: its send's deadline, each of
    its AWS calls at its worst (`aws_call_seconds`, AwsCallLimits.worst_call_seconds), and the answer.

    An attempt starts only with more than this left: the function's Timeout must never come between a
    send and its record, or the message would come back and be sent again.
    """
    return send_deadline_seconds + AWS_CALLS_PER_ATTEMPT * aws_call_seconds + ANSWER_SECONDS


class InvalidDeliveryMessage(ValueError):
    """A delivery-queue message that does not name a delivery and attempt."""


# AWS calls that did not answer in time or were refused for now (botocore's timeouts, the stores'
# Unavailable): nothing is wrong with the message or the code, so they are logged as an outage, without
# a traceback, and the message is received again.
AWS_NOT_NOW = (ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError, Unavailable)
# The outcome of a message whose handling raised: it fails alone and SQS receives it again.
UNEXPECTED = "error"
# The outcome of a message waiting on the queue for its subscription's rate-limit slot.
RATE_LIMITED = "waiting"
# How the error of an attempt recorded without a send begins (its subscription was deleted or disabled).
NOT_SENT = "not sent: "
# The outcome of a message left untouched (nothing sent, nothing recorded) because too little of the
# invocation's time was left for its attempt: like UNEXPECTED, it comes back through the batch's answer.
NOT_STARTED = "not started: too little time left"


@dataclass(frozen=True)
class Report:
    """What handling one delivery-queue message did: an outcome, and the attempt's result if one was made.

    Outcomes: delivered, pending (retry queued), scheduled (retry in the sweeper's index), failed...
    (for good), dropped... (not sent), already done, unknown delivery, RATE_LIMITED, NOT_STARTED or
    UNEXPECTED.
    """

    message_id: str
    outcome: str
    result: SendResult | None = None
    subscription_id: str | None = None
    event_id: str | None = None

    @property
    def comes_back(self) -> bool:
        """Whether SQS must receive the message again (the batch's answer names it)."""
        return self.outcome in (UNEXPECTED, NOT_STARTED)


@dataclass(frozen=True)
class Job:
    delivery_id: str
    attempt: int
    # The rate-limit slot an earlier handling of this message took (it waited on the queue for it).
    slot_at: str | None = None
    # What the first attempt records the delivery with (its messages carry it: fan-out writes no record).
    origin: DeliveryOrigin | None = None


def first_attempt_origins(jobs: Sequence[Job]) -> dict[str, DeliveryOrigin]:
    """The origins of first attempts: only a first attempt may find its delivery not recorded yet."""
    return {job.delivery_id: job.origin for job in jobs if job.origin and job.attempt == 1}


@dataclass(frozen=True)
class _Ready:
    """A message whose delivery record has been read: what an attempt starts from."""

    message_id: str
    job: Job
    delivery: Delivery
    # Its rate limit's slot: held by the record, or taken for this batch; None for a subscription without
    # a rate limit, or past its backlog limit (`backlog_full`).
    slot: datetime | None = None
    backlog_full: bool = False


def _logged(job: Job, report: Report) -> Report:
    """Log an attempt that did not deliver; delivered ones are counted by metrics and kept on the record."""
    if report.outcome == "delivered":
        return report
    result = report.result
    logger.info(
        "delivery attempt",
        extra={
            "message_id": report.message_id,
            "delivery_id": job.delivery_id,
            "attempt": job.attempt,
            "subscription_id": report.subscription_id,
            "event_id": report.event_id,
            "outcome": report.outcome,
            "status_code": result.status_code if result else None,
            "latency_ms": result.latency_ms if result else None,
            "error": result.error if result else None,
        },
    )
    return report


def _held_slot(ready: _Ready) -> datetime | None:
    """The rate-limit slot the message's attempt holds, if any: the record's (status waiting, a slot
    further than a queue delay when taken), else the message's own (one that waited on the queue)."""
    delivery = ready.delivery
    if delivery.status == "waiting" and delivery.attempt_count == ready.job.attempt - 1 and delivery.next_attempt_at:
        return clock.parse_moment(delivery.next_attempt_at)
    return clock.parse_moment(ready.job.slot_at) if ready.job.slot_at else None


def _usable_slot(ready: _Ready, now: datetime) -> datetime | None:
    """The held slot, unless it has passed by more than LATE (the message came late: sent now, it could
    meet the next slots' requests in one second; it takes a new slot instead)."""
    held = _held_slot(ready)
    return held if held is not None and now - held <= LATE else None


def _outcome(started: "Future[Report] | Report") -> Report:
    return started if isinstance(started, Report) else started.result()


def read_job(body: str) -> Job:
    try:
        message = json.loads(body)
        origin = message.get("origin")
        slot_at = message.get("slot_at")
        job = Job(
            delivery_id=str(message["delivery_id"]),
            attempt=int(message["attempt"]),
            slot_at=clock.iso(clock.parse_moment(str(slot_at))) if slot_at is not None else None,
            origin=DeliveryOrigin.parse(origin) if origin is not None else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidDeliveryMessage(f"not a delivery message ({type(error).__name__}: {error})") from None
    if job.origin and delivery_id(job.origin.event_id, job.origin.subscription_id) != job.delivery_id:
        raise InvalidDeliveryMessage("its origin names another delivery")
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
        rate_limiter: RateLimiter,
        aws_call_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """`aws_call_seconds`: the longest one AWS call can take (AwsCallLimits.worst_call_seconds)."""
        self._deliveries = deliveries
        self._subscriptions = subscriptions
        self._subscription_store = subscription_store
        self._transport = transport
        self._policy = policy
        self._queue = delivery_queue
        self._due_shards = due_shards
        self._rate_limiter = rate_limiter
        self._sleep = sleep
        self._attempt_seconds = attempt_seconds(transport.deadline_seconds, aws_call_seconds)

    def deliver_batch(self, messages: Sequence[tuple[str, str]], budget: TimeBudget) -> list[Report]:
        """Deliver (message id, body) pairs concurrently; a report for each, in order.

        The batch's records are read first, so that the subscriptions of all their teams are checked
        against the teams' versions in one read before any is sent. An attempt starts only while
        `budget` allows it (attempt_seconds): the others are NOT_STARTED, left for a later invocation.
        """
        if not messages:
            return []
        read = self._read_batch(messages)
        with ThreadPoolExecutor(max_workers=min(SEND_CONCURRENCY, len(messages))) as pool:
            ready = [each for each in read if isinstance(each, _Ready)]
            # A team whose subscriptions cannot be read fails its own messages (find raises Unavailable in
            # their attempts), without taking slots.
            unreadable = self._subscriptions.refresh({each.delivery.team_id for each in ready})
            started: dict[int, Future[Report] | Report] = {
                id(each): pool.submit(self._attempt_in_time, budget, each)
                for each in ready
                if each.delivery.team_id in unreadable
            }
            readable = [each for each in ready if each.delivery.team_id not in unreadable]
            # Those holding their slots (or needing none) start at once; the others once their slots are
            # taken, which may wait for the container's turn to write the rate# item.
            for group in ([each for each in readable if not self._needs_slot(each)], readable):
                unstarted = [each for each in group if id(each) not in started]
                for each, slotted in zip(unstarted, self._with_slots(unstarted), strict=True):
                    started[id(each)] = (
                        slotted if isinstance(slotted, Report) else pool.submit(self._attempt_in_time, budget, slotted)
                    )
            return [each if isinstance(each, Report) else _outcome(started[id(each)]) for each in read]

    def deliver(self, job: Job, message_id: str = "") -> Report:
        """Make attempt `job.attempt` of a delivery, as a batch of one; report what happened."""
        delivery = self._deliveries.get_many([job.delivery_id], first_attempt_origins([job])).get(job.delivery_id)
        if delivery is None:
            return Report(message_id, "unknown delivery")
        self._subscriptions.refresh([delivery.team_id])
        ready = self._with_slots([_Ready(message_id, job, delivery)])[0]
        return ready if isinstance(ready, Report) else self._attempt(ready)

    def _read_batch(self, messages: Sequence[tuple[str, str]]) -> list[_Ready | Report]:
        """Each message's job and delivery (with its event): one read for the whole batch when every message
        names its event (first attempts), two otherwise."""
        jobs: list[tuple[str, Job | Report]] = []
        for message_id, body in messages:
            try:
                jobs.append((message_id, read_job(body)))
            except InvalidDeliveryMessage as error:
                logger.error("not a delivery message", extra={"message_id": message_id, "reason": str(error)})
                jobs.append((message_id, Report(message_id, UNEXPECTED)))
        wanted = [job for _, job in jobs if isinstance(job, Job)]
        try:
            found = self._deliveries.get_many([job.delivery_id for job in wanted], first_attempt_origins(wanted))
        except Exception as error:
            log_failure("reading the batch's deliveries failed; its messages will be received again", error)
            return [Report(message_id, UNEXPECTED) for message_id, _ in messages]
        read: list[_Ready | Report] = []
        # Two messages for one attempt in a batch (a repeated fan-out, an SQS duplicate) would both send.
        seen: set[tuple[str, int]] = set()
        for message_id, job in jobs:
            if isinstance(job, Report):
                read.append(job)
            elif (job.delivery_id, job.attempt) in seen:
                read.append(_logged(job, Report(message_id, "already done")))
            elif (delivery := found.get(job.delivery_id)) is None:
                read.append(_logged(job, Report(message_id, "unknown delivery")))
            else:
                read.append(_Ready(message_id, job, delivery))
            if isinstance(job, Job):
                seen.add((job.delivery_id, job.attempt))
        return read

    def _attempt_in_time(self, budget: TimeBudget, ready: _Ready) -> Report:
        job = ready.job
        if not budget.allows(self._attempt_seconds + (HOLD.total_seconds() if ready.slot else 0)):
            return _logged(job, Report(ready.message_id, NOT_STARTED))
        correlation: dict[str, Any] = {
            "message_id": ready.message_id,
            "delivery_id": job.delivery_id,
            "attempt": job.attempt,
        }
        try:
            report = self._attempt(ready)
        except AWS_NOT_NOW as error:
            log_failure(
                "AWS did not answer a call of this delivery in time; the message will be received again",
                error,
                **correlation,
                error=f"{type(error).__name__}: {error}",
            )
            return Report(ready.message_id, UNEXPECTED)
        except Exception as error:
            log_failure("delivery failed unexpectedly; the message will be received again", error, **correlation)
            return Report(ready.message_id, UNEXPECTED)
        return _logged(job, report)

    def _attempt(self, ready: _Ready) -> Report:
        """Make the attempt with the subscription as the cache has it (refreshed for this batch)."""
        job, delivery = ready.job, ready.delivery
        report = functools.partial(
            Report, ready.message_id, subscription_id=delivery.subscription_id, event_id=delivery.event_id
        )
        if delivery.status in ("delivered", "failed") or delivery.attempt_count >= job.attempt:
            if delivery.attempt_count == job.attempt:
                self._enqueue_retry_after_recorded(delivery)
                self._keep_health_after_recorded(delivery)
            return report("already done")
        now = clock.utc_now()
        subscription = self._subscriptions.find(delivery.team_id, delivery.subscription_id)
        if subscription is None or not subscription.enabled:
            reason = "deleted" if subscription is None else "disabled"
            attempt = Attempt(at=clock.iso(now), latency_ms=0, error=f"{NOT_SENT}the subscription is {reason}")
            self._deliveries.record_attempt(delivery, job.attempt, attempt, AttemptOutcome("failed"))
            self._end_test(delivery)
            return report(f"dropped: subscription {reason}")
        if subscription.rate_limit and (waiting := self._wait_for_slot(ready, now)):
            return report(waiting)
        now = clock.utc_now()
        result = self._send(delivery, subscription, job.attempt, now)
        attempt = Attempt(
            at=clock.iso(now),
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
            response_excerpt=result.response_excerpt,
        )
        outcome, delay = self._next(delivery, subscription, job.attempt, result, now)
        if not self._deliveries.record_attempt(delivery, job.attempt, attempt, outcome):
            return report("already done")
        self._end_test(delivery)
        if delay is not None and delay <= MAX_QUEUE_DELAY:
            self._enqueue_retry(delivery, job.attempt + 1, delay)
        self._keep_health(delivery.id, subscription, attempt, result.delivered)
        if result.status_code == GONE:
            return report("failed: subscription disabled (410 Gone)", result)
        return report(outcome.status, result)

    def _with_slots(self, ready: Sequence[_Ready]) -> list[_Ready | Report]:
        """The batch's messages with their rate limit's slots: the one a record holds for its attempt, or
        the next ones of its subscription, taken for the batch's messages together (one write each
        subscription). A subscription's whose slots could not be taken come back (UNEXPECTED)."""
        now = clock.utc_now()
        rate_limits = {each.delivery.subscription_id: rate for each in ready if (rate := self._needs_slot(each))}
        counts = group_counts([each.delivery.subscription_id for each in ready if self._needs_slot(each)])
        slots: dict[str, list[datetime]] = {}
        for subscription_id, count in counts.items():
            try:
                slots[subscription_id] = self._rate_limiter.reserve(
                    subscription_id, rate_limits[subscription_id], count, now
                )
            except BacklogFull:
                slots[subscription_id] = []
            except Exception as error:
                log_failure(
                    "taking rate-limit slots failed; their messages will be received again",
                    error,
                    subscription_id=subscription_id,
                )
        answered: list[_Ready | Report] = []
        for each in ready:
            subscription_id = each.delivery.subscription_id
            if held := _usable_slot(each, now):
                answered.append(dataclasses.replace(each, slot=held))
            elif not self._needs_slot(each):
                answered.append(each)
            elif subscription_id not in slots:
                answered.append(Report(each.message_id, UNEXPECTED))
            elif slots[subscription_id]:
                answered.append(dataclasses.replace(each, slot=slots[subscription_id].pop(0)))
            else:
                answered.append(dataclasses.replace(each, backlog_full=True))
        return answered

    def _needs_slot(self, ready: _Ready) -> int | None:
        """The rate limit of a message that needs a new slot: its attempt is to be made, to a rate-limited
        subscription, and its record holds none for it."""
        delivery = ready.delivery
        if delivery.status in ("delivered", "failed") or delivery.attempt_count >= ready.job.attempt:
            return None
        if _usable_slot(ready, clock.utc_now()):
            return None
        subscription = self._subscriptions.find(delivery.team_id, delivery.subscription_id)
        return subscription.rate_limit if subscription is not None and subscription.enabled else None

    def _wait_for_slot(self, ready: _Ready, now: datetime) -> str | None:
        """Wait for the attempt's rate-limit slot: in the container when it is near (returns None: send),
        else on the delivery queue, the slot in its message, or, further than a queue delay, in the wait
        index, the slot on its record (returns the outcome). A message whose attempt starts more than LATE
        after its slot goes back on the queue to take a new one. Past the backlog limit, the attempt is
        recorded failed, not sent."""
        job, delivery = ready.job, ready.delivery
        if ready.slot is not None and now - ready.slot > LATE:
            # Back on the queue at once, without its slot: its next batch takes a new one with the others'.
            self._queue.send([delivery_message(delivery.id, job.attempt, team_id=delivery.team_id, origin=job.origin)])
            return RATE_LIMITED
        if ready.backlog_full or ready.slot is None:  # None: only past the backlog limit (_with_slots)
            error = f"{NOT_SENT}the rate limit's slots are taken {BACKLOG_LIMIT // timedelta(hours=1)} h ahead"
            attempt = Attempt(at=clock.iso(now), latency_ms=0, error=error)
            self._deliveries.record_attempt(delivery, job.attempt, attempt, AttemptOutcome("failed"))
            self._end_test(delivery)
            return "dropped: rate limit backlog full"
        slot = ready.slot
        wait = wait_for(slot, now)
        if wait.in_wait_index and _held_slot(ready) != slot:
            held = self._hold_slot(ready, slot)
            if held is None:
                return "already done"
            slot = clock.parse_moment(held)
            wait = wait_for(slot, now)
        if wait.in_wait_index:
            return RATE_LIMITED  # the sweeper hands it to the queue within a queue delay of its slot
        if wait.delay_seconds:
            message = delivery_message(
                delivery.id,
                job.attempt,
                team_id=delivery.team_id,
                delay_seconds=wait.delay_seconds,
                origin=job.origin,
                slot_at=slot_text(slot),
            )
            self._queue.send([message])
            return RATE_LIMITED
        self._sleep(wait.hold_seconds)
        return None

    def _hold_slot(self, ready: _Ready, slot: datetime) -> str | None:
        """Keep a slot further than a queue delay on the record, in the wait index (in place of one the
        message came too late for); the slot the attempt holds, None when it was recorded meanwhile."""
        delivery, attempt = ready.delivery, ready.job.attempt
        late = delivery.next_attempt_at if delivery.status == "waiting" else None
        shard = wait_shard(delivery.id, self._due_shards)
        return self._deliveries.hold_slot(
            delivery, attempt, slot_text(slot), due_at=slot_text(slot), due_shard=shard, replacing=late
        )

    def _enqueue_retry(self, delivery: Delivery, attempt: int, delay: timedelta) -> None:
        self._queue.send(
            [
                delivery_message(
                    delivery.id, attempt, team_id=delivery.team_id, delay_seconds=math.ceil(delay.total_seconds())
                )
            ]
        )

    def _enqueue_retry_after_recorded(self, delivery: Delivery) -> None:
        """A message for the attempt the record ends with, which left a retry for the queue: its first
        handling may have stopped between recording the attempt and sending the retry's message (an SQS
        call that did not answer in time), which would leave the delivery pending until the sweeper's
        lease runs out (15 minutes). Sent again; a second message for that retry is answered
        "already done", so an SQS duplicate of a failing delivery's message costs one more send."""
        if delivery.status != "pending" or delivery.next_attempt_at is None:
            return
        delay = max(clock.parse_moment(delivery.next_attempt_at) - clock.utc_now(), timedelta(0))
        self._enqueue_retry(delivery, delivery.attempt_count + 1, delay)

    def _end_test(self, delivery: Delivery) -> None:
        if delivery.test:
            self._deliveries.release_test_slot(delivery.subscription_id, delivery.id)

    def _keep_health(self, delivery_id: str, subscription: Subscription, attempt: Attempt, delivered: bool) -> None:
        """The subscription's health writes an attempt calls for: disabled on 410 Gone, else its run of failures.

        Made after the attempt is recorded, so that a send is never repeated for their sake. One that
        DynamoDB still refuses after the store's retries raises: the message fails and comes back, and
        its attempt, found recorded, makes them then (`_keep_health_after_recorded`).
        """
        if attempt.status_code == GONE:
            reason = f"the endpoint answered 410 Gone to delivery {delivery_id} on {attempt.at}"
            self._disable(subscription, reason, attempt.at)
        else:
            self._track_failing(subscription, delivered, clock.parse_moment(attempt.at))

    def _keep_health_after_recorded(self, delivery: Delivery) -> None:
        """A message for the attempt the record ends with: its first handling may have failed after
        recording it (a health write DynamoDB kept refusing), so make the attempt's health writes now.

        Decided from the cache, refreshed for this batch: a write that was made (or made moot by a later
        attempt's) leaves nothing to do, so SQS's duplicates cost no write.
        """
        subscription = self._subscriptions.find(delivery.team_id, delivery.subscription_id)
        if subscription is None or not subscription.enabled or not delivery.attempts:
            return
        attempt = delivery.attempts[-1]
        if not (attempt.error or "").startswith(NOT_SENT):
            self._keep_health(delivery.id, subscription, attempt, delivery.status == "delivered")

    def _track_failing(self, subscription: Subscription, delivered: bool, at: datetime) -> None:
        """Disable an endpoint that has failed every attempt for DISABLE_AFTER_FAILING_FOR (5 days).

        The run's start is written once when it begins and removed on the next success, so a
        steadily failing or succeeding endpoint costs no write per attempt.
        """
        if delivered:
            if subscription.failing_since:
                self._set_failing_since(subscription, None)
        elif subscription.failing_since is None:
            self._set_failing_since(subscription, clock.iso(at))
        elif at - clock.parse_moment(subscription.failing_since) >= DISABLE_AFTER_FAILING_FOR:
            reason = f"every delivery attempt has failed since {subscription.failing_since}"
            self._disable(subscription, reason, clock.iso(at), failing_since=subscription.failing_since)

    # Health writes answer with the stored subscription when the cached copy they were decided from is out
    # of date (another container wrote first): kept, so that this container decides from it next time.
    def _disable(self, subscription: Subscription, reason: str, at: str, failing_since: str | None = None) -> None:
        stored = self._subscription_store.disable(
            subscription.team_id, subscription.id, reason, at, failing_since=failing_since
        )
        if stored is not None:
            self._subscriptions.remember(stored)

    def _set_failing_since(self, subscription: Subscription, since: str | None) -> None:
        stored = self._subscription_store.set_failing_since(subscription.team_id, subscription.id, since)
        if stored is not None:
            self._subscriptions.remember(stored)

    def _send(self, delivery: Delivery, subscription: Subscription, attempt: int, now: datetime) -> SendResult:
        rendered = render_delivery(delivery, subscription)
        headers = {
            **unsigned_headers(delivery, subscription, rendered),
            **signature_headers(
                secret_keys=subscription.signing_secrets(clock.iso(now)),
                private_keys=subscription.signing_private_keys(clock.iso(now)),
                delivery_id=delivery.id,
                subscription_id=subscription.id,
                attempts_before=attempt - 1,
                body=rendered.body,
                sent_at=now,
            ),
        }
        # The header names only: the values of three of them are signatures.
        logger.debug("sending", extra={"headers": sorted(headers), "body_bytes": len(rendered.body)})
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


def delivery_metrics(reports: Sequence[Report]) -> list[tuple[str, float, MetricUnit]]:
    """The EMF metrics of a batch (names the template's alarms and dashboard read)."""
    attempts = [report.result for report in reports if report.result is not None]
    counts = {
        "DeliveryMessagesReceived": len(reports),
        "DeliveryAttempts": len(attempts),
        "DeliveryAttemptsFailed": sum(not result.delivered for result in attempts),
        "DeliveriesDelivered": sum(report.outcome == "delivered" for report in reports),
        "DeliveryRetriesScheduled": sum(report.outcome in ("pending", "scheduled") for report in reports),
        "DeliveriesFailed": sum(report.outcome.startswith("failed") for report in reports),
        "DeliveriesNotSent": sum(report.outcome.startswith("dropped") for report in reports),
        "DeliveriesRateLimited": sum(report.outcome == RATE_LIMITED for report in reports),
        "DeliveriesNotStarted": sum(report.outcome == NOT_STARTED for report in reports),
        "DeliveryErrors": sum(report.outcome == UNEXPECTED for report in reports),
    }
    latencies = [("DeliveryLatency", float(result.latency_ms), MetricUnit.Milliseconds) for result in attempts]
    # A count left at 0 is left out: each is billed as log bytes, and the alarm fills a missing one with 0.
    return [(name, float(count), MetricUnit.Count) for name, count in counts.items() if count] + latencies

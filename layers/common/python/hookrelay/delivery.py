"""Delivery: one attempt at one delivery, its I/O in order (SPEC §4): read the record, admit it under its rate
limit (hookrelay.admission), send it (hookrelay.senders), record it, act on what hookrelay.decisions decides."""

import functools
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from hookrelay import clock
from hookrelay.addresses import masked
from hookrelay.admission import Admission, Ready, is_done
from hookrelay.decisions import Decision, decide, health_change
from hookrelay.delivery_jobs import InvalidDeliveryMessage, Job, first_attempt_origins, read_job
from hookrelay.errors import Unavailable
from hookrelay.health import SubscriptionHealth
from hookrelay.observability import log_failure, logger
from hookrelay.outcomes import Outcome, Report, logged
from hookrelay.queues import Queue, delivery_message
from hookrelay.rate_limit import BACKLOG_LIMIT, RateLimiter
from hookrelay.records import ATTEMPT_ERROR_BYTES, ATTEMPT_URL_BYTES, Attempt, Delivery, Subscription, shortened
from hookrelay.retry import RetryPolicy
from hookrelay.senders import Senders
from hookrelay.signed_requests import signed_request
from hookrelay.slow_lane import SlowLane
from hookrelay.store.cached_subscriptions import CachedTeamSubscriptions
from hookrelay.store.deliveries import AttemptOutcome, DeliveryStore
from hookrelay.store.due_retries import due_shard
from hookrelay.store.subscriptions import SubscriptionStore
from hookrelay.time_budget import UNLIMITED, TimeBudget, attempt_seconds, hold_back_seconds

# A batch's sends run together, so one slow receiver does not hold up the other nine.
SEND_CONCURRENCY = 10
# AWS calls that did not answer in time or were refused for now (botocore's timeouts, the stores'
# Unavailable): nothing is wrong with the message or the code, so they are logged as an outage, without
# a traceback, and the message is received again.
AWS_NOT_NOW = (ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError, Unavailable)
# How the error of an attempt recorded without a send begins, and why each such attempt was not sent.
NOT_SENT = "not sent: "
NOT_SENT_BECAUSE = {
    Outcome.DROPPED_DELETED: "the subscription is deleted",
    Outcome.DROPPED_DISABLED: "the subscription is disabled",
    Outcome.DROPPED_BACKLOG_FULL: f"the rate limit's slots are taken {BACKLOG_LIMIT // timedelta(hours=1)} h ahead",
}


def _outcome(started: "Future[Report] | Report") -> Report:
    return started if isinstance(started, Report) else started.result()


class Deliverer:
    def __init__(
        self,
        *,
        deliveries: DeliveryStore,
        subscriptions: CachedTeamSubscriptions,
        subscription_store: SubscriptionStore,
        senders: Senders,
        policy: RetryPolicy,
        delivery_queue: Queue,
        slow_lane: SlowLane,
        due_shards: int,
        rate_limiter: RateLimiter,
        aws_call_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """`aws_call_seconds`: the longest one AWS call can take (AwsCallLimits.worst_call_seconds).
        `senders`: each attempt is sent by the one serving its endpoint, within that sender's deadline.
        `slow_lane`: where the messages of endpoints that answered slowly go (hookrelay.slow_lane)."""
        self._deliveries = deliveries
        self._subscriptions = subscriptions
        self._senders = senders
        self._policy = policy
        self._queue = delivery_queue
        self._slow_lane = slow_lane
        self._due_shards = due_shards
        self._attempt_seconds = attempt_seconds(senders.deadline_seconds, aws_call_seconds)
        self._hold_back_seconds = hold_back_seconds(aws_call_seconds)
        self._admission = Admission(
            rate_limiter=rate_limiter,
            subscriptions=subscriptions,
            deliveries=deliveries,
            due_shards=due_shards,
            sleep=sleep,
        )
        self._health = SubscriptionHealth(subscription_store, subscriptions)

    def deliver_batch(
        self, messages: Sequence[tuple[str, str]], budget: TimeBudget, *, from_slow_lane: bool = False
    ) -> list[Report]:
        """Deliver (message id, body) pairs concurrently; a report for each, in order.

        The batch's records are read first, so that the subscriptions of all their teams are checked
        against the teams' versions in one read before any is sent. An attempt starts only while
        `budget` allows it (attempt_seconds): the others are NOT_STARTED, left for a later invocation.
        Those of slow endpoints are moved to the slow lane once the others' attempts have started, unless they
        come `from_slow_lane`.
        """
        if not messages:
            return []
        read = self._read_batch(messages, self._slow_lane.queue if from_slow_lane else self._queue)
        slow = [] if from_slow_lane else self._slow_lane.of_slow_endpoints(read)
        moving = {id(each) for each in slow}
        with ThreadPoolExecutor(max_workers=min(SEND_CONCURRENCY, len(messages))) as pool:
            ready = [each for each in read if isinstance(each, Ready) and id(each) not in moving]
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
            for group in ([each for each in readable if not self._admission.needs_slot(each)], readable):
                unstarted = [each for each in group if id(each) not in started]
                for each, slotted in zip(unstarted, self._admission.with_slots(unstarted), strict=True):
                    started[id(each)] = (
                        slotted if isinstance(slotted, Report) else pool.submit(self._attempt_in_time, budget, slotted)
                    )
            # Moved once the others' attempts are under way: a slow endpoint's burst in the batch does not hold
            # up the others' sends for its move.
            started.update(zip(map(id, slow), self._slow_lane.move(slow, dict(messages)), strict=True))
            reports = [each if isinstance(each, Report) else _outcome(started[id(each)]) for each in read]
        self._slow_lane.end_batch(from_slow_lane=from_slow_lane, budget=budget)
        return reports

    def deliver(self, job: Job, message_id: str = "") -> Report:
        """Make attempt `job.attempt` of a delivery, as a batch of one; report what happened."""
        delivery = self._deliveries.get_many([job.delivery_id], first_attempt_origins([job])).get(job.delivery_id)
        if delivery is None:
            return Report(message_id, Outcome.UNKNOWN_DELIVERY)
        self._subscriptions.refresh([delivery.team_id])
        ready = self._admission.with_slots([Ready(message_id, job, delivery, self._queue)])[0]
        return ready if isinstance(ready, Report) else self._attempt(ready)

    def _read_batch(self, messages: Sequence[tuple[str, str]], lane: Queue) -> list[Ready | Report]:
        """Each message's job and delivery (with its event), of `lane`: one read for the whole batch when every
        message names its event (first attempts), two otherwise."""
        jobs: list[tuple[str, Job | Report]] = []
        for message_id, body in messages:
            try:
                jobs.append((message_id, read_job(body)))
            except InvalidDeliveryMessage as error:
                logger.error("not a delivery message", extra={"message_id": message_id, "reason": str(error)})
                jobs.append((message_id, Report(message_id, Outcome.ERROR)))
        wanted = [job for _, job in jobs if isinstance(job, Job)]
        try:
            found = self._deliveries.get_many([job.delivery_id for job in wanted], first_attempt_origins(wanted))
        except Exception as error:
            log_failure("reading the batch's deliveries failed; its messages will be received again", error)
            return [Report(message_id, Outcome.ERROR) for message_id, _ in messages]
        read: list[Ready | Report] = []
        # Two messages for one attempt in a batch (a repeated fan-out, an SQS duplicate) would both send.
        seen: set[tuple[str, int]] = set()
        for message_id, job in jobs:
            if isinstance(job, Report):
                read.append(job)
            elif (job.delivery_id, job.attempt) in seen:
                read.append(logged(job, Report(message_id, Outcome.ALREADY_DONE)))
            elif (delivery := found.get(job.delivery_id)) is None:
                read.append(logged(job, Report(message_id, Outcome.UNKNOWN_DELIVERY)))
            else:
                read.append(Ready(message_id, job, delivery, lane))
            if isinstance(job, Job):
                seen.add((job.delivery_id, job.attempt))
        return read

    def _attempt_in_time(self, budget: TimeBudget, ready: Ready) -> Report:
        """The attempt, if `budget` allows it (with a rate-limit slot, maybe far ahead: holding it back)."""
        job = ready.job
        if not budget.allows(self._hold_back_seconds if ready.slot else self._attempt_seconds):
            return logged(job, Report(ready.message_id, Outcome.NOT_STARTED))
        correlation: dict[str, Any] = {
            "message_id": ready.message_id,
            "delivery_id": job.delivery_id,
            "attempt": job.attempt,
        }
        try:
            report = self._attempt(ready, budget)
        except AWS_NOT_NOW as error:
            log_failure(
                "AWS did not answer a call of this delivery in time; the message will be received again",
                error,
                **correlation,
                error=f"{type(error).__name__}: {error}",
            )
            return Report(ready.message_id, Outcome.ERROR)
        except Exception as error:
            log_failure("delivery failed unexpectedly; the message will be received again", error, **correlation)
            return Report(ready.message_id, Outcome.ERROR)
        return logged(job, report)

    def _attempt(self, ready: Ready, budget: TimeBudget = UNLIMITED) -> Report:
        """Make the attempt with the subscription as the cache has it (refreshed for this batch), if sending it
        fits `budget` (NOT_STARTED otherwise)."""
        job, delivery = ready.job, ready.delivery
        report = functools.partial(
            Report, ready.message_id, subscription_id=delivery.subscription_id, event_id=delivery.event_id
        )
        if is_done(ready):
            self._follow_up_recorded(delivery, job.attempt)
            return report(Outcome.ALREADY_DONE)
        now = clock.utc_now()
        subscription = self._subscriptions.find(delivery.team_id, delivery.subscription_id)
        if subscription is None or not subscription.enabled:
            dropped = Outcome.DROPPED_DELETED if subscription is None else Outcome.DROPPED_DISABLED
            return report(self._held_back(ready, dropped, now))
        if subscription.rate_limit and (waiting := self._admission.wait_for_slot(ready, now)):
            return report(self._held_back(ready, waiting, now))
        if not budget.allows(self._attempt_seconds):  # the Timeout must not come between the send and its record
            return report(Outcome.NOT_STARTED)
        now = clock.utc_now()
        request = signed_request(delivery, subscription, job.attempt, now)
        sender = self._senders.for_endpoint(subscription.endpoint)
        result = sender.send(request, sender.deadline_seconds)
        self._slow_lane.observe(subscription, result.latency_ms)
        attempt = Attempt(
            at=clock.iso(now),
            url=shortened(masked(subscription.endpoint), ATTEMPT_URL_BYTES),
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=shortened(result.error, ATTEMPT_ERROR_BYTES) if result.error else None,
            response_excerpt=result.response_excerpt,
        )
        decision = decide(result, delivery, subscription, self._policy, sent_at=now, answered_at=clock.utc_now())
        if not self._deliveries.record_attempt(delivery, job.attempt, attempt, self._recorded_as(delivery, decision)):
            # Another handling of the message (an SQS duplicate) recorded it first, and may have stopped before
            # its follow-ups; they share the message, which this handling's success deletes.
            if recorded := self._deliveries.get_many([delivery.id], {}).get(delivery.id):
                self._follow_up_recorded(recorded, job.attempt)
            return report(Outcome.ALREADY_DONE)
        self._act_on(decision, delivery, job.attempt + 1, subscription)
        return report(decision.outcome, result)

    def _held_back(self, ready: Ready, outcome: Outcome, now: datetime) -> Outcome:
        """An attempt not made now: a dropped one is recorded failed, without a send; one waiting for its
        slot (or found recorded meanwhile) has nothing to record."""
        if outcome in NOT_SENT_BECAUSE:
            attempt = Attempt(at=clock.iso(now), latency_ms=0, error=NOT_SENT + NOT_SENT_BECAUSE[outcome])
            self._deliveries.record_attempt(ready.delivery, ready.job.attempt, attempt, AttemptOutcome("failed"))
            self._end_test(ready.delivery)
        return outcome

    def _recorded_as(self, delivery: Delivery, decision: Decision) -> AttemptOutcome:
        if decision.retry is None:
            return AttemptOutcome(decision.status)
        retry = decision.retry
        shard = due_shard(delivery.id, self._due_shards)
        return AttemptOutcome(decision.status, clock.iso(retry.at), clock.iso(retry.due_at), shard)

    def _act_on(self, decision: Decision, delivery: Delivery, next_attempt: int, subscription: Subscription) -> None:
        """The writes after an attempt is recorded, so that a send is never repeated for their sake."""
        if decision.frees_test_slot:
            self._deliveries.release_test_slot(delivery.subscription_id, delivery.id)
        if decision.retry is not None and decision.retry.queued:
            self._enqueue_retry(delivery, next_attempt, decision.retry.delay)
        self._health.write(subscription, decision.health)

    def _enqueue_retry(self, delivery: Delivery, attempt: int, delay: timedelta) -> None:
        seconds = math.ceil(delay.total_seconds())
        message = delivery_message(delivery.id, attempt, team_id=delivery.team_id, delay_seconds=seconds)
        self._slow_lane.queue_for(delivery.subscription_id, self._queue).send([message])

    def _follow_up_recorded(self, delivery: Delivery, attempt: int) -> None:
        if delivery.attempt_count == attempt:  # its writes after the record, for `attempt` was its last
            self._enqueue_retry_after_recorded(delivery)
            self._keep_health_after_recorded(delivery)

    def _enqueue_retry_after_recorded(self, delivery: Delivery) -> None:
        """The retry the record's last attempt left for the queue, sent again: the handling that recorded it
        may have stopped before sending it (SQS did not answer in time), leaving the delivery pending until
        the sweeper's lease ran out (15 min). A second message for it is answered ALREADY_DONE."""
        if delivery.status != "pending" or delivery.next_attempt_at is None:
            return
        delay = max(clock.parse_moment(delivery.next_attempt_at) - clock.utc_now(), timedelta(0))
        self._enqueue_retry(delivery, delivery.attempt_count + 1, delay)

    def _end_test(self, delivery: Delivery) -> None:
        if delivery.test:
            self._deliveries.release_test_slot(delivery.subscription_id, delivery.id)

    def _keep_health_after_recorded(self, delivery: Delivery) -> None:
        """The health writes of the record's last attempt, made now: the handling that recorded it may have
        failed before them (DynamoDB kept refusing). Decided from the cache, refreshed for this batch: one
        made (or made moot by a later attempt's) leaves nothing to do, so SQS's duplicates cost no write."""
        subscription = self._subscriptions.find(delivery.team_id, delivery.subscription_id)
        if subscription is None or not subscription.enabled or not delivery.attempts:
            return
        attempt = delivery.attempts[-1]
        if not (attempt.error or "").startswith(NOT_SENT):
            delivered = delivery.status == "delivered"
            change = health_change(subscription, delivery.id, attempt.status_code, delivered, attempt.at)
            self._health.write(subscription, change)

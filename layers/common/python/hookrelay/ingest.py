"""Fan-out: one event becomes one delivery record and one queue message per matching subscription."""

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from hookrelay import clock
from hookrelay.models import Delivery, Event, Subscription, delivery_id
from hookrelay.observability import logger, metrics
from hookrelay.publishing import FanOutRequest, InvalidEventMessage, queue_message, read_queue_message
from hookrelay.queues import SQS_BATCH_LIMIT, Message, Queue, delivery_message
from hookrelay.store.deliveries import DeliveryStore, FanOutProgress
from hookrelay.store.subscriptions import CachedTeamSubscriptions

DELIVERY_RETENTION = timedelta(days=30)
FIRST_ATTEMPT = 1
FanOutStep = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class FanOutResult:
    matched: int
    enqueued: int
    continue_after: str | None


def new_delivery(event: Event, subscription: Subscription) -> Delivery:
    now = clock.utc_now()
    return Delivery(
        id=delivery_id(event.event_id, subscription.id),
        team_id=event.team_id,
        subscription_id=subscription.id,
        event_id=event.event_id,
        event_name=event.event_name,
        event=event,
        created_at=clock.iso(now),
        updated_at=clock.iso(now),
        expires_at=int((now + DELIVERY_RETENTION).timestamp()),
    )


class Ingest:
    def __init__(
        self,
        *,
        subscriptions: CachedTeamSubscriptions,
        deliveries: DeliveryStore,
        progress: FanOutProgress,
        delivery_queue: Queue,
        events_queue: Queue,
        chunk_size: int,
        once: Callable[[FanOutStep], FanOutStep] = lambda step: step,
    ):
        """`once` wraps each fan-out step so that a request already handled is not handled again
        (the ingest function gives it powertools idempotency, keyed on event id and position)."""
        self._subscriptions = subscriptions
        self._deliveries = deliveries
        self._progress = progress
        self._delivery_queue = delivery_queue
        self._events_queue = events_queue
        self._chunk_size = chunk_size
        self._fan_out_once = once(self._fan_out_and_continue)

    def prepare_batch(self, bodies: Iterable[str]) -> None:
        """Bring the subscriptions of a batch's teams up to date with one read of their versions, so
        that every change answered before the batch began is what its events meet."""
        teams = set()
        for body in bodies:
            with contextlib.suppress(InvalidEventMessage):  # failed alone by process_message
                teams.add(read_queue_message(body).event.team_id)
        self._subscriptions.refresh(teams)

    def process_message(self, body: str, has_time: Callable[[], bool]) -> None:
        """Fan out one events-queue message; raises InvalidEventMessage for one that is not an event."""
        request = read_queue_message(body)
        logger.append_keys(event_id=request.event.event_id, team_id=request.event.team_id)
        self._fan_out_once(request=request, has_time=has_time)

    def _fan_out_and_continue(self, request: FanOutRequest, has_time: Callable[[], bool]) -> dict[str, Any]:
        result = self.fan_out(request, has_time)
        if result.continue_after:
            continuation = FanOutRequest(event=request.event, continue_after=result.continue_after)
            self._events_queue.send([Message(queue_message(continuation))])
        logger.info("fanned out", extra=asdict(result))
        if request.continue_after is None:
            metrics.add_metric(name="EventsIngested", unit=MetricUnit.Count, value=1)
            if result.matched == 0:
                metrics.add_metric(name="EventsWithoutMatch", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="DeliveriesEnqueued", unit=MetricUnit.Count, value=result.enqueued)
        return asdict(result)

    def fan_out(self, request: FanOutRequest, has_time: Callable[[], bool]) -> FanOutResult:
        """Create and enqueue the deliveries of one event, a chunk at a time, in subscription id order.

        Progress is recorded after the messages of each chunk (or as far as they went before a
        failure), so a run repeated after a crash enqueues only what was not sent. When time runs
        short with chunks left, it stops and says where to continue, so that a team with many
        thousand subscriptions fans out over several invocations instead of timing out.
        """
        event = request.event
        start_after = max(
            filter(None, (request.continue_after, self._progress.sent_through(event.team_id, event.event_id))),
            default="",
        )
        targets = sorted(
            (sub for sub in self._subscriptions.matching(event) if sub.id > start_after), key=lambda sub: sub.id
        )
        enqueued = 0
        for start in range(0, len(targets), self._chunk_size):
            chunk = [new_delivery(event, subscription) for subscription in targets[start : start + self._chunk_size]]
            enqueued += self._enqueue_chunk(event, chunk)
            is_last = start + self._chunk_size >= len(targets)
            if not is_last and not has_time():
                return FanOutResult(matched=len(targets), enqueued=enqueued, continue_after=chunk[-1].subscription_id)
        return FanOutResult(matched=len(targets), enqueued=enqueued, continue_after=None)

    def _enqueue_chunk(self, event: Event, chunk: list[Delivery]) -> int:
        waiting = {delivery.id for delivery in self._deliveries.create_pending(chunk)}
        sent_through = None
        enqueued = 0
        try:
            for start in range(0, len(chunk), SQS_BATCH_LIMIT):
                group = chunk[start : start + SQS_BATCH_LIMIT]
                messages = [
                    delivery_message(delivery.id, FIRST_ATTEMPT) for delivery in group if delivery.id in waiting
                ]
                self._delivery_queue.send(messages)
                enqueued += len(messages)
                sent_through = group[-1].subscription_id
        finally:
            if sent_through is not None:
                self._progress.record_sent_through(event.team_id, event.event_id, sent_through, chunk[0].expires_at)
        return enqueued

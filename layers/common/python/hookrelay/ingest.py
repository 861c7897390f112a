"""Fan-out: one event becomes one delivery record and one queue message per matching subscription."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from aws_lambda_powertools.metrics import MetricUnit

from hookrelay import clock
from hookrelay.matching import matching
from hookrelay.models import Delivery, Event, Subscription, delivery_id
from hookrelay.observability import logger, metrics
from hookrelay.publishing import FanOutRequest, queue_message, read_queue_message
from hookrelay.queues import Message, Queue, delivery_message
from hookrelay.store.deliveries import DeliveryStore
from hookrelay.store.subscriptions import CachedTeamSubscriptions

DELIVERY_RETENTION = timedelta(days=30)
FIRST_ATTEMPT = 1


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
        subscriptions: CachedTeamSubscriptions,
        deliveries: DeliveryStore,
        delivery_queue: Queue,
        events_queue: Queue,
        chunk_size: int,
    ):
        self._subscriptions = subscriptions
        self._deliveries = deliveries
        self._delivery_queue = delivery_queue
        self._events_queue = events_queue
        self._chunk_size = chunk_size

    def process_message(self, body: str, has_time: Callable[[], bool]) -> FanOutResult:
        """Fan out one events-queue message; raises InvalidEventMessage for one that is not an event."""
        request = read_queue_message(body)
        logger.append_keys(event_id=request.event.event_id, team_id=request.event.team_id)
        result = self.fan_out(request, has_time)
        if result.continue_after:
            continuation = FanOutRequest(event=request.event, continue_after=result.continue_after)
            self._events_queue.send([Message(queue_message(continuation))])
        logger.info("fanned out", extra={"matched": result.matched, "enqueued": result.enqueued})
        if request.continue_after is None:
            metrics.add_metric(name="EventsIngested", unit=MetricUnit.Count, value=1)
            if result.matched == 0:
                metrics.add_metric(name="EventsWithoutMatch", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="DeliveriesEnqueued", unit=MetricUnit.Count, value=result.enqueued)
        return result

    def fan_out(self, request: FanOutRequest, has_time: Callable[[], bool]) -> FanOutResult:
        """Create and enqueue the deliveries of one event, a chunk at a time, in subscription id order.

        When time runs short with chunks left, it stops and says where to continue, so that a team
        with many thousand subscriptions fans out over several invocations instead of timing out.
        """
        event = request.event
        targets = sorted(matching(self._subscriptions.of_team(event.team_id), event), key=lambda sub: sub.id)
        if request.continue_after is not None:
            targets = [subscription for subscription in targets if subscription.id > request.continue_after]
        enqueued = 0
        for start in range(0, len(targets), self._chunk_size):
            chunk = targets[start : start + self._chunk_size]
            waiting = self._deliveries.create_pending([new_delivery(event, subscription) for subscription in chunk])
            self._delivery_queue.send([delivery_message(delivery.id, FIRST_ATTEMPT) for delivery in waiting])
            enqueued += len(waiting)
            is_last = start + self._chunk_size >= len(targets)
            if not is_last and not has_time():
                return FanOutResult(matched=len(targets), enqueued=enqueued, continue_after=chunk[-1].id)
        return FanOutResult(matched=len(targets), enqueued=enqueued, continue_after=None)

"""Fan-out: an event is stored once, then becomes a queue message per matching subscription (each
delivery's record is created by its first attempt)."""

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta

from aws_lambda_powertools.metrics import MetricUnit

from hookrelay import clock
from hookrelay.events_queue import FanOutRequest, InvalidEventMessage, queue_message, read_queue_message
from hookrelay.observability import logger, metrics
from hookrelay.queues import SQS_BATCH_LIMIT, Message, Queue, delivery_message
from hookrelay.records import Delivery, Event, Subscription, delivery_id
from hookrelay.store.events import EventStore
from hookrelay.store.subscriptions import CachedTeamSubscriptions

DELIVERY_RETENTION = timedelta(days=30)
# An event outlives the deliveries that render it: the last of a long fan-out is made after the first.
EVENT_RETENTION = DELIVERY_RETENTION + timedelta(days=1)
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
        *,
        subscriptions: CachedTeamSubscriptions,
        events: EventStore,
        delivery_queue: Queue,
        events_queue: Queue,
        chunk_size: int,
    ):
        self._subscriptions = subscriptions
        self._events = events
        self._delivery_queue = delivery_queue
        self._events_queue = events_queue
        self._chunk_size = chunk_size

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

    def fan_out(self, request: FanOutRequest, has_time: Callable[[], bool]) -> FanOutResult:
        """Store the event once, then enqueue the first attempt of its deliveries a chunk at a time, in
        subscription id order; each message carries what its first attempt records the delivery with.

        The same event fanned out again (a producer's retry, an SQS redelivery, a concurrent copy)
        makes no second delivery: ids are deterministic and the first attempt's write conditional,
        so a second message for a first attempt is answered "already done" (two handled at the same
        moment may both send, with the same webhook-id; one attempt is recorded). A fan-out over
        several chunks marks on the event how far it has enqueued after each one (or as far as it
        went before a failure), so that a run repeated after a crash skips what was sent; when time
        runs short with chunks left, it stops and says where to continue, so that a team with many
        thousand subscriptions fans out over several invocations instead of timing out.

        Fan-outs begun by a release that wrote `fanout#<team>#<event>` marks are continued from their
        continuation message; one repeated from the start after a crash enqueues its first chunks
        again, whose attempts delivery finds recorded ("already done").
        """
        event = request.event
        expires_at = int((clock.utc_now() + EVENT_RETENTION).timestamp())
        start_after = max(filter(None, (request.continue_after, self._events.keep(event, expires_at))), default="")
        targets = sorted(
            (sub for sub in self._subscriptions.matching(event) if sub.id > start_after), key=lambda sub: sub.id
        )
        enqueued = 0
        for start in range(0, len(targets), self._chunk_size):
            chunk = [new_delivery(event, subscription) for subscription in targets[start : start + self._chunk_size]]
            is_last = start + self._chunk_size >= len(targets)
            enqueued += self._enqueue_chunk(event, chunk, is_last=is_last)
            if not is_last and not has_time():
                return FanOutResult(matched=len(targets), enqueued=enqueued, continue_after=chunk[-1].subscription_id)
        return FanOutResult(matched=len(targets), enqueued=enqueued, continue_after=None)

    def _enqueue_chunk(self, event: Event, chunk: list[Delivery], *, is_last: bool) -> int:
        sent_through = None
        enqueued = 0
        finished = False
        try:
            for start in range(0, len(chunk), SQS_BATCH_LIMIT):
                group = chunk[start : start + SQS_BATCH_LIMIT]
                messages = [delivery_message(each.id, FIRST_ATTEMPT, origin=each.origin()) for each in group]
                self._delivery_queue.send(messages)
                enqueued += len(messages)
                sent_through = group[-1].subscription_id
            finished = True
        finally:
            # A finished fan-out leaves no mark (an update is billed on the whole event): repeated, its
            # messages find their first attempts made.
            if sent_through is not None and not (finished and is_last):
                self._events.record_sent_through(event.team_id, event.event_id, sent_through)
        return enqueued

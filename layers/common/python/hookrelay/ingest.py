"""Fan-out: an event is stored once, then becomes a queue message per matching subscription (each
delivery's record is created by its first attempt)."""

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta

from aws_lambda_powertools.metrics import MetricUnit

from hookrelay import clock
from hookrelay.events_queue import FanOutRequest, queue_message, read_queue_message
from hookrelay.observability import log_failure, logger, metrics
from hookrelay.queues import SQS_BATCH_LIMIT, Message, Queue, delivery_message
from hookrelay.records import Delivery, Event, Subscription, delivery_id
from hookrelay.store.cached_subscriptions import CachedTeamSubscriptions
from hookrelay.store.events import EventStore

DELIVERY_RETENTION = timedelta(days=30)
# An event outlives the deliveries that render it: the last of a long fan-out is made after the first.
EVENT_RETENTION = DELIVERY_RETENTION + timedelta(days=1)
FIRST_ATTEMPT = 1


@dataclass(frozen=True)
class FanOutResult:
    matched: int
    enqueued: int  # sent during the fan-out
    held: int  # sent with the messages of the batch's other events, before the batch is answered
    continue_after: str | None


class HeldMessages:
    """The first-attempt messages of a batch's finished fan-outs, held so that each SendMessageBatch
    carries ten whichever events they come from, and the records they belong to (by message id).

    A record is acknowledged only once SQS has accepted every message of its own: the records with a
    message not accepted come back, and the rest of their messages is not sent (the record's next run
    sends them; the time budget counts on a failed send ending a fan-out)."""

    def __init__(self, send: Callable[[Sequence[Message]], None]):
        self._send = send
        self._held: list[tuple[str, Message]] = []
        self._unsent: set[str] = set()
        self.sent = 0

    def hold(self, record_id: str, messages: Iterable[Message]) -> None:
        self._held.extend((record_id, message) for message in messages)
        while len(self._held) >= SQS_BATCH_LIMIT:
            self._send_first(SQS_BATCH_LIMIT)

    def flush(self) -> set[str]:
        """Send what is held; the records of which SQS has not accepted every message."""
        if self._held:
            self._send_first(len(self._held))
        return self._unsent

    def _send_first(self, count: int) -> None:
        group, self._held = self._held[:count], self._held[count:]
        try:
            self._send([message for _, message in group])
        except Exception as error:
            # Whatever failed, these records have a message SQS may not hold: they come back whole.
            failed = {record_id for record_id, _ in group}
            log_failure("delivery messages not sent; their records come back", error, records=sorted(failed))
            self._unsent |= failed
            self._held = [(record_id, message) for record_id, message in self._held if record_id not in failed]
        else:
            self.sent += len(group)


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
        slow_lane: Queue,
        events_queue: Queue,
        chunk_size: int,
    ):
        """`slow_lane`: where the first attempts of subscriptions whose endpoints delivery marked slow go
        (hookrelay.slow_lane), instead of going there through the delivery queue's consumers."""
        self._subscriptions = subscriptions
        self._events = events
        self._delivery_queue = delivery_queue
        self._slow_lane = slow_lane
        self._events_queue = events_queue
        self._chunk_size = chunk_size
        self._held = self._held_for_lanes()
        self._sent_to_slow_lane = 0  # by the batch's fan-outs of several chunks
        self._busiest_team: str | None = None

    def _held_for_lanes(self) -> dict[bool, HeldMessages]:
        """The messages held for each lane (by whether it is the slow lane)."""
        return {False: HeldMessages(self._delivery_queue.send), True: HeldMessages(self._slow_lane.send)}

    def _by_lane(self, chunk: list[Delivery]) -> dict[bool, list[Message]]:
        """The first attempts of `chunk`, by whether they go to the slow lane."""
        lanes: dict[bool, list[Message]] = {}
        for delivery in chunk:
            slow = self._subscriptions.marked_slow(delivery.team_id, delivery.subscription_id)
            lanes.setdefault(slow, []).append(first_attempt(delivery))
        return lanes

    def prepare_batch(self, bodies: Sequence[str]) -> list[int]:
        """Begin a batch: bring the subscriptions of its teams up to date with one read of their
        versions, so that every change answered before the batch began is what its events meet.

        Returns the order to fan the bodies out in (their indexes): the teams with the fewest messages
        in the batch first. A fair queue serves a quiet team's events in batches that a busy team's
        burst fills; when one team holds most of the batch, the other teams' delivery messages are sent
        before its first fan-out (process_message), so that they wait for their own events' writes, not
        for the burst's. That costs one SendMessageBatch more; a batch of one team, or of teams none of
        which holds most of it, is sent ten messages a send as before.
        """
        self._held = self._held_for_lanes()
        self._sent_to_slow_lane = 0
        teams: list[str | None] = []
        for body in bodies:
            try:
                teams.append(read_queue_message(body).event.team_id)
            except Exception:  # whatever reading raised, process_message fails its record alone
                teams.append(None)
        count = Counter(teams)
        self._subscriptions.refresh({team for team in count if team is not None})
        order = sorted(range(len(bodies)), key=lambda index: count[teams[index]])
        busiest, most = count.most_common(1)[0] if count else (None, 0)
        self._busiest_team = busiest if len(count) > 1 and 2 * most > len(bodies) else None
        return order

    def finish_batch(self) -> set[str]:
        """Send the messages the batch's fan-outs hold; the records (message ids) of which SQS has not
        accepted every message: they must not be acknowledged."""
        unsent = set().union(*(held.flush() for held in self._held.values()))
        sent = sum(held.sent for held in self._held.values())
        metrics.add_metric(name="DeliveriesEnqueued", unit=MetricUnit.Count, value=sent)
        # Of the batch's first attempts (held or sent by chunk), those that went straight to the slow lane.
        to_slow_lane = self._held[True].sent + self._sent_to_slow_lane
        metrics.add_metric(name="DeliveriesEnqueuedToSlowLane", unit=MetricUnit.Count, value=to_slow_lane)
        return unsent

    def process_message(self, record_id: str, body: str, has_time: Callable[[], bool]) -> None:
        """Fan out one events-queue message (`record_id`: its SQS message id); raises
        InvalidEventMessage for one that is not an event."""
        request = read_queue_message(body)
        if request.event.team_id == self._busiest_team:
            self._busiest_team = None
            for held in self._held.values():
                held.flush()
        logger.append_keys(event_id=request.event.event_id, team_id=request.event.team_id)
        result = self.fan_out(record_id, request, has_time)
        if result.continue_after:
            continuation = FanOutRequest(event=request.event, continue_after=result.continue_after)
            self._events_queue.send([Message(queue_message(continuation), request.event.team_id)])
        logger.info("fanned out", extra=asdict(result))
        if request.continue_after is None:
            metrics.add_metric(name="EventsIngested", unit=MetricUnit.Count, value=1)
            if result.matched == 0:
                metrics.add_metric(name="EventsWithoutMatch", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="DeliveriesEnqueued", unit=MetricUnit.Count, value=result.enqueued)

    def fan_out(self, record_id: str, request: FanOutRequest, has_time: Callable[[], bool]) -> FanOutResult:
        """Store the event once, then enqueue the first attempt of its deliveries a chunk at a time, in
        subscription id order; each message carries what its first attempt records the delivery with.
        The last chunk's messages are held for the batch (see HeldMessages), the others sent at once.

        The same event fanned out again (a producer's retry, an SQS redelivery, a concurrent copy)
        makes no second delivery: ids are deterministic and the first attempt's write conditional,
        so a second message for a first attempt is answered "already done" (two handled at the same
        moment may both send, with the same webhook-id; one attempt is recorded). An id names one event:
        a copy with other content (a producer reusing the id) is fanned out as the stored one. A fan-out over
        several chunks marks on the event how far it has enqueued after each chunk but the last (or as
        far as it went before a failure), so that a run repeated after a crash skips what was sent; when time
        runs short with chunks left, it stops and says where to continue, so that a team with many
        thousand subscriptions fans out over several invocations instead of timing out.

        Fan-outs begun by a release that wrote `fanout#<team>#<event>` marks are continued from their
        continuation message; one repeated from the start after a crash enqueues its first chunks
        again, whose attempts delivery finds recorded ("already done").
        """
        expires_at = int((clock.utc_now() + EVENT_RETENTION).timestamp())
        kept = self._events.keep(request.event, expires_at)
        # Its id names the first copy stored: matching another copy would make deliveries of the id
        # that render the first one (another workspace's data) for subscriptions it does not match.
        event = kept.event
        if event != request.event:
            logger.warning("event id already stored with other content: its stored copy is fanned out")
        start_after = max(filter(None, (request.continue_after, kept.sent_through)), default="")
        targets = sorted(
            (sub for sub in self._subscriptions.matching(event) if sub.id > start_after), key=lambda sub: sub.id
        )
        enqueued = 0
        for start in range(0, len(targets), self._chunk_size):
            chunk = [new_delivery(event, subscription) for subscription in targets[start : start + self._chunk_size]]
            if start + self._chunk_size >= len(targets):
                # The last chunk leaves no mark (an update is billed on the whole event), so nothing
                # keeps its messages from waiting for others: repeated, they find their first attempts made.
                for slow, messages in self._by_lane(chunk).items():
                    self._held[slow].hold(record_id, messages)
                return FanOutResult(matched=len(targets), enqueued=enqueued, held=len(chunk), continue_after=None)
            enqueued += self._send_marking_progress(event, chunk)
            if not has_time():
                return FanOutResult(
                    matched=len(targets), enqueued=enqueued, held=0, continue_after=chunk[-1].subscription_id
                )
        return FanOutResult(matched=len(targets), enqueued=enqueued, held=0, continue_after=None)

    def _send_marking_progress(self, event: Event, chunk: list[Delivery]) -> int:
        """Send a chunk, then mark on the event how far it went (also as far as it got before a failure)."""
        sent_through = None
        enqueued = 0
        try:
            for start in range(0, len(chunk), SQS_BATCH_LIMIT):
                group = chunk[start : start + SQS_BATCH_LIMIT]
                for slow, messages in self._by_lane(group).items():
                    (self._slow_lane if slow else self._delivery_queue).send(messages)
                    self._sent_to_slow_lane += len(messages) if slow else 0
                enqueued += len(group)
                sent_through = group[-1].subscription_id
        finally:
            if sent_through is not None:
                self._events.record_sent_through(event.team_id, event.event_id, sent_through)
        return enqueued


def first_attempt(delivery: Delivery) -> Message:
    return delivery_message(delivery.id, FIRST_ATTEMPT, team_id=delivery.team_id, origin=delivery.origin())

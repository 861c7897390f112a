"""The delivery log API's logic (SPEC §6): read a subscription's deliveries, send them again, send a test.

Every call starts from the caller's subscription, so another team's ids are simply not found.
Sending again reuses the delivery (same id, so the same `webhook-id`) and asks for its next attempt
with a conditional write: a retry or recovery repeated before that attempt is made enqueues nothing more.
"""

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import timedelta

from hookrelay import catalog, clock, custom_headers, pagination
from hookrelay.addresses import masked
from hookrelay.errors import Conflict, FieldError, Invalid, NotFound
from hookrelay.ingest import EVENT_RETENTION, new_delivery
from hookrelay.models.common import Page, PageMeta
from hookrelay.models.deliveries import DeliveryDetail, Recovery, RenderedRequest
from hookrelay.outgoing import render_delivery, unsigned_headers
from hookrelay.queues import Queue, delivery_message
from hookrelay.records import Delivery, DeliveryStatus, DeliverySummary, Event, Subscription, is_uuid
from hookrelay.retry import SWEEPER_LEASE
from hookrelay.slow_answers import Lanes
from hookrelay.store.delivery_log import POSITION_KEYS, DeliveryLogStore
from hookrelay.store.due_retries import due_shard
from hookrelay.store.events import EventStore
from hookrelay.store.queue_waits import listed_slot
from hookrelay.subscriptions import Subscriptions

# How long a queued test event keeps the next one waiting when its message is lost (a sent one ends it).
TEST_SLOT_LEASE = timedelta(minutes=15)
# Failed deliveries one recover call sends again before answering with a cursor (API Gateway waits 30 s).
RECOVER_BATCH = 100


def _position(cursor: str, param: str) -> dict[str, str]:
    position = pagination.decode_cursor(cursor, POSITION_KEYS, param)
    try:
        clock.parse_moment(listed_slot(position["created_at"]))
    except ValueError:
        position = {}
    if not is_uuid(position.get("delivery_id", "")):
        raise pagination.not_a_cursor(param)
    return position


def _cursor(position: dict[str, str] | None) -> str | None:
    return pagination.encode_cursor(position) if position else None


class DeliveryLog:
    def __init__(
        self,
        *,
        subscriptions: Subscriptions,
        deliveries: DeliveryLogStore,
        events: EventStore,
        delivery_queue: Queue,
        slow_lane: Queue,
        due_shards: int,
    ):
        """`slow_lane`: where a delivery sent again goes when its endpoint answered its last attempt slowly."""
        self._subscriptions = subscriptions
        self._deliveries = deliveries
        self._events = events
        self._lanes = Lanes(delivery_queue, slow_lane)
        self._due_shards = due_shards

    def page(
        self, team_id: str, subscription_id: str, limit: int, after: str | None, status: DeliveryStatus | None
    ) -> Page[DeliverySummary]:
        subscription = self._subscriptions.get(team_id, subscription_id)
        found = self._deliveries.of_subscription(
            subscription.id, limit=limit, after=_position(after, "query.after") if after else None, status=status
        )
        return Page[DeliverySummary](
            data=found.items,
            meta=PageMeta(next_cursor=_cursor(found.next_position)),
        )

    def detail(self, team_id: str, subscription_id: str, delivery_id: str) -> DeliveryDetail:
        subscription = self._subscriptions.get(team_id, subscription_id)
        delivery = self._delivery(subscription, delivery_id)
        rendered = render_delivery(delivery, subscription)
        request = RenderedRequest(
            url=masked(subscription.endpoint),
            # Custom headers masked as the subscription shows them (hookrelay's own never collide with them).
            headers={
                **unsigned_headers(delivery, subscription, rendered),
                **custom_headers.shown(subscription.headers, subscription.sensitive_headers),
            },
            body=rendered.body.decode("utf-8"),
        )
        # Masked again: an attempt recorded before a kind of secret was masked keeps it in its url.
        attempts = [
            dataclasses.replace(attempt, url=attempt.url and masked(attempt.url)) for attempt in delivery.attempts
        ]
        return DeliveryDetail(**vars(delivery.summary()), request=request, attempts=attempts)

    def retry(self, team_id: str, subscription_id: str, delivery_id: str) -> DeliverySummary:
        """A fresh attempt now, whatever the delivery's status."""
        subscription = self._sendable(team_id, subscription_id)
        delivery = self._delivery(subscription, delivery_id)
        if not self._send_again(team_id, [delivery]):
            raise Conflict("A retry of this delivery is already queued: ask again once it has been attempted.")
        return self._delivery(subscription, delivery_id).summary()

    def recover(self, team_id: str, subscription_id: str, since: str, after: str | None) -> Recovery:
        """Send again every delivery that failed for good among those created since `since`."""
        subscription = self._sendable(team_id, subscription_id)
        position = _position(after, "after") if after else None
        # Compared as DynamoDB compares the sort key (as strings): it refuses a start key outside the
        # query's `created_at >= since`, as this cursor of a recovery with an earlier `since` would be.
        if position and position["created_at"] < since:
            reason = "names a delivery created before `since`: pass the next_cursor of a call with this `since`"
            raise Invalid(FieldError("after", reason))
        found = self._deliveries.of_subscription(
            subscription.id, limit=RECOVER_BATCH, after=position, status="failed", since=since
        )
        return Recovery(recovered=self._send_again(team_id, found.items), next_cursor=_cursor(found.next_position))

    def send_test(self, team_id: str, subscription_id: str, event_name: str | None) -> DeliverySummary:
        """The catalog sample of an event, through the normal delivery path, marked as a test."""
        subscription = self._sendable(team_id, subscription_id)
        name = event_name or _first_subscribed_event(subscription)
        event_type = catalog.event_type(name)
        if event_type is None:
            raise Invalid(FieldError("event_name", f"unknown event name {name}"))
        event = Event(
            event_id=str(uuid.uuid4()),
            event_name=name,
            event_time=clock.now_iso(),
            team_id=team_id,
            sandbox=subscription.sandbox,
            data=event_type.sample,
        )
        delivery = dataclasses.replace(new_delivery(event, subscription), test=True)
        now = clock.utc_now()
        if not self._deliveries.hold_test_slot(
            subscription.id, delivery.id, now=clock.iso(now), until=clock.iso(now + TEST_SLOT_LEASE)
        ):
            raise Conflict(
                "A test event for this webhook subscription is already queued: send another once it has been sent"
                f" (or {TEST_SLOT_LEASE.seconds // 60} minutes after the last one, should its message be lost)."
            )
        self._events.keep(event, int((now + EVENT_RETENTION).timestamp()))
        self._deliveries.create_pending([delivery])
        self._lanes.delivery_queue.send([delivery_message(delivery.id, 1, team_id=team_id)])
        return delivery.summary()

    def _sendable(self, team_id: str, subscription_id: str) -> Subscription:
        subscription = self._subscriptions.get(team_id, subscription_id)
        if not subscription.enabled:
            raise Conflict(
                "The webhook subscription is disabled: enable it (PATCH enabled: true) before sending to it."
            )
        return subscription

    def _delivery(self, subscription: Subscription, delivery_id: str) -> Delivery:
        if not is_uuid(delivery_id):
            raise NotFound("Delivery")
        # Not recorded yet: it may be waiting on the queue for its first attempt's slot.
        delivery = self._deliveries.get(delivery_id) or self._deliveries.get_waiting(subscription.id, delivery_id)
        if delivery is None or (delivery.team_id, delivery.subscription_id) != (subscription.team_id, subscription.id):
            raise NotFound("Delivery")
        return delivery

    def _send_again(self, team_id: str, deliveries: Sequence[DeliverySummary]) -> int:
        now = clock.utc_now()
        reopened = [
            (delivery_message(delivery.id, delivery.attempt_count + 1, team_id=team_id), asked.last_latency_ms)
            for delivery in deliveries
            if (
                asked := self._deliveries.reopen(
                    delivery.id,
                    delivery.attempt_count,
                    next_attempt_at=clock.iso(now),
                    due_at=clock.iso(now + SWEEPER_LEASE),
                    due_shard=due_shard(delivery.id, self._due_shards),
                )
            )
        ]
        self._lanes.send(reopened)
        return len(reopened)


def _first_subscribed_event(subscription: Subscription) -> str:
    listed = [name for name in subscription.subscribed_events if name != catalog.WILDCARD]
    return listed[0] if listed else catalog.event_types()[0].name
